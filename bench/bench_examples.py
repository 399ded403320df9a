"""Every example on every path: the unfused interpreter, the NumPy backend and the C backend.

Run: pytest bench/bench_examples.py --benchmark-only --benchmark-group-by=param:stem
     (reduced sizes by default; --bench-full or FUSEC_BENCH_FULL=1 for the examples' own sizes)

Each group holds one example's three paths, measured in the same run, so the ratios within a
group are what to read. The compiled paths write into caller-provided outputs (`out=`), touched
once before timing, and are checked against the interpreter first (fusec.tolerance). The sizes,
the kernel count and the cost model's bytes are stored in `extra_info`.
"""

from __future__ import annotations

import numpy as np
import pytest
from c_harness import ALL_EXAMPLES, example, inputs_for

import fusec
from fusec.fusion import explain
from fusec.interp import interpret
from fusec.tolerance import compare_output

PATHS = ("interp", "numpy", "c")


@pytest.fixture(scope="module", params=ALL_EXAMPLES)
def workload(request):
    graph = example(request.param)
    xs = inputs_for(graph)
    want = interpret(graph, *xs)
    return request.param, graph, xs, want if isinstance(want, tuple) else (want,)


@pytest.mark.parametrize("path", PATHS)
def test_example(benchmark, workload, path):
    stem, graph, xs, want = workload
    benchmark.extra_info.update(stem=stem, path=path, sizes=dict(graph.dims))
    if path == "interp":
        benchmark.extra_info["kernels"] = len(graph.ops())
        benchmark.pedantic(interpret, args=(graph, *xs), rounds=3, iterations=1, warmup_rounds=1)
        return
    program = fusec.compile(graph, backend=path, tune_db=False)
    outs = tuple(np.empty(o.shape, o.dtype) for o in program.outputs)
    program(*xs, out=outs)  # warm: pages touched, libraries loaded
    for name, got, expected in zip(graph.outputs, outs, want):
        assert compare_output(graph, name, got, expected) is None, f"{stem}: the {path} backend differs on {name}"
    report = explain(program.stages.plan)
    benchmark.extra_info.update(kernels=program.kernels, bytes_fused=report["bytes_fused"])
    benchmark.pedantic(program, args=tuple(xs), kwargs={"out": outs}, rounds=5, iterations=1, warmup_rounds=1)
