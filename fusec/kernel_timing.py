"""Time a fusion plan kernel by kernel with the C backend: what the cost model is checked against.

    from fusec.kernel_timing import plan_for, time_plan
    p = plan_for(graph, [["e", "rows"], ["cols"]])      # any legal partition, as a Plan
    t = time_plan(p, repeats=7)                          # PlanTiming: per-kernel medians, total
    ts = time_plans([p, q], repeats=7)                   # several plans of one graph, alternately

Every kernel runs on its real inputs (the outputs of the kernels before it), `repeats` times, and
the median is kept; kernels are timed alternately (round-robin, across plans too with `time_plans`,
in a new order each round) so a burst of load on a shared machine spreads over all of them instead
of landing on one, and so does what the plan run just before leaves behind. `fusec calibrate` and
bench/bench_traps.py use it.
"""

from __future__ import annotations

import functools
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fusec.errors import FusecError
from fusec.fusion.legality import analyze
from fusec.fusion.plan import Plan, group_kind, make_group
from fusec.fusion.program import run_order
from fusec.inputs import random_inputs
from fusec.ir.graph import Graph
from fusec.pipeline import build, choose_backend, lower, pick_schedule
from fusec.runtime.loader import thread_budget


@dataclass
class PlanTiming:
    kernels: list[float]  # median seconds of each group's kernel, in plan order
    load: float | None  # the 1-minute load average when the timing started (None: not read)

    @property
    def total(self) -> float:
        return sum(self.kernels)


def plan_for(graph: Graph, partition: list[list[str]], policy: str = "given") -> Plan:
    """A Plan of `graph` (already prepared: composites expanded) with exactly these groups."""
    order = {n: i for i, n in enumerate(graph.topo_order())}
    seen = [n for members in partition for n in members]
    ops = {n.name for n in graph.ops()}
    if sorted(seen) != sorted(ops):
        raise FusecError("a partition must hold every op of the graph exactly once")
    for members in partition:
        analyze(graph, members, order)  # raises ContractViolation if it is not a kernel
    ordered = run_order(graph, partition, order)  # FusecError if the kernels depend on each other in a cycle
    groups = [make_group(graph, k, list(partition[i]), group_kind(graph, list(partition[i])), order)
              for k, i in enumerate(ordered)]
    return Plan(graph, groups, policy=policy)


STATS = {"median": statistics.median, "min": min}


def time_plan(p: Plan, repeats: int = 7, seed: int = 0, backend: str = "c", read_load: bool = True,
              stat: str = "median", evict: int = 0, before: Callable[[], None] | None = None) -> PlanTiming:
    """Build every kernel of `p` and time each one on its real inputs (medians of `repeats`).
    `read_load=False` leaves the load average to the caller (calibrate reads it around all probes).
    `evict=N` reads N bytes of other data before each run (see evict_caches); `before` is then
    called (see time_plans)."""
    return time_plans([p], repeats, seed, backend, read_load, stat, evict, before=before)[0]


MEMORY = 1 << 30  # evict this much to leave a kernel's arrays in memory only: more than the 480 MiB L3 here
AFTER_A_KERNEL = 2 << 20  # or this much (the L2 of one core), as the kernel before it would have
AFTER_A_LARGE_KERNEL = 32 << 20  # as a kernel of large arrays would: more than every core's L2
# a small kernel inside a plan of large ones follows, most likely, a small kernel that followed a
# large one: read AFTER_A_LARGE_KERNEL bytes, then call another small kernel (small_kernel_call).
# The call warms the path a call takes, which reading data does not: a one-tile kernel took 2.9-3.0
# us so, 10.6-11.2 after the read alone and 1.5-2.3 after reading 1 MiB only (quiet, 2026-11-30)
AFTER_A_SMALL_KERNEL = AFTER_A_LARGE_KERNEL


