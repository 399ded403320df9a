"""Eight processes compile the same graph at the same moment against one kernel cache directory.

Every one must get correct results, and they must leave exactly one valid cache entry per kernel
(and no half-built or temporary directories behind): entries are published with one atomic rename,
and a process that loses the race uses the winner's entry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

GRAPH = """graph g<N=1000>(x: f32[N], y: f32[N]) {
  s = sum(exp(x) * y, keepdims=true)
  return tanh(x) / (1.0 + abs(y)) + s
}
"""

WORKER = """
import os, sys, time
import numpy as np
import fusec
from fusec.inputs import random_inputs
from fusec.tolerance import compare
go = float(sys.argv[1])
g = fusec.load("g.fg")
xs = random_inputs(g, seed=int(sys.argv[2]))
while time.time() < go:  # everyone starts compiling at the same moment
    time.sleep(0.001)
compiled = fusec.compile(g, backend="c", tune_db=False)
got = compiled(*xs)
m = compare(got, fusec.interpret(g, *xs))
print("ok" if m is None else f"MISMATCH {m}", compiled.backend, compiled.kernels)
"""


def cache_entries(cache: Path) -> list[Path]:
    return sorted(p.parent for p in cache.glob("v1/*/*/entry.json") if p.parent.parent.name not in ("tmp", "failed"))


@pytest.mark.parametrize("processes", [8])
def test_concurrent_compiles_share_one_cache_entry(tmp_path, processes):
    (tmp_path / "g.fg").write_text(GRAPH)
    (tmp_path / "worker.py").write_text(WORKER)
    cache = tmp_path / "cache"
    env = {**os.environ, "FUSEC_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    env.pop("FUSEC_SANITIZE", None)
    go = time.time() + 4.0  # time for every interpreter to start and import fusec
    procs = [
        subprocess.Popen([sys.executable, "worker.py", str(go), str(k)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(processes)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        assert out.startswith("ok c "), out + err[-2000:]
    kernels = {int(out.split()[2]) for out, _ in outs}
    assert kernels == {1}, "the graph should fuse into one kernel (one translation unit)"
    entries = cache_entries(cache)
    assert len(entries) == 1, entries  # eight builders, exactly one valid entry
    for e in entries:
        meta = json.loads((e / "entry.json").read_text())
        assert meta["key"] == e.name
        import hashlib

        assert hashlib.sha256((e / "kernel.so").read_bytes()).hexdigest() == meta["sha256"]
    leftovers = [p for p in (cache / "v1" / "tmp").glob("*")] if (cache / "v1" / "tmp").exists() else []
    assert leftovers == [], leftovers
    assert not (cache / "v1" / "failed").exists()


def test_a_second_run_hits_the_cache_and_builds_nothing(tmp_path):
    (tmp_path / "g.fg").write_text(GRAPH)
    (tmp_path / "worker.py").write_text(WORKER)
    cache = tmp_path / "cache"
    env = {**os.environ, "FUSEC_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    env.pop("FUSEC_SANITIZE", None)
    for k in range(2):
        r = subprocess.run([sys.executable, "worker.py", "0", str(k)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0 and r.stdout.startswith("ok c "), r.stdout + r.stderr[-2000:]
        if k == 0:
            first = {e: (e / "kernel.so").stat().st_mtime_ns for e in cache_entries(cache)}
    assert {e: (e / "kernel.so").stat().st_mtime_ns for e in cache_entries(cache)} == first
