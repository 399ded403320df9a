"""The machine a benchmark ran on: CPU, cores, threads, compiler, library versions, and its load.

Figures from a shared machine are only as good as the machine was quiet, so every report states the
load average before and after the run and warns when it was above half the core count.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from dataclasses import asdict, dataclass, field

PEER_PACKAGES = {"numexpr": "numexpr", "torch": "torch", "jax": "jax"}


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what the platform module says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def package_version(name: str) -> str | None:
    """An installed distribution's version without importing it (None when it is not installed)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def compiler_identity() -> str:
    from fusec.runtime.build import NoCompilerError, find_compiler

    try:
        return find_compiler().identity
    except NoCompilerError as err:
        return f"none ({err.message})"


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:  # not available on this platform
        return None


@dataclass
class Machine:
    cpu: str
    cores: int
    threads: int  # OpenMP threads the C kernels run with
    compiler: str
    versions: dict[str, str | None]
    load_before: tuple[float, float, float] | None = None
    load_after: tuple[float, float, float] | None = None
    peak_gflops: float | None = None  # float32 fma peak measured in this run (fusec.runtime.probes)
    notes: list[str] = field(default_factory=list)

    @property
    def busy_limit(self) -> float:
        return self.cores / 2

    def load_warning(self) -> str | None:
        """A warning when the 1-minute load average was above half the cores before or after the run."""
        seen = [x[0] for x in (self.load_before, self.load_after) if x is not None]
        if not seen or max(seen) <= self.busy_limit:
            return None
        return (
            f"the machine was busy (1-minute load average up to {max(seen):.1f} on {self.cores} cores): "
            "absolute times are noisy; compare ratios measured in this run"
        )

    def header_lines(self) -> list[str]:
        versions = ", ".join(f"{k} {v}" for k, v in self.versions.items() if v)
        absent = [k for k, v in self.versions.items() if not v]
        lines = [
            f"machine: {self.cpu}, {self.cores} cores, {self.threads} OpenMP threads",
            f"compiler: {self.compiler}"
            + (f"; float32 peak measured in this run {self.peak_gflops:.0f} GFLOP/s" if self.peak_gflops else ""),
            f"versions: {versions}" + (f" (not installed: {', '.join(absent)})" if absent else ""),
            f"load average: before {_load(self.load_before)}, after {_load(self.load_after)}",
        ]
        warning = self.load_warning()
        if warning:
            lines.append(f"warning: {warning}")
        return lines + self.notes

    def to_dict(self) -> dict:
        d = asdict(self)
        d["load_warning"] = self.load_warning()
        return d


def _load(avg: tuple[float, float, float] | None) -> str:
    return "n/a" if avg is None else " ".join(f"{x:.2f}" for x in avg)


def describe_machine(threads: int) -> Machine:
    import numpy

    import fusec

    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "fusec": fusec.__version__,
    }
    for peer, dist in PEER_PACKAGES.items():
        versions[peer] = package_version(dist)
    return Machine(cpu_name(), os.cpu_count() or 1, threads, compiler_identity(), versions)