def evict_caches(other: np.ndarray) -> None:
    """Read `other`, an array of other data, so the caches hold it (clean: the kernel timed next pays
    no write-back of it) instead of the kernel's arrays: after MEMORY bytes, a kernel finds its arrays
    in memory, as in a plan whose other kernels ran in between; after AFTER_A_KERNEL bytes, its small
    arrays are out of the nearest cache, as after another kernel. The thread budget's load sample
    is then taken afresh, so the timed run does not pay for reading /proc."""
    float(other.sum())
    budget = thread_budget()
    if budget is not None:
        budget.free_cores()


@functools.cache
def small_kernel_call(backend: str = "c") -> Callable[[], None]:
    """A call of a small kernel of its own (a 2048-element stream), for `time_plans(before=...)`;
    built once per process, as the call probe asks for it in every round."""
    from fusec.frontend import parse
    from fusec.fusion.planner import prepare

    graph = prepare(parse("graph before(x: f32[2048]) {\n  y = x * 3.0 - 1.0\n  return y\n}\n"))
    (kernel,) = _kernels(plan_for(graph, [[n.name for n in graph.ops()]]), choose_backend(backend))
    x, y = np.ones(2048, np.float32), np.empty(2048, np.float32)
    return lambda: kernel.run(x, y)


def _kernels(p: Plan, be) -> list:
    nests = [lower(p.graph, grp, {}) for grp in p.groups]
    return build(be, p.graph, p.groups, nests, [pick_schedule(be, n, None, False) for n in nests])


def time_plans(plans: list[Plan], repeats: int = 7, seed: int = 0, backend: str = "c",
               read_load: bool = True, stat: str = "median", evict: int = 0, warm: bool = False,
               before: Callable[[], None] | None = None) -> list[PlanTiming]:
    """Time several plans of one graph alternately: each round runs every kernel of every plan once,
    the plans in a new order each round (seeded by `seed`), so a burst of load on a shared machine
    lands on all the plans instead of on the one measured while it lasted. The plans share their
    arrays: every plan computes the same values, by name.
    `stat="min"` keeps each kernel's fastest run instead of its median: on a machine others load,
    the time it takes when it gets the cores. `warm=True` runs each plan once more, untimed, just
    before its timed run, so it finds the caches as a program that runs it again and again does,
    not as the other plans left them. `before` runs just before each timed run, after the eviction
    (small_kernel_call: as after a small kernel)."""
    keep = STATS[stat]
    g = plans[0].graph
    be = choose_backend(backend)
    built = [_kernels(p, be) for p in plans]
    values: dict[str, np.ndarray] = dict(zip(g.inputs, random_inputs(g, seed)))
    for kernels in built:
        for k in kernels:
            for o in k.outputs:
                if o not in values:
                    t = g.type_of(o)
                    values[o] = np.empty(t.shape, t.dtype.numpy)
            k.run(*(values[v] for v in k.params))  # warm up, and compute the next kernels' inputs
    other = np.ones(evict // 4, np.float32) if evict else None  # freed when the timing ends
    load = os.getloadavg()[0] if read_load else None
    samples: list[list[list[float]]] = [[[] for _ in kernels] for kernels in built]
    rng = random.Random(seed)
    for _ in range(repeats):
        # each round in a new order (the same for the same seed): what the plan run just before
        # leaves behind changes a kernel's time (row_value_broadcast's kernel that tabulates erf
        # and tanh took 1.04 ms in a fixed order of its 32 plans, 0.67 ms when its plan ran first),
        # so in a fixed order one plan would pay it in every round, and its median with it
        for i in rng.sample(range(len(built)), len(built)):
            kernels, plan_samples = built[i], samples[i]
            if warm:
                for k in kernels:
                    k.run(*(values[v] for v in k.params))
            for k, ks in zip(kernels, plan_samples):
                args = [values[v] for v in k.params]
                if other is not None:
                    evict_caches(other)
                if before is not None:
                    before()
                start = time.perf_counter()
                k.run(*args)
                ks.append(time.perf_counter() - start)
    return [PlanTiming([keep(ks) for ks in plan_samples], load) for plan_samples in samples]
