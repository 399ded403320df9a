"""Predicting a schedule's time without running it, to rank and prune candidates.

Two models:

* `predict(nest, schedule, machine)`: the roofline of fusec.fusion (bytes / bandwidth against
  flops / peak, plus a fixed cost; each op's flops from its row in the op table) adjusted for what
  a schedule changes:
    - threads: a parallel outer loop with t trips keeps min(t, cores) cores busy; one core reaches
      about 64% of the two-core bandwidth (DESIGN.md, measured) and 1/cores of the peak;
    - vectors: a loop that is neither vectorized nor unrolled runs at 1/lanes of the peak if it
      carries a reduction (gcc may not reorder a float sum without `omp simd`), else at 1/2
      (gcc -O3 still auto-vectorizes plain elementwise loops, not always well);
    - loop overhead: about 2 ns per entry of an innermost loop, so tiny tiles cost;
    - strides: an innermost loop that walks a large buffer with a stride wastes most of each
      64-byte cache line, so that buffer's traffic is multiplied by line / itemsize.
  It only has to order candidates roughly; measurements decide.

* `FittedModel`: least squares of log(measured seconds) on a few features of the schedule (the
  analytic prediction, threads, vector, unroll, tile block size, reduce block). It learns from the trials of this
  run and from earlier runs of the same kernel in the database, and replaces the analytic ranking
  once there are enough points.
"""

from __future__ import annotations

import math

import numpy as np

from fusec.fusion.machine import MachineModel
from fusec.ir.ops import OPS
from fusec.loops.ir import AccUpdate, Load, Loop, LoopNest, Op, Store, bounds, loops, stmt_exprs, walk_expr
from fusec.loops.schedule import Schedule, apply_schedule

LINE_BYTES = 64
VECTOR_BYTES = 32  # AVX2
ONE_CORE_BANDWIDTH = 0.64  # share of the all-core bandwidth one core reaches (DESIGN.md)
LOOP_ENTRY_S = 2e-9



def _cores() -> int:
    import os

    return os.cpu_count() or 1


def _count_ops(e) -> int:
    return sum(OPS[x.op].flops for x in walk_expr(e) if isinstance(x, Op))


class _Walk:
    """Counts, over a scheduled nest: flops, innermost-loop entries, strided big buffers."""

    def __init__(self, nest: LoopNest):
        self.nest = nest
        self.ranges: dict[str, int] = {d.var: d.extent for d in nest.dims}
        self.flops = 0.0
        self.entries = 0.0
        self.reduction_scalar_work = 0.0  # flops in non-vector loops that update accumulators
        self.plain_scalar_work = 0.0  # flops in other non-vector, non-unrolled innermost loops
        self.strided: set[str] = set()

    def run(self) -> _Walk:
        self._stmts(self.nest.body, 1.0, None)
        return self

    def _stmts(self, stmts, trips: float, loop: Loop | None) -> None:
        for s in stmts:
            if isinstance(s, Loop):
                hi = bounds(s.extent, self.ranges)[1]
                self.ranges[s.var] = max(hi, 1)
                innermost = not any(isinstance(b, Loop) for b in s.body)
                if innermost:
                    self.entries += trips
                self._stmts(s.body, trips * max(hi, 1), s)
                continue
            work = sum(_count_ops(e) for e in stmt_exprs(s)) * trips
            self.flops += work
            if loop is not None and loop.kind == "serial":
                if isinstance(s, AccUpdate):
                    self.reduction_scalar_work += work
                else:
                    self.plain_scalar_work += work
            if loop is not None:
                self._strides(s, loop)

    def _strides(self, s, loop: Loop) -> None:
        accesses = [(x.buffer, x.index) for e in stmt_exprs(s) for x in walk_expr(e) if isinstance(x, Load)]
        if isinstance(s, Store):
            accesses.append((s.buffer, s.index))
        for buf, index in accesses:
            v = loop.split.of if loop.split is not None and loop.split.part == "inner" else loop.var
            c = abs(index.coef(v)) or abs(index.coef(loop.var))
            if c > 1:
                self.strided.add(buf)


