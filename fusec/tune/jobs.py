"""Plain, picklable descriptions of the work the tuner hands out, and of its results.

Jobs cross process boundaries (a worker process, a `concurrent.futures` executor, perhaps a cluster
engine), so they hold data only: the backend as a name plus options (or an importable factory), the
graph, group and nest, the schedule, and where the test arrays are on disk.
"""

from __future__ import annotations

import importlib
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from fusec.codegen import get_backend
from fusec.codegen.base import Backend
from fusec.fusion.plan import Group
from fusec.ir.graph import Graph
from fusec.loops.ir import LoopNest
from fusec.loops.schedule import Schedule

# how a candidate can fail; "ok" is the only status whose time counts
#   compile  the backend or the C compiler rejected it
#   crash    the process died (a signal, an exit) or the kernel raised
#   timeout  no result within the timeout (killed), or a build that never finished
#   wrong    an output differs from the interpreter's beyond the tolerance
#   oob      it wrote outside its buffers (the guard bytes around them changed)
#   oom      it tried to allocate more memory than a candidate may use
FAILURES = ("compile", "crash", "timeout", "wrong", "oob", "oom")
STATUSES = ("ok",) + FAILURES


@dataclass(frozen=True)
class BackendSpec:
    """How to make the backend in another process: `get_backend(name, **options)`, or, when
    `factory` is "module:callable", that callable with the options (tests inject faulty backends)."""

    name: str
    options: tuple[tuple[str, object], ...] = ()
    factory: str = ""

    def make(self) -> Backend:
        if self.factory:
            module, _, attr = self.factory.partition(":")
            return getattr(importlib.import_module(module), attr)(**dict(self.options))
        return get_backend(self.name, **dict(self.options))


@dataclass(frozen=True)
class KernelJob:
    """One kernel of a graph: what every candidate of it shares."""

    backend: BackendSpec
    graph: Graph
    group: Group
    nest: LoopNest
    arrays: Path  # directory with in_<buffer>.npy and expected_<buffer>.npy
    env: tuple[tuple[str, str], ...] = ()  # environment the worker sets first (cache dir, CC, ...)
    warmup: int = 2
    repeats: int = 7
    min_sample_s: float = 0.002  # a timed sample repeats the call until it lasts this long
    inline: bytes | None = None  # the arrays as an .npz, for a worker on another machine (no shared disk)


@dataclass(frozen=True)
class BuildResult:
    ok: bool
    seconds: float
    error: str = ""


@dataclass
class Trial:
    """One candidate's outcome. Times are per call, in seconds; spread = interquartile range / median."""

    schedule: Schedule
    status: str
    detail: str = ""
    samples: list[float] = field(default_factory=list)
    build_s: float = 0.0
    load: float | None = None  # load average of the machine that measured it, when it started
    machine: dict | None = None  # the signature of that machine (a cluster worker's own)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.samples) if self.ok and self.samples else None

    @property
    def spread(self) -> float | None:
        """Interquartile range over the median: robust to one sample hit by a context switch."""
        m = self.median_s
        if not m:
            return None
        if len(self.samples) < 4:
            return (max(self.samples) - min(self.samples)) / m
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return (q3 - q1) / m
