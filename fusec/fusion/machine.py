"""The machine the cost model predicts for: bandwidth, peak arithmetic, and a cost per kernel.

Defaults are what a 2-core AVX2 machine of the kind fusec is developed on reaches (DESIGN.md:
STREAM triad moves about 20 GB/s). `fusec calibrate` measures the real numbers with generated
kernels and stores them as JSON in the user cache directory, written atomically (temp + rename)
so a reader never sees half a file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from fusec.errors import FusecError
from fusec.runtime.files import new_file_mode

MODEL_FILE = "machine.json"


@dataclass(frozen=True)
class MachineModel:
    bandwidth_gbs: float = 20.0  # sustained memory bandwidth, GB/s, of a kernel whose data is in memory
    # a byte written to memory costs this many bytes read: a store first reads its cache line (the
    # write-allocate), then writes it back, so a kernel that only reads moves its bytes faster
    write_factor: float = 1.0
    # the bandwidth of a kernel whose bytes fit in `fit_bytes` (all cores): data the previous kernel
    # left in cache, or an input it reads again; a single-threaded kernel gets its share of it
    cache_bandwidth_gbs: float = 30.0
    fit_bytes: int = 4 * 1024 * 1024  # bytes a kernel may move and still run at cache bandwidth (L2 of all cores)
    # a program whose arrays all fit in the last-level cache finds them there when it runs again:
    # up to `resident_bytes` of them, its kernels' loads and stores that miss the nearer caches move
    # at `resident_bandwidth_gbs` instead of memory's; a larger program keeps a share of them
    # there, none from RESIDENT_FADE times `resident_bytes` on (0: no such cache measured)
    resident_bandwidth_gbs: float = 0.0
    resident_bytes: int = 0
    # the working set of the program being costed: every array of its graph (0: unknown, taken as
    # too large for the last-level cache). Set per graph by `for_program`, not calibrated.
    program_bytes: int = 0
    peak_gflops: float = 64.0  # sustained arithmetic rate, GFLOP/s (f32, all cores)
    matmul_gflops: float = 64.0  # the BLAS call's rate on a matmul kernel's 2*M*N*K flops (all cores)
    # BLAS packs its operands into tiles, a cost per element it amortises over the inner dimension
    # K: it reaches matmul_gflops * K / (K + matmul_knee), so a matmul with a thin K (attention's
    # q @ k^T over the head dimension, 64) runs slower than a square one; and the same over the
    # smaller of M and N with `matmul_knee_mn`, a smaller cost (attention's p @ v, N = 64). Measured
    # here: 512 x 64 @ 64 x 512 at 165 GFLOP/s, 512 x 512 @ 512 x 64 at 235, 512^3 at 290
    matmul_knee: float = 0.0
    matmul_knee_mn: float = 0.0
    kernel_overhead_us: float = 20.0  # fixed cost of calling one kernel (from Python, through ctypes)
    # what a kernel's call costs more when the kernel before it moved more than `fit_bytes`: that
    # kernel's arrays pushed the interpreter's and the call's own data out of the core's caches
    # (measured here, a call took 3.4-4.2 us after reading 1 MiB and 12.7 us after 32 MiB)
    cold_call_us: float = 0.0
    fork_us: float = 0.0  # the extra cost of a kernel whose loop runs in parallel (OpenMP fork and join)
    # what a kernel that computes a transcendental function (fusec_math.h's vector functions)
    # costs more, once: a small one's time shows it (tanh over 1024 elements after a small kernel
    # took 3.6 us, x * 3 took 2.5; erf 4.9, exp 3.3), while its cost per element is the op's `op_ns`
    math_call_us: float = 0.0
    matmul_call_us: float = 0.0  # the BLAS call of a matmul kernel (NumPy's matmul on its tiles)
    matmul_epilogue_us: float = 0.0  # a matmul kernel with an epilogue: its second call, after BLAS's
    cache_bytes: int = 512 * 1024  # per-core cache a row of a reduction must fit in to be read once
    # one flop of a transcendental function (exp, erf, tanh, pow, gelu, ...; the op row's flops) on
    # one core, ns: fusec_math.h's vector functions cost far more than plain arithmetic. Used for the
    # ops `op_ns` has no measured figure for.
    transcendental_ns: float = 0.6
    # ns per element of each transcendental op on one core, measured by `fusec calibrate`'s probes
    op_ns: dict[str, float] = field(default_factory=dict)
    threads: int = 2  # cores a kernel's parallel loop runs on
    parallel_grain: int = 16384  # elements per iteration of the C backend's parallel tile loop
    # a kernel whose inner loop walks memory with a stride (a narrow column reduction, a read
    # through a transpose): ns per strided element access on one core, when the kernel's bytes fit
    # in `fit_bytes` and when not. The C backend's 2-D tiles (loops/defaults.py TRANSPOSE_TILES)
    # keep the lines a transposed read touches in L1 for a whole tile: measured here 0.2-0.3 ns in
    # cache and 2.5-2.7 with the arrays in memory (the tiles' short runs are not prefetched), where
    # the row-tiled loop before them measured 0.8 and 7.4 (the latter from the last-level cache)
    strided_cache_ns: float = 0.3
    strided_memory_ns: float = 2.5
    # the same in a program the last-level cache keeps (`resident_bytes`), after another kernel
    # moved 32 MiB: the tiles' short runs wait for the cache more than for memory. Measured here
    # 0.6-2.5 ns (2048 x 2048), where the arrays in memory took 2.8-6.7 ns from one hour to the next
    # (other machines on the host share its memory). A program the cache keeps a share of pays the
    # two in proportion (0: not measured, strided_memory_ns)
    strided_resident_ns: float = 0.0
    # the arithmetic of a strided loop runs this many times slower than in a contiguous one: gcc
    # vectorizes a loop that loads with a stride poorly (down narrow columns, with gathers) or not
    # at all (through a transpose, where only plain arithmetic is left: codegen/c_stage.py stages
    # a tile that computes a transcendental op)
    strided_compute_factor: float = 8.0
    # ns per element of each transcendental op on one core in such a loop, measured by `fusec
    # calibrate`'s probes (a sum down the columns of a [16384, 4] array); an op without a figure
    # costs `strided_compute_factor` times its `op_ns`
    strided_op_ns: dict[str, float] = field(default_factory=dict)
    # a column-form reduction (a sum down the columns of a wide array, loops/interchange.py) moves
    # its bytes this many times slower than a stream: each core walks its share of every row, a
    # run of a page or less, and the two cores' runs interleave. Measured here, a column sum of
    # f32[2048, 2048] took 1.16x the row sum back to back, 1.29x after another kernel moved 32 MiB,
    # 1.25x in memory. A transpose that keeps a short last axis (a head split) reads in short runs
    # too, and pays the same factor
    column_factor: float = 1.0
    # the share of the smaller of memory and compute time that the larger does not hide
    overlap_loss: float = 0.5
    # the model's relative error measured against generated kernels: a merge is taken only if it is
    # predicted to save more than this fraction of the time apart (the negative-optimization guard)
    margin: float = 0.1
    # the 1-minute load average while `fusec calibrate` measured (the higher of before and after);
    # 0 for the defaults, which were not measured here
    calibration_load: float = 0.0
    source: str = "defaults"  # where the numbers come from

    def threads_for(self, points: int) -> int:
        """Cores a kernel over `points` elements runs on: one per parallel tile, at most `threads`."""
        return max(1, min(self.threads, -(-points // self.parallel_grain)))

    def for_program(self, program_bytes: int) -> MachineModel:
        """This model for kernels of a program whose arrays take `program_bytes` in all."""
        return self if program_bytes == self.program_bytes else replace(self, program_bytes=int(program_bytes))

    def resident_share(self) -> float:
        """The share of a kernel's memory traffic the last-level cache serves: all of it if the
        program fits in `resident_bytes`, none from RESIDENT_FADE times that on, and in between
        falling with the logarithm of the program's size (which is how the measured rate falls)."""
        if not (self.resident_bandwidth_gbs and self.resident_bytes and self.program_bytes):
            return 0.0
        if self.program_bytes <= self.resident_bytes:
            return 1.0
        return max(0.0, 1.0 - math.log(self.program_bytes / self.resident_bytes) / math.log(RESIDENT_FADE))

    @property
    def memory_gbs(self) -> float:
        """The rate of loads that miss the nearer caches, for this program (GB/s)."""
        share = self.resident_share()
        if not share:
            return self.bandwidth_gbs
        return 1.0 / ((1.0 - share) / self.bandwidth_gbs + share / self.resident_bandwidth_gbs)

    def memory_seconds(self, nbytes: float, threads: int | None = None, written: float = 0.0) -> float:
        """Moving `nbytes`, `written` of them stores. Loads: as many as fit in `fit_bytes` at cache
        bandwidth (a value the previous kernel just wrote; a share of it on fewer cores), the rest at
        `memory_gbs` (so a kernel a byte larger costs a byte more, no cliff). Stores that go to
        memory cost `write_factor` loads: a kernel's output buffer was last touched a whole program
        run ago, so its lines come from memory first; in the last-level cache they cost one."""
        share = (threads or self.threads) / self.threads
        loads = nbytes - written
        cached = min(loads, self.fit_bytes)
        resident = self.resident_share()
        in_cache_s = resident / (self.resident_bandwidth_gbs * 1e9) if resident else 0.0  # per byte, loads and stores alike
        load_s = (1.0 - resident) / (self.bandwidth_gbs * 1e9) + in_cache_s
        store_s = (1.0 - resident) * self.write_factor / (self.bandwidth_gbs * 1e9) + in_cache_s
        return cached / (self.cache_bandwidth_gbs * 1e9 * share) + (loads - cached) * load_s + written * store_s

    def op_seconds(self, op: str, points: int, flops_per_point: int, threads: int | None = None,
                   strided: bool = False) -> float:
        """`points` evaluations of the transcendental `op` on `threads` cores, in a contiguous loop
        or (`strided`) in a loop that walks memory with a stride."""
        ns = self.op_ns.get(op, self.transcendental_ns * flops_per_point)
        if strided:
            ns = self.strided_op_ns.get(op, ns * self.strided_compute_factor)
        return points * ns * 1e-9 / (threads or self.threads)

    def matmul_seconds(self, flops: float, dim: int = 0, k: int = 0) -> float:
        """A BLAS call's `flops` when the smaller of its M and N is `dim` and its inner dimension is
        `k` (0: unknown, no penalty)."""
        thin = (k + self.matmul_knee) / k if k else 1.0
        thin *= (dim + self.matmul_knee_mn) / dim if dim else 1.0
        return flops * thin / (self.matmul_gflops * 1e9)

    def compute_seconds(self, flops: float, threads: int | None = None) -> float:
        """Plain arithmetic (not transcendental, not BLAS) on `threads` cores."""
        return flops / (self.peak_gflops * 1e9 * (threads or self.threads) / self.threads)

    def overhead_seconds(self, threads: int, cold: bool = False) -> float:
        """A kernel's fixed cost: its call (`cold`: after a kernel that moved more than `fit_bytes`)
        and, on more than one core, the fork."""
        call = self.kernel_overhead_us + (self.cold_call_us if cold else 0.0)
        return (call + (self.fork_us if threads > 1 else 0.0)) * 1e-6

    def strided_seconds(self, accesses: float, nbytes: float, threads: int) -> float:
        """`accesses` strided element loads and stores of a kernel that moves `nbytes`, on `threads`."""
        if nbytes <= self.fit_bytes:
            ns = self.strided_cache_ns
        else:
            share = self.resident_share() if self.strided_resident_ns else 0.0
            ns = (1.0 - share) * self.strided_memory_ns + share * self.strided_resident_ns
        return accesses * ns * 1e-9 / threads

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, origin: str = "") -> MachineModel:
        known = {f.name: f.type for f in fields(cls)}
        values = {}
        for key, value in data.items():
            if key not in known:
                continue  # newer files may carry more fields; ignore them
            if key in PER_OP_FIELDS:
                values[key] = _op_ns(key, value, origin)
                continue
            if key == "source":
                values[key] = str(value)
                continue
            floor_ok = key in MAY_BE_ZERO and isinstance(value, (int, float)) and value == 0
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (value <= 0 and not floor_ok):
                raise FusecError(f"{origin or 'machine model'}: '{key}' must be a positive number, got {value!r}")
            values[key] = int(value) if key in INTEGER_FIELDS else float(value)
        return cls(**values)


