"""NumPy backend against the unfused interpreter, in one run (reduced sizes unless --bench-full).

Run: pytest bench/bench_numpy_backend.py --benchmark-only --benchmark-group-by=param:name -s

Each workload group times the interpreter and the NumPy backend (with caller-provided outputs, and
with fresh outputs) in the same run. The NumPy-backend tests also time the interpreter themselves,
interleaved, and store `speedup_vs_interp` (median interpreter time / median kernel time) in
`extra_info`, printing it with -s. Target (issue 5): >= 2x on chain and gelu, at full sizes.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest
from c_harness import example

import fusec
from fusec.inputs import random_inputs
from fusec.interp import interpret

WORKLOADS = ["01_chain", "02_gelu", "03_softmax", "04_layernorm", "05_rmsnorm", "07_adam"]
TARGETS = {"01_chain": 2.0, "02_gelu": 2.0}


@pytest.fixture(scope="module", params=WORKLOADS)
def workload(request):
    graph = example(request.param)  # reduced sizes unless --bench-full (bench/conftest.py)
    xs = random_inputs(graph)
    compiled = fusec.compile(graph, backend="numpy")
    outs = tuple(np.empty(o.shape, o.dtype) for o in compiled.outputs)
    return request.param, graph, xs, compiled, outs


def _median_seconds(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def test_interpreter(benchmark, workload):
    name, graph, xs, _, _ = workload
    benchmark.extra_info["name"] = name
    benchmark.pedantic(interpret, args=(graph, *xs), rounds=3, iterations=1)


def test_numpy_backend_fresh_outputs(benchmark, workload):
    name, _, xs, compiled, _ = workload
    benchmark.extra_info["name"] = name
    benchmark.pedantic(compiled, args=tuple(xs), rounds=5, iterations=1, warmup_rounds=1)


def test_numpy_backend(benchmark, workload):
    """Caller-provided outputs; the speed-up is measured against the interpreter in the same test."""
    name, graph, xs, compiled, outs = workload

    def run():
        compiled(*xs, out=outs)

    run()  # warm up: scratch and pool buffers
    interp_s = _median_seconds(lambda: interpret(graph, *xs), 3)
    kernel_s = _median_seconds(run, 5)
    speedup = interp_s / kernel_s
    benchmark.extra_info.update(name=name, interp_ms=interp_s * 1e3, numpy_ms=kernel_s * 1e3, speedup_vs_interp=speedup)
    print(f"\n{name}: interpreter {interp_s * 1e3:.1f} ms, NumPy backend {kernel_s * 1e3:.1f} ms: {speedup:.2f}x"
          + (f" (target >= {TARGETS[name]}x)" if name in TARGETS else ""))
    benchmark.pedantic(run, rounds=5, iterations=1)
