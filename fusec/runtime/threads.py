"""How many threads a compiled kernel gets, and how idle OpenMP threads wait.

Two problems on a small shared machine (2 cores here):

* **Spinning.** libgomp's idle threads spin for a while after every parallel region, waiting for the
  next one (by default ~300,000 pause loops, milliseconds on this CPU). Between a kernel and a BLAS
  call (NumPy's matmul, with its own thread pool) those spinning threads hold the cores BLAS needs.
  `gomp_env()` loads the kernel libraries with `OMP_WAIT_POLICY=PASSIVE` (threads sleep at once),
  unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT, and only for the load itself: the process
  environment, seen by child processes and by other libraries' OpenMP runtimes, is restored.
  OpenBLAS's idle threads spin the other way round, a tenth of a second after every BLAS call,
  through the kernels that follow it: `quiet_blas_threads()` restarts its pool with short spins
  when the first kernel library loads.
* **Contention.** A parallel region with static scheduling is as slow as its slowest thread; when
  another process keeps a core busy, the thread sharing that core is descheduled for whole time
  slices (4 ms) and a 50 µs kernel takes 4, 8 or 16 ms. `ThreadBudget` runs a kernel on fewer
  threads when other tasks are runnable (the instantaneous count in /proc/loadavg, read at most every
  50 ms), and keeps kernels smaller than `SMALL_POINTS` on one thread whenever the machine is busy.
  BLAS suffers the same way, worse: under a load of 16 on this 2-core machine, NumPy's batched
  8x512x64 @ 8x64x512 matmul took 390-720 ms on OpenBLAS's two threads and 43-47 ms on one. So a
  matmul tile (`blas_limit`) runs on the threads the budget allows, set for the calling thread only
  (OpenBLAS's openblas_set_num_threads_local) and restored right after the call.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time

SMALL_POINTS = 1 << 20  # under load, a kernel over fewer elements (~1 ms of work) runs on one thread
SAMPLE_S = 0.05


@contextlib.contextmanager
def gomp_env():
    """Environment under which a library linked to libgomp is first loaded (see the module doc)."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _runnable_own() -> int:
    """This process's runnable threads (the caller, and e.g. BLAS workers still spinning after a call)."""
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/stat") as f:
                count += f.read().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue
    return max(count, 1)


def _runnable_others() -> int | None:
    """Runnable tasks of other processes right now (None where /proc/loadavg is missing).

    /proc/loadavg's fourth field counts every runnable task, ours included; our own (the thread
    reading, BLAS workers) are subtracted, since the kernel's threads take their place.
    """
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None
    return max(running - _runnable_own(), 0)


class ThreadBudget:
    """Chooses each kernel's thread count from its size and the machine's load, and sets it.

    `set_for(points)` is called before a kernel runs; it calls omp_set_num_threads (for the calling
    thread; a kernel's own `num_threads(T)` clause, from the tuner, still wins) only when the choice
    changes. Kernels below the emitter's parallel threshold have no parallel region and are skipped.
    """

    def __init__(self, set_num_threads=None, cores: int | None = None, load=_runnable_others):
        self._set = set_num_threads
        self.cores = cores or _cores()
        self._load = load
        self._sampled_at = -1.0
        self._free = self.cores
        self._local = threading.local()

    def free_cores(self) -> int:
        now = time.monotonic()
        if now - self._sampled_at > SAMPLE_S:
            others = self._load()
            self._free = self.cores if others is None else max(self.cores - others, 1)
            self._sampled_at = now
        return self._free

    def threads_for(self, points: int) -> int:
        free = self.free_cores()
        if free >= self.cores:
            return self.cores
        return 1 if points < SMALL_POINTS else free

    def set_for(self, points: int) -> None:
        if self._set is None or self.cores == 1:
            return
        n = self.threads_for(points)
        if getattr(self._local, "threads", None) != n:
            self._set(n)
            self._local.threads = n


