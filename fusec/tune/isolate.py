"""Running one candidate in its own process, with a timeout, so nothing it does can hurt the tuner.

Each candidate gets a fresh process. Starting Python and importing NumPy and fusec takes about
1.5 s on a small machine, so processes come from a *fork server* (multiprocessing "forkserver"):
one clean process that has imported fusec.tune.worker forks a child per candidate in about 20 ms.
The fork server never runs a kernel or starts an OpenMP thread, so forking it is safe.

The parent waits for the child's one result or its death, whichever comes first:

    result received          -> whatever the child reported (ok, wrong, compile, crash)
    died without a result    -> crash, with the signal or exit code and the end of its output
    still running at timeout -> killed; timeout
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import tempfile
import threading
import types
from dataclasses import replace
from pathlib import Path

import numpy as np

from fusec.loops.schedule import Schedule
from fusec.tune.jobs import KernelJob
from fusec.tune.signature import machine_signature
from fusec.tune.worker import _apply_env, measure_main

PRELOAD = ["fusec.tune.worker", "fusec.codegen.c_backend"]


def _context():
    try:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)  # no effect once the server runs (its modules are loaded)
        return ctx
    except ValueError:  # no fork server on this platform
        return multiprocessing.get_context("spawn")


_START_LOCK = threading.Lock()


@contextlib.contextmanager
def _without_main():
    """Hide the caller's __main__ while a child starts.

    multiprocessing re-runs the parent's main script (or stdin) in a child to recreate its
    functions, which is why scripts need an `if __name__ == "__main__":` guard. The worker needs
    nothing from the caller's main module (its entry point is fusec.tune.worker.measure_main), so
    a blank __main__ during start() lets `fusec.tune` run from any script, notebook or stdin.
    """
    with _START_LOCK:
        real = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if real is not None:
                sys.modules["__main__"] = real


def _died(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode} without a result"


def _summary(path: Path) -> str:
    """What the child printed, briefly: its first line (e.g. faulthandler's "Fatal Python error:
    Segmentation fault") and the innermost frame (faulthandler lists the most recent call first)."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    if not lines:
        return ""
    frame = next((ln for ln in lines if ln.startswith("File ")), "")
    return " | ".join(x for x in (lines[0][:300], frame[:300]) if x)


class IsolatedRunner:
    """Measures candidates one at a time (timings need a quiet machine), each in its own process."""

    def __init__(self, timeout_s: float = 60.0):
        if timeout_s <= 0:
            raise ValueError("timeout must be positive")
        self.timeout_s = timeout_s
        self.ctx = _context()

    def run(self, job: KernelJob, schedule: Schedule) -> dict:
        """The child's result dict, or a crash/timeout dict made here."""
        fd, log = tempfile.mkstemp(prefix="fusec-tune-", suffix=".log")  # 0600 stays: a scratch log in /tmp, removed below
        os.close(fd)
        log_path = Path(log)
        receiver, sender = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=measure_main, args=(job, schedule, sender, log), daemon=True)
        try:
            with _without_main():
                proc.start()
            sender.close()  # ours; the child holds its own copy
            ready = multiprocessing.connection.wait([receiver, proc.sentinel], timeout=self.timeout_s)
            result = None
            if receiver in ready or receiver.poll():
                try:
                    result = receiver.recv()
                except (EOFError, OSError):
                    result = None
            if result is None:
                if not ready:  # neither a result nor an exit before the deadline
                    proc.kill()
                    proc.join(5)
                    return {"status": "timeout", "detail": f"no result within {self.timeout_s:g} s; killed"}
                proc.join(5)
                said = _summary(log_path)
                return {"status": "crash", "detail": _died(proc.exitcode) + (f": {said}" if said else "")}
            proc.join(self.timeout_s)
            if proc.is_alive():  # sent a result but hangs on exit (a stuck thread): do not wait
                proc.kill()
                proc.join(5)
            return result
        finally:
            receiver.close()
            log_path.unlink(missing_ok=True)


_RUNNERS: dict[float, IsolatedRunner] = {}  # one fork server per timeout, kept for the worker's life


def measure_on_worker(job: KernelJob, schedule: Schedule, timeout_s: float) -> dict:
    """Measure one candidate in an isolated process on this machine (an executor's worker) and say
    which machine it was and how busy it was."""
    _apply_env(job)
    runner = _RUNNERS.get(timeout_s) or _RUNNERS.setdefault(timeout_s, IsolatedRunner(timeout_s))
    load = round(os.getloadavg()[0], 2)
    if job.inline is not None and not job.arrays.is_dir():  # another machine: unpack the arrays here once
        local = Path(tempfile.gettempdir()) / f"fusec-tune-{os.getpid()}-{job.nest.name}"
        if not local.is_dir():
            local.mkdir(parents=True)
            with np.load(io.BytesIO(job.inline)) as z:
                for name in z.files:
                    np.save(local / f"{name}.npy", z[name])
        job = replace(job, arrays=local, inline=None)
    result = runner.run(job, schedule)
    result["load"] = load
    result["machine"] = machine_signature()
    return result
