"""Where builds and measurements run: a `concurrent.futures.Executor`.

    local_executor()                 a process pool on this machine (the default)
    make_executor("dask://HOST:PORT")  the executor of a Dask `distributed` client (the `dask` extra)

The tuner submits two kinds of plain, picklable jobs (fusec.tune.worker): `build_candidate`, many
at once (compiling in parallel is fine), and `measure_on_worker`, one at a time (timings need the
machine to themselves). Any executor works: a Dask client's `client.get_executor()` runs both on
the cluster's workers, and each measurement reports the signature of the worker's machine.
"""

from __future__ import annotations

import concurrent.futures
import os

from fusec.errors import FusecError
from fusec.tune.isolate import _context, _without_main


class LocalPool(concurrent.futures.ProcessPoolExecutor):
    """A process pool whose workers come from the tuner's fork server (fast to start, no copy of
    the caller's threads), started without the caller's __main__ (see isolate._without_main)."""

    def __init__(self, workers: int | None = None):
        super().__init__(max_workers=workers or os.cpu_count() or 2, mp_context=_context())

    def submit(self, fn, /, *args, **kwargs):
        with _without_main():
            return super().submit(fn, *args, **kwargs)


def local_executor(workers: int | None = None) -> concurrent.futures.Executor:
    return LocalPool(workers)


def is_local(executor: concurrent.futures.Executor) -> bool:
    """True for executors whose workers share this machine's disk (the job's arrays need no copy)."""
    return isinstance(executor, (concurrent.futures.ProcessPoolExecutor, concurrent.futures.ThreadPoolExecutor))


def make_executor(spec: str) -> tuple[concurrent.futures.Executor, object | None]:
    """(executor, the object to close when done) for "local" or "dask://HOST:PORT"."""
    if spec == "local":
        return local_executor(), None
    if spec.startswith("dask://"):
        address = "tcp://" + spec.removeprefix("dask://")
        try:
            from distributed import Client
        except ImportError:
            raise FusecError("--executor dask:// needs Dask: pip install 'fusec[dask]'") from None
        try:
            client = Client(address, timeout=10)
        except (OSError, TimeoutError) as err:
            raise FusecError(f"cannot reach the Dask scheduler at {address}: {err}") from None
        return client.get_executor(), client
    raise FusecError(f"unknown executor {spec!r} (expected local or dask://HOST:PORT)")
