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

* `FittedModel`: a Bayesian linear model of log(measured seconds): the analytic prediction plus one
  effect per knob value (tile size, order, threading, vectorize, unroll, width, stream, reduce
  block). It learns from the trials of this run and from earlier runs of the same kernel in the
  database, replaces the analytic ranking once there are enough points, and can be sampled
  (Thompson sampling) so that a search explores knob values it is unsure of.
"""

from __future__ import annotations

import math
from collections.abc import Callable

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


def knob_values(schedule: Schedule) -> list[tuple[str, object]]:
    """The schedule's setting of each knob, as (knob, value) pairs: the fitted model's categories."""
    return [*((f"tile {k}", t) for k, t in enumerate(schedule.tiles)), ("order", schedule.order),
            ("parallel", (schedule.parallel, schedule.threads)), ("vectorize", schedule.vectorize),
            ("unroll", schedule.unroll), ("simdlen", schedule.simdlen), ("stream", schedule.stream),
            ("reduce_block", schedule.reduce_block)]


class FittedModel:
    """log(seconds) = level + a * log(analytic prediction) + the sum of one effect per knob value.

    Bayesian linear regression: each knob value's effect (and the analytic slope) has a normal prior
    around 0 with standard deviation PRIOR (in log seconds: a value that halves the time is 0.7), the
    noise a standard deviation estimated from the residuals (at least NOISE: timings on a shared
    machine scatter by 5-10%). A value never measured keeps its prior, 0: the candidates that hold
    it are ranked by the analytic model and the values measured with them. `sample(rng)` draws one
    model from the posterior (Thompson sampling); `__call__` uses the posterior mean.
    """

    MIN_POINTS = 5
    PRIOR = 0.5
    NOISE = 0.07

    def __init__(self, nest: LoopNest, machine: MachineModel | None = None):
        self.nest = nest
        self.machine = machine
        self.points: list[tuple[Schedule, float]] = []
        self.columns: dict[tuple[str, object], int] = {}
        self.mean: np.ndarray | None = None
        self._pred: dict[Schedule, float] = {}

    def analytic(self, s: Schedule) -> float:
        if s not in self._pred:
            self._pred[s] = predict(self.nest, s, self.machine)
        return self._pred[s]

    def add(self, s: Schedule, seconds: float) -> None:
        self.points.append((s, math.log(seconds)))
        for kv in knob_values(s):
            self.columns.setdefault(kv, len(self.columns) + 1)  # column 0: the analytic prediction
        self.mean = None

    @property
    def ready(self) -> bool:
        return len(self.points) >= self.MIN_POINTS

    def row(self, s: Schedule) -> np.ndarray:
        x = np.zeros(len(self.columns) + 1)
        x[0] = math.log(max(self.analytic(s), 1e-12)) - self.center
        for kv in knob_values(s):
            if kv in self.columns:
                x[self.columns[kv]] = 1.0
        return x

    def fit(self) -> None:
        self.center = float(np.mean([math.log(max(self.analytic(s), 1e-12)) for s, _ in self.points]))
        x = np.array([self.row(s) for s, _ in self.points])
        y = np.array([t for _, t in self.points])
        self.level = float(y.mean())  # an unpenalised level: the prior pulls effects to 0, not the time
        a = x.T @ x + np.eye(x.shape[1]) * (self.NOISE / self.PRIOR) ** 2
        self.mean = np.linalg.solve(a, x.T @ (y - self.level))
        resid = y - self.level - x @ self.mean
        noise = max(self.NOISE, float(np.sqrt(resid @ resid / max(len(y) - 1, 1))))
        self.cov = np.linalg.inv(a) * noise ** 2

    def sample(self, rng) -> Callable[[Schedule], float]:
        """One model drawn from the posterior: seconds of a schedule (the analytic model before ready)."""
        if not self.ready:
            return self.analytic
        if self.mean is None:
            self.fit()
        z = np.random.default_rng(rng.getrandbits(32)).multivariate_normal(self.mean, self.cov, method="cholesky")
        return lambda s: math.exp(self.level + float(self.row(s) @ z))

    def __call__(self, s: Schedule) -> float:
        """Predicted seconds: the posterior mean once there are enough measurements, else analytic."""
        if not self.ready:
            return self.analytic(s)
        if self.mean is None:
            self.fit()
        return math.exp(self.level + float(self.row(s) @ self.mean))