def omp_set_num_threads(library: ctypes.CDLL):
    """The OpenMP runtime's omp_set_num_threads, found through a kernel library (None if absent)."""
    try:
        fn = library["omp_set_num_threads"]
    except AttributeError:
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = None
    return fn


def _openblas(*symbols: str) -> tuple | None:
    """The functions `symbols` of the OpenBLAS library NumPy loaded, all from one library (None for
    another BLAS, or an OpenBLAS without one of them)."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            return tuple(lib[name] for name in symbols)
        except (OSError, AttributeError):
            continue
    return None


def _openblas_set_local():
    """openblas_set_num_threads_local of the OpenBLAS NumPy loaded (None for another BLAS, or an older
    OpenBLAS): it sets the calling thread's BLAS threads and returns the previous count."""
    found = _openblas("openblas_set_num_threads_local")
    if found is None:
        return None
    fn = found[0]
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


# OpenBLAS's idle threads spin for 2**OPENBLAS_THREAD_TIMEOUT cycles after each call before they
# sleep; its default, 2**28 cycles, is a tenth of a second here. In a program that calls BLAS and
# fused kernels in turn, they spin through every kernel, holding a core its OpenMP threads need: a
# 32 MiB elementwise kernel took 3.6 ms in a process that had called np.matmul and 1.55 ms with
# the pool restarted with short spins (alternated, quiet, 2026-11-30). 2**14 cycles (6 us) still
# lets the BLAS calls of one tile's blocks, made back to back, find the threads awake.
BLAS_SPIN_LOG2 = 14


def quiet_blas_threads() -> bool:
    """Restart NumPy's OpenBLAS thread pool with short spins (BLAS_SPIN_LOG2), once per process,
    unless the user chose a timeout (OPENBLAS_THREAD_TIMEOUT or GOTO_THREAD_TIMEOUT). OpenBLAS reads
    the timeout when its pool starts, so the environment is set, re-read, the pool shut down and
    started again, and the environment restored. Called when the first kernel library loads, before
    any kernel runs. Restarting the pool is not safe while another thread is inside a BLAS call, so a
    program that calls BLAS from several threads should set OPENBLAS_THREAD_TIMEOUT itself (which
    leaves the pool alone). Returns whether the pool was restarted."""
    if _QUIETED or "OPENBLAS_THREAD_TIMEOUT" in os.environ or "GOTO_THREAD_TIMEOUT" in os.environ:
        return False
    steps = _openblas("openblas_read_env", "blas_thread_shutdown_", "blas_thread_init")
    if steps is None:
        return False
    read_env, shutdown, start = steps
    _QUIETED.append(True)
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(BLAS_SPIN_LOG2)
    try:
        read_env()
        shutdown()
        start()
    finally:
        os.environ.pop("OPENBLAS_THREAD_TIMEOUT", None)
        read_env()  # the library's copy of the environment as it was (the pool keeps its timeout)
    return True


_QUIETED: list[bool] = []


class BlasLimit:
    """Fewer BLAS threads for one call when the machine is busy: `prev = limit.enter(points)`, the call,
    `limit.exit(prev)`. On an idle machine (or without OpenBLAS) nothing is called at all."""

    def __init__(self, budget: ThreadBudget, set_local) -> None:
        self.budget = budget
        self._set_local = set_local

    def enter(self, points: int) -> int | None:
        if self._set_local is None:
            return None
        n = self.budget.threads_for(points)
        return self._set_local(n) if n < self.budget.cores else None

    def exit(self, previous: int | None) -> None:
        if previous is not None:
            self._set_local(previous)


_BLAS: list[BlasLimit] = []


def blas_limit() -> BlasLimit:
    """The process's BlasLimit (NumPy, and so its BLAS, is loaded by the time a matmul runs)."""
    if not _BLAS:
        _BLAS.append(BlasLimit(ThreadBudget(), _openblas_set_local()))
    return _BLAS[0]
