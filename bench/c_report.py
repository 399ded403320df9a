"""Print the C backend's performance table: every figure measured in this one run.

    python bench/c_report.py            # full default sizes (needs ~3 GiB and a few minutes)
    python bench/c_report.py --quick    # 1/16 of the sizes, a smoke run

Columns: the C kernel's median time with caller-provided outputs; the roofline time, (bytes of
inputs + outputs) / STREAM-triad bandwidth measured right before that row; the fraction of roofline
reached (roofline / C time; target >= 70%); the unfused interpreter's time and the speedup over it
(target >= 5x); numexpr (a fused peer) where it can express the graph. adam runs in place (target
<= 1.1x its roofline); mlp is compared with NumPy's matmul alone (target <= 1.05x). Compile: a cold
compile (fresh cache, gcc included; target <= 1 s) and a cache hit (target <= 20 ms).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from c_harness import MEMORY_BOUND, compile_c, example, graph_bytes, inputs_for, time_call  # noqa: E402

import fusec  # noqa: E402
from fusec.codegen.c_backend import CBackend  # noqa: E402
from fusec.interp import interpret  # noqa: E402
from fusec.runtime.cache import KernelCache  # noqa: E402
from fusec.runtime.probes import measure_triad  # noqa: E402
from fusec.tolerance import compare  # noqa: E402

NUMEXPR = {
    "01_chain": "((x * 2 + 1) * x - 3) / (x * x + 1) + sqrt(abs(x))",
    "02_gelu": "0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))",
}


def shrink(graph_sizes: dict[str, int], quick: bool) -> dict[str, int]:
    if not quick:
        return {}  # the example's own sizes
    return {k: max(1, v // 4) for k, v in graph_sizes.items()}


def triad_gbs() -> float:
    return measure_triad(repeats=8).best_gbs


def memory_bound_rows(quick: bool, backend: CBackend) -> list[str]:
    rows = []
    for stem in MEMORY_BOUND:
        graph = example(stem, {})
        graph = example(stem, shrink(graph.dims, quick))
        xs = inputs_for(graph)
        compiled = compile_c(graph)
        got = compiled.run(xs)
        want = interpret(graph, *xs)
        assert compare(got, want) is None, f"{stem}: the C result differs from the interpreter"
        bw = triad_gbs()
        c = time_call(lambda c=compiled, x=xs: c.run(x), repeats=15)
        interp = time_call(lambda g=graph, x=xs: interpret(g, *x), repeats=3)
        roof = graph_bytes(graph) / (bw * 1e9)
        peer = "-"
        if stem in NUMEXPR:
            try:
                import numexpr

                out = np.empty_like(xs[0])
                expr, x0 = NUMEXPR[stem], xs[0]
                ne = time_call(lambda e=expr, x=x0, o=out: numexpr.evaluate(e, local_dict={"x": x}, out=o), repeats=7)
                peer = f"{ne['median'] * 1e3:8.2f}"
            except ImportError:
                peer = "n/a"
        rows.append(
            f"{stem:<14} {c['median'] * 1e3:8.2f} {roof * 1e3:9.2f} {bw:7.1f} {100 * roof / c['median']:7.0f}% "
            f"{interp['median'] * 1e3:9.1f} {interp['median'] / c['median']:7.1f}x {peer:>8}"
        )
    return rows


def adam_row(quick: bool, backend: CBackend) -> str:
    graph = example("07_adam", {})
    graph = example("07_adam", shrink(graph.dims, quick))
    xs = inputs_for(graph)
    want = interpret(graph, *xs)
    compiled = compile_c(graph, inplace={"p_new": "p", "m_new": "m", "v_new": "v"})
    state = [x.copy() for x in xs]
    got = compiled.run(state)
    for g, w in zip(got, want):
        assert compare(g, w) is None, "adam: the C result differs from the interpreter"
    bw = triad_gbs()
    c = time_call(lambda: compiled.run(state), repeats=15)  # repeated steps keep updating p, m, v in place
    roof = graph_bytes(graph) / (bw * 1e9)
    return f"adam in place: {c['median'] * 1e3:.2f} ms, roofline {roof * 1e3:.2f} ms at {bw:.1f} GB/s -> {c['median'] / roof:.2f}x roofline (target <= 1.1x)"


def mlp_row(quick: bool, backend: CBackend) -> str:
    graph = example("06_mlp", {})
    graph = example("06_mlp", shrink(graph.dims, quick))
    xs = inputs_for(graph)
    compiled = compile_c(graph)
    got = compiled.run(xs)
    assert compare(got, interpret(graph, *xs)) is None, "mlp: the C result differs from the interpreter"
    out = np.empty_like(got)
    mm = time_call(lambda: np.matmul(xs[0], xs[1], out=out), repeats=9)
    c = time_call(lambda: compiled.run(xs), repeats=9)
    small_graph = example("06_mlp", {"B": 256, "K": 256, "F": 1024})
    small = inputs_for(small_graph)
    looped = legacy_driver(small_graph, CBackend(matmul="loops", cache=backend.cache))
    c_loops = time_call(lambda: looped(small), repeats=3)
    blas_small = legacy_driver(small_graph, backend)
    c_blas_small = time_call(lambda: blas_small(small), repeats=9)
    return (
        f"mlp: C (BLAS into the output + C epilogue in place) {c['median'] * 1e3:.2f} ms, NumPy matmul alone {mm['median'] * 1e3:.2f} ms "
        f"-> {c['median'] / mm['median']:.3f}x (target <= 1.05x)\n"
        f"  matmul choice at 256x256x1024: BLAS + C epilogue {c_blas_small['median'] * 1e3:.2f} ms, "
        f"generated C loops {c_loops['median'] * 1e3:.2f} ms"
    )


def legacy_driver(graph, backend: CBackend):
    """One matmul group built by a given backend object (to compare the matmul strategies)."""
    from fusec.fusion.planner import plan
    from fusec.loops.lower import lower_group

    p = plan(graph)
    (group,) = p.groups
    nest = lower_group(p.graph, group)
    kernel = backend.build(p.graph, group, nest, backend.default_schedule(nest))
    out = np.ones(nest.buffers[-1].shape, np.float32)
    return lambda xs: kernel(*[np.ascontiguousarray(a).reshape(b.shape) for a, b in zip(xs, nest.buffers[:-1])], out)


def compile_rows() -> list[str]:
    rows = []
    saved = os.environ.get("FUSEC_CACHE_DIR")
    for path in sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.fg")):
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["FUSEC_CACHE_DIR"] = tmp  # a fresh, empty kernel cache
            t0 = time.perf_counter()
            fusec.compile(path, backend="c", tune_db=False)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            fusec.compile(path, backend="c", tune_db=False)
            hit = time.perf_counter() - t0
        rows.append(f"{path.stem:<22} cold {cold * 1e3:7.0f} ms   cache hit {hit * 1e3:6.1f} ms")
    if saved is None:
        os.environ.pop("FUSEC_CACHE_DIR", None)
    else:
        os.environ["FUSEC_CACHE_DIR"] = saved
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1/4 of each dimension: a smoke run")
    parser.add_argument("--only", choices=["memory", "adam", "mlp", "compile"], action="append")
    args = parser.parse_args()
    only = set(args.only or ["memory", "adam", "mlp", "compile"])
    backend = CBackend(cache=KernelCache(os.environ.get("FUSEC_CACHE_DIR") or tempfile.mkdtemp(prefix="fusec-bench-")))
    print(f"fusec C backend report: {os.cpu_count()} cores, compiler {backend.compiler.identity}")
    print(f"flags: {' '.join(backend.flags)}")
    print(f"load average at start: {os.getloadavg()[0]:.1f} (figures are only comparable on a quiet machine)")
    if "memory" in only:
        print()
        print(f"{'workload':<14} {'C ms':>8} {'roof ms':>9} {'GB/s':>7} {'%roof':>8} {'interp ms':>9} {'speedup':>8} {'numexpr':>8}")
        for row in memory_bound_rows(args.quick, backend):
            print(row, flush=True)
    if "adam" in only:
        print()
        print(adam_row(args.quick, backend), flush=True)
    if "mlp" in only:
        print()
        print(mlp_row(args.quick, backend), flush=True)
    if "compile" in only:
        print()
        for row in compile_rows():
            print(row, flush=True)
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
