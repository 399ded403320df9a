"""`fusec calibrate`: measure this machine's cost-model constants with probe kernels built by fusec.

    from fusec.calibration import calibrate
    result = calibrate()          # fusion.calibrate.Calibration: the model, notes, the load

fusion/calibrate.py defines the probes and fits the constants; it sits below the compiler, so the
part that builds and times a probe kernel (through fusec.kernel_timing, exactly as
bench/bench_traps.py times a plan's kernels) lives here and is passed in as the timer.
"""

from __future__ import annotations

from fusec.fusion.calibrate import Calibration, Probe
from fusec.fusion.calibrate import calibrate as _calibrate
from fusec.kernel_timing import (
    AFTER_A_KERNEL,
    AFTER_A_LARGE_KERNEL,
    AFTER_A_SMALL_KERNEL,
    MEMORY,
    plan_for,
    small_kernel_call,
    time_plan,
)

# a probe's `cold` -> bytes of other data read before each run
EVICT = {"": 0, "large": 0, "kernel": AFTER_A_KERNEL, "small kernel": AFTER_A_SMALL_KERNEL,
         "large kernel": AFTER_A_LARGE_KERNEL, "memory": MEMORY, "producer": 0}


def time_probe(probe: Probe, stat: str = "median") -> float:
    """The median (or fastest) seconds of the probe's kernel (C backend, its `repeats` runs; its
    arrays evicted from the caches before each run as the probe's `cold` says, or, for "producer",
    right after the kernel of the graph's first op, which makes its input)."""
    graph = probe.graph()
    ops = [n.name for n in graph.ops()]
    p = plan_for(graph, [ops[:1], ops[1:]] if probe.cold == "producer" else [ops])
    before = small_kernel_call() if probe.cold == "small kernel" else None  # after the read, a small kernel
    return time_plan(p, repeats=probe.repeats, read_load=False, stat=stat, evict=EVICT[probe.cold],
                     before=before).kernels[-1]


def calibrate(quick: bool = False, stat: str = "median") -> Calibration:
    """Measure this machine: the runtime probes, then the probe kernels, and fit the model.
    `stat="min"` fits the probes' fastest runs (bench_traps --stat min compares against those)."""
    return _calibrate(quick, timer=lambda probe: time_probe(probe, stat))
