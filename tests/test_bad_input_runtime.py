"""Bad environments for the C backend, through the command line: each gives one clear message and
nothing half-written.

* no C compiler (CC=/nonexistent): a warning, then the NumPy backend, with correct results;
* a compiler that fails: exit 2, and the message names the saved source file, which exists;
* an unwritable cache directory: a warning, a fallback directory, correct results;
* a corrupt cache entry (the library's bytes changed): detected by its checksum, rebuilt, correct.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

GRAPH = "graph g<N=100>(x: f32[N]) {\n  return exp(x) * 2.0 + 1.0\n}\n"


def fusec(tmp_path, *args, **env):
    full = {**os.environ, "PYTHONPATH": str(ROOT), "FUSEC_CACHE_DIR": str(tmp_path / "cache"), **env}
    full.pop("FUSEC_SANITIZE", None)
    return subprocess.run([sys.executable, "-m", "fusec", *map(str, args)], capture_output=True, text=True, cwd=tmp_path, env=full, timeout=300)


@pytest.fixture
def g_fg(tmp_path):
    (tmp_path / "g.fg").write_text(GRAPH)
    return tmp_path


def test_missing_compiler_falls_back_to_numpy_with_a_warning(g_fg):
    r = fusec(g_fg, "run", "g.fg", "--backend", "c", "--verify", CC="/nonexistent/cc")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "no C compiler" in r.stderr and "NumPy backend" in r.stderr
    assert r.stderr.count("no C compiler") == 1  # one warning, not one per kernel
    assert "(backend numpy)" in r.stdout and "verify: ok" in r.stdout


def test_missing_compiler_through_the_api_warns_once(g_fg):
    code = (
        "import warnings, fusec\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    a = fusec.compile('g.fg', backend='c')\n"
        "    b = fusec.compile('g.fg', backend='c')\n"
        "print(a.backend, b.backend, sum('no C compiler' in str(x.message) for x in w))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CC": "/nonexistent/cc", "FUSEC_CACHE_DIR": str(g_fg / "cache")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=g_fg, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["numpy", "numpy", "1"]


def _failing_compiler(directory: Path) -> Path:
    """A 'compiler' that identifies itself like gcc and then fails on every source file."""
    cc = directory / "badcc"
    cc.write_text(
        "#!/bin/sh\n"
        'case "$1" in --version) echo "badcc 1.0"; exit 0;; -dumpmachine) echo x86_64-linux-gnu; exit 0;; esac\n'
        'for a in "$@"; do case "$a" in *.c) echo "$a:1:1: error: this compiler refuses everything" >&2;; esac; done\n'
        "exit 1\n"
    )
    cc.chmod(cc.stat().st_mode | stat.S_IEXEC)
    return cc


def test_compiler_failure_names_the_saved_source(g_fg):
    r = fusec(g_fg, "run", "g.fg", "--backend", "c", CC=str(_failing_compiler(g_fg)))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "the C compiler failed" in r.stderr
    saved = re.search(r"(/\S+\.c)\b", r.stderr)
    assert saved, r.stderr
    path = Path(saved.group(1))
    assert path.exists() and "failed" in path.parts, path
    assert path.read_text().strip()  # the generated source is there to read
    # nothing half-built was published as a cache entry
    assert not list((g_fg / "cache").glob("v1/*/*/kernel.so"))


def test_unwritable_cache_dir_falls_back_with_a_warning(g_fg):
    blocker = g_fg / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    r = fusec(g_fg, "run", "g.fg", "--backend", "c", "--verify", FUSEC_CACHE_DIR=str(blocker / "cache"))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "not writable" in r.stderr and "using" in r.stderr
    assert "(backend c)" in r.stdout and "verify: ok" in r.stdout
    assert blocker.read_text().startswith("a file")  # untouched


def _entries(cache: Path) -> list[Path]:
    return [p.parent for p in cache.glob("v1/*/*/entry.json") if p.parent.parent.name not in ("tmp", "failed")]


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete-meta"])
def test_corrupt_cache_entry_is_detected_and_rebuilt(g_fg, damage):
    first = fusec(g_fg, "run", "g.fg", "--backend", "c", "--verify")
    assert first.returncode == 0, first.stderr
    entries = _entries(g_fg / "cache")
    assert entries
    lib = entries[0] / "kernel.so"
    data = bytearray(lib.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        lib.write_bytes(bytes(data))
    elif damage == "truncate":
        lib.write_bytes(bytes(data[: len(data) // 3]))
    else:
        (entries[0] / "entry.json").unlink()
    again = fusec(g_fg, "run", "g.fg", "--backend", "c", "--verify")
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert "corrupt kernel cache entry" in again.stderr
    assert "verify: ok" in again.stdout
    for e in _entries(g_fg / "cache"):  # rebuilt and valid again
        meta = json.loads((e / "entry.json").read_text())
        assert hashlib.sha256((e / "kernel.so").read_bytes()).hexdigest() == meta["sha256"]
