"""Measure the machine model: bandwidth, peak arithmetic and the fixed cost of one kernel.

The measurements use the runtime's generated C probes (fusec.runtime.probes): a STREAM triad over
arrays far larger than the caches gives the bandwidth; independent fma chains give the peak; a
triad over a tiny array, where moving the data costs next to nothing, gives the fixed cost of
starting one parallel kernel. Without a C compiler, the bandwidth comes from a NumPy triad instead,
and the result says so (NumPy's triad makes temporaries, so it under-reports).

Figures measured on a busy machine describe the other processes as much as this one: the load
average is read before and after measuring and stored with the figures, and `busy` says when it
is above half the cores (the command then refuses to store them unless forced).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import numpy as np

from fusec.errors import FusecError
from fusec.fusion.machine import MachineModel


@dataclass
class Calibration:
    model: MachineModel
    method: str  # "generated C probes" or "NumPy triad (no C compiler)"
    notes: list[str] = field(default_factory=list)
    load_before: float | None = None  # 1-minute load average before measuring (None: not available)
    load_after: float | None = None

    @property
    def load(self) -> float | None:
        """The higher of the load averages before and after measuring."""
        known = [x for x in (self.load_before, self.load_after) if x is not None]
        return max(known) if known else None


def load_average() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def busy(cal: Calibration, cores: int | None = None) -> str | None:
    """Why the figures should not be stored (the load above half the cores), or None."""
    cores = cores or os.cpu_count() or 1
    if cal.load is None or cal.load <= cores / 2:
        return None
    return (f"the load average was {cal.load:g} (before {cal.load_before:g}, after {cal.load_after:g}) "
            f"on {cores} cores, above half the cores: other processes shared the machine, so the "
            f"figures are too low")


def calibrate(quick: bool = False) -> Calibration:
    """Measure this machine, reading the load average before and after (stored with the figures).
    `quick` uses smaller arrays and fewer repeats (for tests)."""
    before = load_average()
    result = _measure(quick)
    result.load_before, result.load_after = before, load_average()
    if result.load is not None:
        result.model = replace(result.model, calibration_load=result.load)
        result.notes.append(f"load average {result.load_before:g} before, {result.load_after:g} after "
                            f"({os.cpu_count()} cores)")
    return result


def _measure(quick: bool) -> Calibration:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    defaults = MachineModel()
    try:
        from fusec.runtime import probes
    except ImportError as err:  # the runtime is optional for the planner
        return _numpy_calibration(quick, stamp, f"the runtime probes are not available ({err})")
    n = 2**21 if quick else 2**23
    try:
        bw = probes.measure_triad(n=n, repeats=3 if quick else 10)
        peak = probes.measure_peak_flops(iterations=100_000 if quick else 2_000_000)
        tiny = probes.measure_triad(n=1024, repeats=20 if quick else 200)
    except FusecError as err:  # no compiler, a failed build, an unwritable cache
        return _numpy_calibration(quick, stamp, f"the C probes could not run: {err.message}")
    overhead_s = tiny.bytes_per_run / (tiny.median_gbs * 1e9)
    model = MachineModel(
        bandwidth_gbs=round(bw.median_gbs, 2),
        peak_gflops=round(peak.gflops, 2),
        kernel_overhead_us=round(max(overhead_s * 1e6, 0.5), 2),
        cache_bytes=defaults.cache_bytes,
        source=f"calibrated {stamp} with generated C probes",
    )
    notes = [str(bw), str(peak), f"kernel overhead {model.kernel_overhead_us:g} us (median of a 1024-element triad)"]
    return Calibration(model, "generated C probes", notes)


def _numpy_calibration(quick: bool, stamp: str, why: str) -> Calibration:
    n = 2**21 if quick else 2**23
    a, b, c = np.empty(n), np.ones(n), np.full(n, 2.0)
    tmp = np.empty(n)
    samples = []
    for _ in range(3 if quick else 10):
        start = time.perf_counter()
        np.multiply(c, 3.0, out=tmp)  # a = b + s * c in two passes: 5 * 8 * n bytes move
        np.add(b, tmp, out=a)
        samples.append(5 * 8 * n / (time.perf_counter() - start) / 1e9)
    defaults = MachineModel()
    model = MachineModel(
        bandwidth_gbs=round(statistics.median(samples), 2),
        peak_gflops=defaults.peak_gflops,
        kernel_overhead_us=defaults.kernel_overhead_us,
        cache_bytes=defaults.cache_bytes,
        source=f"calibrated {stamp} with a NumPy triad (no generated kernel: {why})",
    )
    notes = [
        f"NumPy triad {model.bandwidth_gbs:g} GB/s median ({len(samples)} runs), single-threaded: "
        "an underestimate of what a fused C kernel reaches",
        f"peak and kernel overhead keep their defaults ({why})",
    ]
    return Calibration(model, "NumPy triad", notes)
