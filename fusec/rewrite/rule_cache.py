"""The standard rule library, parsed once and kept in the cache directory.

Parsing the eight rule files takes about 40 ms in every new process (`fusec check` needs them for its
rewrite stage); unpickling the parsed rules takes about 1 ms, and a process that finds them does not
load the rules grammar at all. An entry is named by a SHA-256 of everything that decides the parsed
rules: the rule files' names and text, the source of the code that turns rule text into `Rule`
objects (fusec/rewrite, fusec/frontend with its grammars, fusec/ir with the op table), the ops
registered in this process, and Python's version. Edit any of them and the key changes.

A damaged entry (runtime/cache_dir.py checks its checksum) or one that does not unpickle into rules
is rebuilt with a warning; rules that cannot be pickled, or a cache directory that cannot be
written, only cost the parse.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from fusec.ir.ops import OPS
from fusec.rewrite.rule import Rule
from fusec.runtime.cache_dir import corrupt_entry, default_cache_dir, read_entry, write_entry

FORMAT = "fusec-rules-1"
SUBDIR = "rules"
WHAT = "rule cache file"
_PACKAGE = Path(__file__).resolve().parent.parent
CODE_DIRS = ("rewrite", "frontend", "ir")  # what parses rule text into Rule objects


def library_key(rule_files: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for part in (FORMAT, f"{sys.version_info[0]}.{sys.version_info[1]}", " ".join(sorted(OPS))):
        h.update(part.encode() + b"\0")
    code = sorted(p for d in CODE_DIRS for p in (_PACKAGE / d).iterdir() if p.suffix in (".py", ".lark"))
    for path in [*rule_files, *code]:
        h.update(str(path.name).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def cached_rules(rule_files: Sequence[Path], parse: Callable[[], tuple[Rule, ...]], directory: Path | None = None) -> tuple[Rule, ...]:
    """parse(), or the rules it returned in an earlier process for the same files and code."""
    key = library_key(rule_files)
    path = (directory if directory is not None else default_cache_dir()) / SUBDIR / f"library-{key[:32]}.pickle"
    payload = read_entry(path, key, WHAT)
    if payload is not None:
        try:
            rules = pickle.loads(payload)
        except Exception as err:  # whatever the file holds that does not unpickle: parse afresh instead
            corrupt_entry(path, WHAT, f"{type(err).__name__}: {err}")
        else:
            if isinstance(rules, tuple) and all(isinstance(r, Rule) for r in rules):
                return rules
            corrupt_entry(path, WHAT, "it does not hold rules")
    rules = parse()
    try:
        payload = pickle.dumps(rules, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return rules  # a rule holding something pickle cannot write: nothing to keep
    write_entry(path, key, payload)
    return rules
