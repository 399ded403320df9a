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

MODEL_FILE = "machine.json"


@dataclass(frozen=True)
class MachineModel:
    bandwidth_gbs: float = 20.0  # sustained memory bandwidth, GB/s (STREAM triad)
    peak_gflops: float = 64.0  # sustained arithmetic rate, GFLOP/s (f32, all cores)
    kernel_overhead_us: float = 20.0  # fixed cost of launching one kernel (thread fork/join, call)
    cache_bytes: int = 512 * 1024  # per-core cache a row of a reduction must fit in to be read once
    source: str = "defaults"  # where the numbers come from

    def kernel_seconds(self, nbytes: float, flops: float) -> float:
        """Roofline: the slower of moving the bytes and doing the arithmetic, plus a fixed cost."""
        return max(nbytes / (self.bandwidth_gbs * 1e9), flops / (self.peak_gflops * 1e9)) + self.kernel_overhead_us * 1e-6

    def bound(self, nbytes: float, flops: float) -> str:
        return "memory" if nbytes / (self.bandwidth_gbs * 1e9) >= flops / (self.peak_gflops * 1e9) else "compute"

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
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise FusecError(f"{origin or 'machine model'}: '{key}' must be a positive number, got {value!r}")
            values[key] = int(value) if key == "cache_bytes" else float(value)
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