RESIDENT_FADE = 4  # a program this many times `resident_bytes` finds none of its arrays in the cache

MAY_BE_ZERO = ("calibration_load", "cold_call_us", "fork_us", "math_call_us", "matmul_call_us", "matmul_epilogue_us",
               "matmul_knee", "matmul_knee_mn", "resident_bandwidth_gbs", "resident_bytes", "program_bytes",
               "strided_resident_ns")
PER_OP_FIELDS = ("op_ns", "strided_op_ns")  # op name -> ns per element
INTEGER_FIELDS = ("cache_bytes", "fit_bytes", "resident_bytes", "program_bytes", "threads", "parallel_grain")


def _op_ns(key: str, value, origin: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise FusecError(f"{origin or 'machine model'}: '{key}' must map op names to ns per element, got {value!r}")
    out = {}
    for op, ns in value.items():
        if isinstance(ns, bool) or not isinstance(ns, (int, float)) or ns <= 0:
            raise FusecError(f"{origin or 'machine model'}: '{key}' of '{op}' must be a positive number, got {ns!r}")
        out[str(op)] = float(ns)
    return out


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
                json.dump({k: v for k, v in model.to_dict().items() if k != "program_bytes"}, f, indent=2)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise FusecError(f"{path}: cannot write the machine model: {err.strerror}") from None
    return path
