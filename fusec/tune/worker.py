"""What runs away from the tuner: building a candidate, and measuring it in an isolated process.

`build_candidate` is submitted to a `concurrent.futures` executor (threads by default: the C
compiler runs as a subprocess, so threads build in parallel). Building goes through the kernel cache,
so the measuring process later finds the library there.

`measure_main` is the entry point of the isolated process (started by fusec.tune.isolate). It
rebuilds the kernel (a cache hit), runs it once on fresh copies of the test inputs and checks every
output against the interpreter's result (fusec.tolerance.compare) *before* any time counts, then
times it: `warmup` calls, then `repeats` samples, each a loop of enough calls to last
`min_sample_s` (so tiny kernels are not lost in the timer's resolution). In-place (inout) buffers are
restored from the inputs before the check and before each sample, outside the timed region.

Every array the kernel gets sits between guard bytes: a write outside the buffers changes them and
the candidate fails as `oob`. The process may not grow its address space by more than
`MEMORY_HEADROOM` plus a few times the arrays' size (RLIMIT_AS), so a huge allocation fails as `oom`
at once instead of pushing a shared machine into swap.

It sends back one dict: {"status": "ok", "samples": [...]} or a failure with a detail. A crash
(a signal, or an exception in the kernel) and a hang are seen by the parent, which records them.

`measure_on_worker` (in isolate.py, beside the runner it uses) is what an executor runs (a local
process pool, or a Dask worker): it measures one candidate in an isolated process *on that worker's
machine* and adds that machine's signature and load average to the result.
"""

from __future__ import annotations

import faulthandler
import io
import os
import resource
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from fusec.loops.masks import read_elements
from fusec.loops.schedule import Schedule
from fusec.tolerance import compare
from fusec.tune.jobs import BuildResult, KernelJob

MAX_CALLS_PER_SAMPLE = 10_000
GUARD_BYTES = 4096  # around every array: a write there is out of bounds
GUARD_FILL = 0xA5
MEMORY_HEADROOM = 2 << 30  # bytes of address space a candidate may add, besides 4x its arrays


def build_candidate(job: KernelJob, schedule: Schedule) -> BuildResult:
    """Generate and compile one candidate (filling the kernel cache); a failure is returned, not raised."""
    start = time.perf_counter()
    try:
        _apply_env(job)
        job.backend.make().build(job.graph, job.group, job.nest, schedule)
    except Exception as err:  # a compiler error, or a backend bug: either way this candidate cannot run
        return BuildResult(False, time.perf_counter() - start, _one_line(err))
    return BuildResult(True, time.perf_counter() - start)


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return f"{type(err).__name__}: {text}"


def _apply_env(job: KernelJob) -> None:
    for k, v in job.env:
        os.environ[k] = v


def load_arrays(job: KernelJob) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(inputs by buffer name, expected outputs by buffer name) from the job's directory, or from the
    .npz the job carries when that directory is not on this machine."""
    if job.inline is not None and not job.arrays.is_dir():
        with np.load(io.BytesIO(job.inline)) as z:
            found = {k: z[k] for k in z.files}
        read = found.__getitem__
    else:
        def read(name):
            return np.load(job.arrays / f"{name}.npy")
    inputs = {b.name: read(f"in_{b.name}") for b in job.nest.buffers if b.role in ("in", "inout")}
    expected = {b.name: read(f"expected_{b.name}") for b in job.nest.buffers if b.role in ("out", "inout")}
    return inputs, expected


def pack_arrays(directory: Path) -> bytes:
    """Every .npy of a job's directory as one .npz (what KernelJob.inline holds)."""
    out = io.BytesIO()
    np.savez(out, **{p.stem: np.load(p) for p in sorted(directory.glob("*.npy"))})
    return out.getvalue()


