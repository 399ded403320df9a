"""One way to time anything: warm-up calls, then repeated calls, reported as median and spread.

The spread is the interquartile range (75th minus 25th percentile of the samples), which a single
slow outlier on a shared machine does not move; min and max are kept as well.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    samples: tuple[float, ...]  # seconds per call

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def q1(self) -> float:
        return _quantile(self.samples, 0.25)

    @property
    def q3(self) -> float:
        return _quantile(self.samples, 0.75)

    @property
    def spread(self) -> float:
        """Interquartile range, in seconds."""
        return self.q3 - self.q1

    def to_dict(self) -> dict:
        return {
            "median_ms": self.median * 1e3,
            "spread_ms": self.spread * 1e3,
            "min_ms": min(self.samples) * 1e3,
            "max_ms": max(self.samples) * 1e3,
            "repeats": len(self.samples),
        }


def _quantile(samples: tuple[float, ...], q: float) -> float:
    """Linear interpolation between closest ranks (NumPy's default method)."""
    xs = sorted(samples)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 1, max_seconds: float = 30.0) -> Timing:
    """Call `fn` `warmup` times untimed, then up to `repeats` times timed.

    A slow path stops early once `max_seconds` of timed calls have passed, but never with fewer
    than three samples (or `repeats`, if that is smaller), so a median and a spread still exist.
    """
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    spent = 0.0
    floor = min(3, repeats)
    while len(samples) < repeats:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        samples.append(dt)
        spent += dt
        if spent > max_seconds and len(samples) >= floor:
            break
    return Timing(tuple(samples))
