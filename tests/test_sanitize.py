"""Sanitize mode: kernels built with -fsanitize=address,undefined and a bounds assertion on every
load and store (FUSEC_SANITIZE=1). ASan must be loaded before Python, so each check runs in a child
process started with fusec.runtime.build.sanitizer_env() (LD_PRELOAD=libasan.so), as
docs/robustness.md tells a user to do.

* every example and the fuzz corpus (tests/regressions plus random graphs) run clean, with results
  that match the interpreter;
* a deliberately corrupted loop nest (a loop running past its buffer) is caught by the bounds
  assertion instead of corrupting memory silently;
* `fusec run --backend c --sanitize` sets all of this up by itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, small_sizes

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="ASan preloading as done here is Linux-only")


def sanitized(code: str, tmp_path: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    from fusec.runtime.build import sanitizer_env

    env = dict(os.environ, **sanitizer_env(), FUSEC_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=timeout)


RUN_GRAPHS = """
import sys, warnings
import numpy as np
import fusec
from fusec.bisect import check
from fusec.inputs import random_inputs
from fusec.testing.arrays import random_arrays
from fusec.testing.graphgen import GenConfig, random_graph
jobs = {jobs!r}
n = 0
for kind, what, sizes in jobs:
    if kind == "file":
        g = fusec.load(what, sizes=sizes)
        sets = [random_inputs(g, seed=0)]
    else:
        g, _ = random_graph(what, GenConfig(max_ops=8))
        sets = [random_arrays(g, np.random.default_rng(what), special=0.05)]
    for arrays in sets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            f = check(g, arrays, "c")
        assert f is None, f"{{what}}: {{f}}"
        n += 1
compiled = fusec.compile("examples/01_chain.fg", backend="c", sizes={{"N": 5, "M": 7}}, tune_db=False)
assert "FUSEC_AT(" in compiled.source(), "not a sanitize-mode build"
print(f"clean: {{n}} graphs")
"""


def _example_jobs(paths):
    return [("file", str(p.relative_to(ROOT)), small_sizes(p)) for p in paths]


HALF = len(EXAMPLES) // 2


@pytest.mark.parametrize("part", [EXAMPLES[:HALF], EXAMPLES[HALF:]], ids=["examples-1", "examples-2"])
def test_examples_run_clean_under_asan_and_ubsan(tmp_path, part):
    r = sanitized(RUN_GRAPHS.format(jobs=_example_jobs(part)), tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    assert f"clean: {len(part)} graphs" in r.stdout


def test_fuzz_corpus_runs_clean_under_asan_and_ubsan(tmp_path):
    regressions = sorted((ROOT / "tests" / "regressions").glob("*.fg"))
    jobs = [("file", str(p.relative_to(ROOT)), None) for p in regressions]
    jobs += [("random", seed, None) for seed in range(300_000, 300_025)]
    r = sanitized(RUN_GRAPHS.format(jobs=jobs), tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    assert f"clean: {len(jobs)} graphs" in r.stdout


CORRUPTED = """
import dataclasses
import numpy as np
import fusec
from fusec.codegen.c_backend import CBackend, buffer_params, c_source
from fusec.loops.ir import Index, Loop
from fusec.pipeline import compile_stages
stages = compile_stages(fusec.parse("graph g(x: f32[37]) {{ return exp(x) + 1.0 }}"), backend="c", tune_db=False)
nest = stages.nests[0]
# the corruption: the outermost loop runs {extra} iterations past the end of its 37-element buffers
loop = next(s for s in nest.body if isinstance(s, Loop))
bad = dataclasses.replace(loop, extent=loop.extent + {extra})
nest = dataclasses.replace(nest, body=tuple(bad if s is loop else s for s in nest.body))
be = CBackend()
source, symbol = c_source(nest, sanitize=be.sanitize)
fn = be.compile_source(source, symbol, buffer_params(nest.buffers))
x = np.ones(37, np.float32)
y = np.empty(37, np.float32)
fn.call_pointers(x.ctypes.data, y.ctypes.data)
print("the corrupted kernel ran to the end")
"""


def test_a_corrupted_loop_nest_is_caught_not_silent(tmp_path):
    r = sanitized(CORRUPTED.format(extra=3), tmp_path)
    assert r.returncode != 0, "an out-of-bounds loop ran without being caught:\n" + r.stdout + r.stderr[-2000:]
    assert "ran to the end" not in r.stdout
    assert "FUSEC_AT" in r.stderr or "Assertion" in r.stderr or "AddressSanitizer" in r.stderr, r.stderr[-2000:]


def test_the_uncorrupted_nest_runs_in_the_same_harness(tmp_path):
    # the control for the test above: with no corruption the same code runs to the end
    r = sanitized(CORRUPTED.format(extra=0), tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ran to the end" in r.stdout


def test_cli_sanitize_flag_sets_everything_up(tmp_path):
    """`fusec run --backend c --sanitize`, from a plain environment: it re-runs itself with ASan preloaded."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FUSEC_SANITIZE")}
    env.update(FUSEC_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    example = next(p for p in EXAMPLES if "softmax" in p.name)
    sets = [a for k, v in small_sizes(example).items() for a in ("--set", f"{k}={v}")]
    r = subprocess.run(
        [sys.executable, "-m", "fusec", "run", str(example), *sets, "--backend", "c", "--sanitize", "--verify"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "sanitize" in r.stdout and "verify: ok" in r.stdout
    entries = list((tmp_path / "cache").rglob("kernel.c"))
    assert entries and all("FUSEC_AT(" in p.read_text() for p in entries)
