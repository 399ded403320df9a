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

It sends back one dict: {"status": "ok", "samples": [...]} or a failure with a detail. A crash
(a signal, or an exception in the kernel) and a hang are seen by the parent, which records them.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import time
import traceback

import numpy as np

from fusec.loops.schedule import Schedule
from fusec.tolerance import compare
from fusec.tune.jobs import BuildResult, KernelJob

MAX_CALLS_PER_SAMPLE = 10_000


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
    """(inputs by buffer name, expected outputs by buffer name) from the job's directory."""
    inputs = {b.name: np.load(job.arrays / f"in_{b.name}.npy") for b in job.nest.buffers if b.role in ("in", "inout")}
    expected = {b.name: np.load(job.arrays / f"expected_{b.name}.npy") for b in job.nest.buffers if b.role in ("out", "inout")}
    return inputs, expected


def measure(job: KernelJob, schedule: Schedule) -> dict:
    """Build, check, time. Runs inside the isolated process."""
    _apply_env(job)
    try:
        kernel = job.backend.make().build(job.graph, job.group, job.nest, schedule)
    except Exception as err:
        return {"status": "compile", "detail": _one_line(err)}
    inputs, expected = load_arrays(job)
    arrays = []
    for b in job.nest.buffers:
        if b.role == "in":
            arrays.append(inputs[b.name])
        elif b.role == "inout":
            arrays.append(inputs[b.name].copy())
        else:
            arrays.append(np.empty(b.shape, dtype=b.dtype.numpy))
    inouts = [(a, inputs[b.name]) for a, b in zip(arrays, job.nest.buffers) if b.role == "inout"]

    def restore() -> None:
        for a, original in inouts:
            np.copyto(a, original)

    try:
        kernel(*arrays)
    except Exception as err:
        return {"status": "crash", "detail": f"the kernel raised {_one_line(err)}"}
    for a, b in zip(arrays, job.nest.buffers):
        if b.role in ("out", "inout"):
            bad = compare(a, expected[b.name])
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