class Guarded:
    """Arrays placed between guard bytes, to catch a kernel writing outside them."""

    def __init__(self):
        self.blocks: list[np.ndarray] = []

    def array(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        block = np.full(nbytes + 2 * GUARD_BYTES, GUARD_FILL, dtype=np.uint8)
        self.blocks.append(block)
        return block[GUARD_BYTES:GUARD_BYTES + nbytes].view(dtype).reshape(shape)

    def copy(self, a: np.ndarray) -> np.ndarray:
        out = self.array(a.shape, a.dtype)
        np.copyto(out, a)
        return out

    def broken(self) -> str | None:
        """Which guard changed, or None."""
        for k, block in enumerate(self.blocks):
            for side, guard in (("before", block[:GUARD_BYTES]), ("after", block[-GUARD_BYTES:])):
                bad = np.flatnonzero(guard != GUARD_FILL)
                if bad.size:
                    return f"array {k}: {bad.size} guard bytes {side} it were overwritten"
        return None


def limit_memory(arrays_bytes: int) -> None:
    """Cap this process's address space: what it uses now, plus MEMORY_HEADROOM, plus 4x the arrays."""
    try:
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return
    cap = used + MEMORY_HEADROOM + 4 * arrays_bytes
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft == resource.RLIM_INFINITY or soft > cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def measure(job: KernelJob, schedule: Schedule) -> dict:
    """Build, check, time. Runs inside the isolated process."""
    _apply_env(job)
    try:
        kernel = job.backend.make().build(job.graph, job.group, job.nest, schedule)
    except Exception as err:
        return {"status": "compile", "detail": _one_line(err)}
    inputs, expected = load_arrays(job)
    guarded = Guarded()
    arrays = []
    for b in job.nest.buffers:
        if b.role in ("in", "inout"):
            arrays.append(guarded.copy(inputs[b.name]))
        else:
            arrays.append(guarded.array(b.shape, b.dtype.numpy))
    inouts = [(a, inputs[b.name]) for a, b in zip(arrays, job.nest.buffers) if b.role == "inout"]
    limit_memory(sum(a.nbytes for a in arrays))

    def restore() -> None:
        for a, original in inouts:
            np.copyto(a, original)

    try:
        kernel(*arrays)
    except MemoryError as err:
        return {"status": "oom", "detail": f"the kernel could not allocate memory ({_one_line(err)})"}
    except Exception as err:
        return {"status": "crash", "detail": f"the kernel raised {_one_line(err)}"}
    broken = guarded.broken()
    if broken:
        return {"status": "oob", "detail": f"the kernel wrote outside its buffers: {broken}"}
    for a, b in zip(arrays, job.nest.buffers):
        if b.role in ("out", "inout"):
            read = read_elements(job.graph, b.written_value, a.shape)
            bad = compare(a if read is None else np.where(read, a, expected[b.name]), expected[b.name])
            if bad is not None:
                return {"status": "wrong", "detail": f"{b.written_value}: {bad}"}
    for _ in range(job.warmup):
        restore()
        kernel(*arrays)
    one = float("inf")
    for _ in range(3):  # the fastest of three calls: one preempted call would make samples too short
        restore()
        start = time.perf_counter()
        kernel(*arrays)
        one = min(one, time.perf_counter() - start)
    one = max(one, 1e-7)
    calls = int(min(MAX_CALLS_PER_SAMPLE, max(1, round(job.min_sample_s / one))))
    samples = []
    for _ in range(job.repeats):
        restore()
        start = time.perf_counter()
        for _ in range(calls):
            kernel(*arrays)
        samples.append((time.perf_counter() - start) / calls)
    broken = guarded.broken()
    if broken:
        return {"status": "oob", "detail": f"the kernel wrote outside its buffers while timed: {broken}"}
    return {"status": "ok", "samples": samples, "calls": calls}


def measure_main(job: KernelJob, schedule: Schedule, conn, log_path: str) -> None:
    """Entry point of the isolated process: output to a log file, one result down the pipe."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    faulthandler.enable()  # a segfault leaves a Python traceback in the log
    try:
        result = measure(job, schedule)
    except BaseException:  # a bug in the worker itself: report it as a crash with the traceback
        result = {"status": "crash", "detail": traceback.format_exc(limit=4).strip().splitlines()[-1]}
    conn.send(result)
    conn.close()
