"""C backend benchmarks (reduced sizes unless --bench-full), with the baselines measured in the same run.

Run: pytest bench/bench_c_backend.py --benchmark-only --benchmark-group-by=param:workload
(bench/c_report.py prints the same workloads as a table of ratios: % of roofline, speedups.)

Each workload group has: the STREAM triad (bandwidth for the roofline, measured in this run), the
C kernel with caller-provided outputs, the unfused interpreter, and numexpr where it is installed
and can express the graph (skipped cleanly otherwise). The roofline time of each workload is
stored in `extra_info` so the ratio can be computed from the saved JSON.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from c_harness import MEMORY_BOUND, compile_c, example, graph_bytes, inputs_for  # noqa: E402

from fusec.interp import interpret  # noqa: E402
from fusec.runtime.probes import TRIAD_SOURCE, measure_triad  # noqa: E402

NUMEXPR = {
    "01_chain": "((x * 2 + 1) * x - 3) / (x * x + 1) + sqrt(abs(x))",
    "02_gelu": "0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))",
}


@pytest.fixture(scope="module")
def triad_gbs() -> float:
    return measure_triad(repeats=10).best_gbs


@pytest.fixture(scope="module", params=MEMORY_BOUND)
def workload(request):
    graph = example(request.param)
    xs = inputs_for(graph)
    return request.param, graph, xs, compile_c(graph)


def test_triad(benchmark):
    """The triad kernel itself, timed by pytest-benchmark (24 bytes per element)."""
    import ctypes

    from fusec.runtime.cache import default_cache
    from fusec.runtime.loader import load_library

    lib = load_library(default_cache().build(TRIAD_SOURCE).library)
    n = 1 << 23
    a, b, c = (np.ones(n) for _ in range(3))
    seconds = np.zeros(1)
    lib.fusec_triad_bench.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    benchmark(lib.fusec_triad_bench, a.ctypes.data, b.ctypes.data, c.ctypes.data, n, 1, seconds.ctypes.data)
    benchmark.extra_info["bytes"] = 24 * n


def test_c_kernel(benchmark, workload, triad_gbs):
    name, graph, xs, compiled = workload
    benchmark.extra_info.update(workload=name, roofline_ms=graph_bytes(graph) / (triad_gbs * 1e9) * 1e3, triad_gbs=triad_gbs)
    benchmark(compiled.run, xs)


def test_interpreter(benchmark, workload):
    name, graph, xs, _ = workload
    benchmark.extra_info["workload"] = name
    benchmark.pedantic(interpret, args=(graph, *xs), rounds=3, iterations=1)


def test_numexpr(benchmark, workload):
    numexpr = pytest.importorskip("numexpr")
    name, graph, xs, _ = workload
    if name not in NUMEXPR:
        pytest.skip(f"numexpr cannot express {name} (it has no reductions along an axis)")
    out = np.empty_like(xs[0])
    benchmark.extra_info["workload"] = name
    benchmark(numexpr.evaluate, NUMEXPR[name], local_dict={"x": xs[0]}, out=out)


def test_adam_in_place(benchmark, triad_gbs):
    graph = example("07_adam")
    state = [x.copy() for x in inputs_for(graph)]
    compiled = compile_c(graph, inplace={"p_new": "p", "m_new": "m", "v_new": "v"})
    benchmark.extra_info.update(roofline_ms=graph_bytes(graph) / (triad_gbs * 1e9) * 1e3, triad_gbs=triad_gbs)
    benchmark(compiled.run, state)


def test_mlp_c(benchmark):  # BLAS into the output, then the generated epilogue in place
    graph = example("06_mlp")
    xs = inputs_for(graph)
    compiled = compile_c(graph)
    benchmark(compiled.run, xs)


def test_mlp_numpy_matmul_alone(benchmark):
    graph = example("06_mlp")
    xs = inputs_for(graph)
    out = np.empty((xs[0].shape[0], xs[1].shape[1]), np.float32)
    benchmark(np.matmul, xs[0], xs[1], out=out)
