"""The machine the cost model predicts for: bandwidth, peak arithmetic, and a cost per kernel.

Defaults are what a 2-core AVX2 machine of the kind fusec is developed on reaches (DESIGN.md:
STREAM triad moves about 20 GB/s). `fusec calibrate` measures the real numbers with generated
kernels and stores them as JSON in the user cache directory, written atomically (temp + rename)
so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from fusec.errors import FusecError
from fusec.runtime.files import new_file_mode

MODEL_FILE = "machine.json"


@dataclass(frozen=True)
class MachineModel:
    bandwidth_gbs: float = 20.0  # sustained memory bandwidth, GB/s (STREAM triad)
    peak_gflops: float = 64.0  # sustained arithmetic rate, GFLOP/s (f32, all cores)
    kernel_overhead_us: float = 20.0  # fixed cost of launching one kernel (thread fork/join, call)
    cache_bytes: int = 512 * 1024  # per-core cache a row of a reduction must fit in to be read once
    # one flop of a transcendental function (exp, erf, tanh, pow, gelu, ...; the op row's flops) on
    # one core, ns: fusec_math.h's vector functions cost far more than plain arithmetic
    transcendental_ns: float = 0.6
    threads: int = 2  # cores a kernel's parallel loop runs on
    # a kernel whose inner loop walks memory with a stride (a column reduction, a transpose read):
    # every load touches a new cache line (and page), and the loop no longer vectorises, so moving
    # the data and computing both slow down, and no longer overlap
    strided_memory_factor: float = 60.0
    strided_compute_factor: float = 14.0
    # the share of the smaller of memory and compute time that the larger does not hide
    overlap_loss: float = 0.5
    # the model's relative error measured against generated kernels: a merge is taken only if it is
    # predicted to save more than this fraction of the time apart (the negative-optimization guard)
    margin: float = 0.1
    # the 1-minute load average while `fusec calibrate` measured (the higher of before and after);
    # 0 for the defaults, which were not measured here
    calibration_load: float = 0.0
    source: str = "defaults"  # where the numbers come from

    def kernel_seconds(self, nbytes: float, flops: float, transcendentals: float = 0.0, strided: bool = False) -> float:
        """Roofline: the slower of moving the bytes and doing the arithmetic (transcendental flops at
        their own rate, spread over the threads), plus a fixed cost. A strided kernel does both at
        their strided rates, one after the other."""
        mem, comp = self.memory_seconds(nbytes), self.compute_seconds(flops, transcendentals)
        if strided:
            body = mem * self.strided_memory_factor + comp * self.strided_compute_factor
        else:  # moving data and computing overlap, but not perfectly: the smaller half-hides
            body = max(mem, comp) + self.overlap_loss * min(mem, comp)
        return body + self.kernel_overhead_us * 1e-6

    def memory_seconds(self, nbytes: float) -> float:
        return nbytes / (self.bandwidth_gbs * 1e9)

    def compute_seconds(self, flops: float, transcendentals: float = 0.0) -> float:
        return flops / (self.peak_gflops * 1e9) + transcendentals * self.transcendental_ns * 1e-9 / self.threads

    def bound(self, nbytes: float, flops: float, transcendentals: float = 0.0) -> str:
        return "memory" if self.memory_seconds(nbytes) >= self.compute_seconds(flops, transcendentals) else "compute"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, origin: str = "") -> MachineModel:
        known = {f.name: f.type for f in fields(cls)}
        values = {}
        for key, value in data.items():
            if key not in known:
                continue  # newer files may carry more fields; ignore them
            if key == "source":
                values[key] = str(value)
                continue
            floor_ok = key == "calibration_load" and isinstance(value, (int, float)) and value == 0
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (value <= 0 and not floor_ok):
                raise FusecError(f"{origin or 'machine model'}: '{key}' must be a positive number, got {value!r}")
            values[key] = int(value) if key in ("cache_bytes", "threads") else float(value)
        return cls(**values)


def cache_dir() -> Path:
    """The user cache directory: $FUSEC_CACHE_DIR, else ~/.cache/fusec."""
    env = os.environ.get("FUSEC_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "fusec"


def model_path() -> Path:
    return cache_dir() / MODEL_FILE


def load_model(path: Path | None = None) -> MachineModel:
    """The calibrated model if `fusec calibrate` has stored one, else the defaults."""
    path = path or model_path()
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):  # nothing calibrated there (the cache dir may be unusable)
        return MachineModel()
    except OSError as err:
        raise FusecError(f"{path}: cannot read the machine model: {err.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise FusecError(f"{path}: not valid JSON ({err.msg}); run `fusec calibrate` again or delete it") from None
    if not isinstance(data, dict):
        raise FusecError(f"{path}: expected a JSON object; run `fusec calibrate` again or delete it")
    return MachineModel.from_dict(data, str(path))


def save_model(model: MachineModel, path: Path | None = None) -> Path:
    """Write the model atomically: a temporary file in the same directory, then a rename."""
    path = path or model_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".machine-", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, new_file_mode())  # an output (calibrate prints its path; save_model takes any): not 0600
            with os.fdopen(fd, "w") as f:
                json.dump(model.to_dict(), f, indent=2)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise FusecError(f"{path}: cannot write the machine model: {err.strerror}") from None
    return path
