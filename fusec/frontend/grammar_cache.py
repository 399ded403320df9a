"""A disk cache of lark's parser tables, so that a new process does not rebuild them.

Building the LALR tables of `fusec.lark` and `rules.lark` takes about 0.3 s, longer than the rest
of `fusec check`; loading them back takes about 20 ms. An entry lives in the cache directory
(`$FUSEC_CACHE_DIR`, else `~/.cache/fusec`) under `grammars/`, named by the grammar and a SHA-256 of
everything that decides the tables: the grammar's text, the text of every grammar it can `%import`,
the parser options, lark's version and Python's. Edit a grammar or upgrade lark and the key changes,
so an entry never needs invalidating.

A file holds lark's own serialisation of the parser (`Lark.save`) behind the key and a checksum
(runtime/cache_dir.py). A file whose checksum or contents do not load is rebuilt with a warning; a
cache directory that cannot be written only costs the time to build.
"""

from __future__ import annotations

import hashlib
import io
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import lark
from lark import Lark

from fusec.runtime.cache_dir import corrupt_entry, default_cache_dir, read_entry, write_entry

FORMAT = "fusec-grammar-1"
SUBDIR = "grammars"
WHAT = "grammar cache file"

# options that hold functions: not part of the tables, so not saved, and given again on loading
CALLBACK_OPTIONS = ("lexer_callbacks",)


def grammar_key(text: str, imports: Iterable[Path], options: Mapping[str, object]) -> str:
    """The SHA-256 naming the tables of grammar `text` that may import the files `imports`."""
    h = hashlib.sha256()
    fixed = sorted((k, repr(v)) for k, v in options.items() if k not in CALLBACK_OPTIONS)
    for part in (FORMAT, lark.__version__, f"{sys.version_info[0]}.{sys.version_info[1]}", repr(fixed), text):
        h.update(part.encode() + b"\0")
    for path in sorted(imports, key=lambda p: p.name):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def cached_lark(
    grammar: Path, text: str, imports: Iterable[Path], options: dict, directory: Path | None = None
) -> Lark:
    """Lark(text, **options), loaded from the cache when its tables were built before."""
    key = grammar_key(text, imports, options)
    folder = (directory if directory is not None else default_cache_dir()) / SUBDIR
    path = folder / f"{grammar.stem}-{key[:32]}.lark"
    callbacks = {k: options[k] for k in CALLBACK_OPTIONS if k in options}
    parser = _load(path, key, callbacks)
    if parser is None:
        parser = Lark(text, **options)
        _save(parser, path, key)
    return parser


def _load(path: Path, key: str, callbacks: dict) -> Lark | None:
    payload = read_entry(path, key, WHAT)
    if payload is None:
        return None
    try:
        # what lark's own `cache=` option does: load the tables and give the callbacks again
        return Lark.__new__(Lark)._load(io.BytesIO(payload), **callbacks)
    except Exception as err:  # anything the file holds that lark cannot read: build afresh instead
        return corrupt_entry(path, WHAT, f"{type(err).__name__}: {err}")


def _save(parser: Lark, path: Path, key: str) -> None:
    buffer = io.BytesIO()
    parser.save(buffer, exclude_options=CALLBACK_OPTIONS)
    write_entry(path, key, buffer.getvalue())
