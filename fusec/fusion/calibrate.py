"""Measure the machine model: bandwidth, peak arithmetic and the fixed cost of one kernel.

The measurements use the runtime's generated C probes (fusec.runtime.probes): a STREAM triad over
arrays far larger than the caches gives the bandwidth; independent fma chains give the peak; a
triad over a tiny array, where moving the data costs next to nothing, gives the fixed cost of
starting one parallel kernel. Without a C compiler, the bandwidth comes from a NumPy triad instead,
and the result says so (NumPy's triad makes temporaries, so it under-reports).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from fusec.errors import FusecError
from fusec.fusion.machine import MachineModel


@dataclass
class Calibration:
    model: MachineModel
    method: str  # "generated C probes" or "NumPy triad (no C compiler)"
    notes: list[str] = field(default_factory=list)


def calibrate(quick: bool = False) -> Calibration:
    """Measure this machine. `quick` uses smaller arrays and fewer repeats (for tests)."""
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
