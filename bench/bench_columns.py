"""Column reductions on the C backend: the accumulator-row form (Schedule.acc_row, fusec/loops/interchange.py)
against the strided form it replaced (one accumulator per kept point, the reduced loop inside), built in
one process and timed alternately (old, new, old, new, ...): medians in ms, with the load average.

    python bench/bench_columns.py [--reps 15] [FILE.fg ...]

Every reduce kernel of a graph's plan that the C default schedules as a column reduction is timed
both ways, on the same random inputs, with caller-provided outputs; the two must agree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

import fusec
from fusec.codegen.c_backend import CBackend
from fusec.loops.defaults import default_schedule
from fusec.loops.schedule import Schedule
from fusec.pipeline import compile_stages

ROOT = Path(__file__).resolve().parent.parent
LN_COLS = """graph layernorm_cols<N=8192, D=1024>(x: f32[N, D], gamma: f32[D], beta: f32[D]) {
  mean = mean(x, axis=0, keepdims=true)
  d = x - mean
  var = mean(d * d, axis=0, keepdims=true)
  y = d * rsqrt(var + 1e-5) * gamma + beta
  return y
}"""
LN_CHAIN = ["mean", "d", "var_mul", "var", "y_add", "y_rsqrt", "y_mul", "y_mul_2", "y"]
SOFTMAX_COLS = """graph softmax_cols(x: f32[4096, 4096]) {
  m = max(x, axis=0, keepdims=true)
  e = exp(x - m)
  s = sum(e, axis=0, keepdims=true)
  y = e / s
  return y
}"""
SOFTMAX_CHAIN = ["m", "e_sub", "e", "s", "y"]
CASES = [  # (name, graph file or text, ops forced into one kernel)
    ("col sum 2048x2048", "graph cs(x: f32[2048, 2048]) { s = sum(x, axis=0) return s }", []),
    ("col sum 4096x4096", "graph cs(x: f32[4096, 4096]) { s = sum(x, axis=0) return s }", []),
    ("col max [16, 1024, 256] axis 1", "graph cm(x: f32[16, 1024, 256]) { m = max(x, axis=1) return m }", []),
    ("trap col_sum_broadcast", str(ROOT / "bench/traps/col_sum_broadcast.fg"), []),
    ("trap erf_row_col", str(ROOT / "bench/traps/erf_row_col.fg"), []),
    ("trap sibling_spaces", str(ROOT / "bench/traps/sibling_spaces.fg"), []),
    ("example 04 over axis 0 (8192x1024)", LN_COLS, []),
    ("example 04 over axis 0, one kernel", LN_COLS, LN_CHAIN),
    ("softmax over axis 0 4096x4096, one kernel", SOFTMAX_COLS, SOFTMAX_CHAIN),
]


def strided(nest) -> Schedule:
    """The C default this module replaced: tiles of the kept axes, reduced loops inside."""
    kept = [d for d in nest.dims if not d.reduced]
    row = max(1, int(np.prod([d.extent for d in nest.dims if d.reduced])))
    tiles = [0] * len(kept)
    inner = row
    for pos in range(len(kept) - 1, -1, -1):
        if inner * kept[pos].extent > 16384 or pos == 0:
            tiles[pos] = max(1, min(kept[pos].extent, 16384 // inner))
            tiles[:pos] = [1] * pos
            break
        inner *= kept[pos].extent
    return Schedule(tuple(tiles), parallel=True, vectorize=True)


def arrays_for(nest, rng):
    out = []
    for b in nest.buffers:
        if b.role == "out":
            out.append(np.empty(b.shape, b.dtype.numpy))
        else:
            out.append(rng.standard_normal(b.shape).astype(b.dtype.numpy))
    return out


def time_pair(old, new, arrays, reps: int) -> tuple[float, float]:
    times = {0: [], 1: []}
    for k in range(2 * reps + 2):
        which = k % 2
        t = time.perf_counter()
        (old, new)[which](*arrays)
        if k >= 2:
            times[which].append(time.perf_counter() - t)
    return statistics.median(times[0]) * 1e3, statistics.median(times[1]) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()
    cases = [(f, f, []) for f in args.files] or CASES
    backend = CBackend()
    rng = np.random.default_rng(0)
    print(f"load average at start: {os.getloadavg()}")
    for name, source, chain in cases:
        graph = source if source.endswith(".fg") else fusec.parse(source)
        st = compile_stages(graph, backend="c", stop_after="loops", tune_db=False, force_fuse=list(zip(chain, chain[1:])))
        for group, nest in zip(st.plan.groups, st.nests):
            new_schedule = default_schedule(nest, "c")
            if not new_schedule.acc_row:
                continue
            old = backend.build(st.plan.graph, group, nest, strided(nest))
            new = backend.build(st.plan.graph, group, nest, new_schedule)
            arrays = arrays_for(nest, rng)
            outs = [k for k, b in enumerate(nest.buffers) if b.role == "out"]
            old(*arrays)
            first = [arrays[k].copy() for k in outs]
            new(*arrays)
            for k, ref in zip(outs, first):
                np.testing.assert_allclose(arrays[k], ref, rtol=1e-4, atol=1e-4)
            t_old, t_new = time_pair(old, new, arrays, args.reps)
            print(f"{name:36s} {nest.name:24s} strided {t_old:8.3f} ms  acc_row={new_schedule.acc_row:<5d} {t_new:8.3f} ms"
                  f"  {t_old / t_new:5.1f}x")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