def predict(nest: LoopNest, schedule: Schedule, machine: MachineModel | None = None) -> float:
    """Predicted seconds of `nest` under `schedule` (a ranking, not a promise)."""
    machine = machine or MachineModel()
    scheduled = apply_schedule(nest, schedule)
    w = _Walk(scheduled).run()
    cores = _cores()
    threads = 1
    for lp in loops(scheduled.body):
        if lp.kind == "parallel":  # as many busy cores as the parallel loop has trips
            threads = max(1, min(cores, bounds(lp.extent, w.ranges)[1]))
            break
    itemsize = min((b.dtype.itemsize for b in nest.buffers), default=4)
    lanes = max(1, VECTOR_BYTES // itemsize)
    nbytes = 0.0
    for b in nest.buffers:
        size = b.size * b.dtype.itemsize * (2 if b.role == "inout" else 1)
        if b.name in w.strided and size > machine.cache_bytes:
            size *= max(1, LINE_BYTES // b.dtype.itemsize)
        nbytes += size
    share = 1.0 if threads >= cores else min(1.0, ONE_CORE_BANDWIDTH * threads)
    bandwidth = machine.bandwidth_gbs * 1e9 * share
    peak = machine.peak_gflops * 1e9 * threads / cores
    vector_work = w.flops - w.reduction_scalar_work - w.plain_scalar_work
    compute = (vector_work + w.reduction_scalar_work * lanes + w.plain_scalar_work * 2) / peak
    fork = machine.kernel_overhead_us * 1e-6 * (1 if threads > 1 else 0.25)
    return max(nbytes / bandwidth, compute) + w.entries * LOOP_ENTRY_S / threads + fork


# ----------------------------------------------------------------------------------------------
# a model fitted on measurements


def features(nest: LoopNest, schedule: Schedule, predicted: float) -> list[float]:
    kept = [d.extent for d in nest.dims if not d.reduced]
    block = math.prod(t if t > 0 else e for t, e in zip(schedule.tiles, kept)) * math.prod(kept[len(schedule.tiles):])
    return [
        math.log(max(predicted, 1e-9)),
        float(schedule.parallel),
        float(schedule.vectorize),
        math.log2(schedule.unroll),
        math.log2(max(block, 1)),
        float(bool(schedule.order)),
        math.log2(schedule.simdlen) if schedule.simdlen else 0.0,
        float(schedule.stream),
        float(schedule.threads),
        math.log2(schedule.reduce_block) if schedule.reduce_block else 0.0,
    ]


class FittedModel:
    """log(seconds) ~ features, by ridge-regularised least squares."""

    MIN_POINTS = 5
    RIDGE = 1e-4

    def __init__(self, nest: LoopNest, machine: MachineModel | None = None):
        self.nest = nest
        self.machine = machine
        self.xs: list[list[float]] = []
        self.ys: list[float] = []
        self.weights: np.ndarray | None = None
        self._pred: dict[Schedule, float] = {}

    def analytic(self, s: Schedule) -> float:
        if s not in self._pred:
            self._pred[s] = predict(self.nest, s, self.machine)
        return self._pred[s]

    def add(self, s: Schedule, seconds: float) -> None:
        self.xs.append(features(self.nest, s, self.analytic(s)))
        self.ys.append(math.log(seconds))
        self.weights = None

    @property
    def ready(self) -> bool:
        return len(self.ys) >= self.MIN_POINTS

    def fit(self) -> None:
        # standardised features and an unpenalised mean, so the ridge term only tames collinear
        # features (the analytic prediction moves with the tile size) and never biases the level
        x = np.array(self.xs)
        y = np.array(self.ys)
        self.mean = x.mean(axis=0)
        self.scale = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        z = (x - self.mean) / self.scale
        self.level = y.mean()
        a = z.T @ z + self.RIDGE * len(y) * np.eye(z.shape[1])
        self.weights = np.linalg.solve(a, z.T @ (y - self.level))

    def __call__(self, s: Schedule) -> float:
        """Predicted seconds: fitted if there are enough measurements, else analytic."""
        if not self.ready:
            return self.analytic(s)
        if self.weights is None:
            self.fit()
        z = (np.array(features(self.nest, s, self.analytic(s))) - self.mean) / self.scale
        # a linear model extrapolates without bound: keep predictions near the measured range
        low, high = min(self.ys) - 3.0, max(self.ys) + 3.0
        return float(math.exp(min(max(self.level + float(np.dot(self.weights, z)), low), high)))
