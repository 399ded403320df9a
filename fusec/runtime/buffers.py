"""A pool of reusable arrays for the values that live between kernels.

A fresh 64 MiB array costs tens of milliseconds in page faults the first time it is written; an
array that was already touched costs nothing. So a compiled graph keeps the intermediates of one
call and hands them out again on the next (and, within a call, reuses an intermediate's memory once
its last reader has run).
"""

from __future__ import annotations

import threading

import numpy as np


class BufferPool:
    """Arrays keyed by (shape, dtype). `take` hands out a free one (or allocates); `give` returns it."""

    def __init__(self) -> None:
        self._free: dict[tuple, list[np.ndarray]] = {}
        self._lock = threading.Lock()
        self.allocations = 0  # how many arrays were ever allocated (tests check reuse with it)

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        key = (tuple(shape), np.dtype(dtype).str)
        with self._lock:
            free = self._free.get(key)
            if free:
                return free.pop()
            self.allocations += 1
        return np.empty(shape, dtype)

    def give(self, array: np.ndarray) -> None:
        key = (array.shape, array.dtype.str)
        with self._lock:
            self._free.setdefault(key, []).append(array)

    @property
    def idle_bytes(self) -> int:
        with self._lock:
            return sum(a.nbytes for arrays in self._free.values() for a in arrays)

    def clear(self) -> None:
        with self._lock:
            self._free.clear()
