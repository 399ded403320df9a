"""Where a compiled graph's arrays come from: intermediates and fresh outputs.

A fresh 64 MiB array costs tens of milliseconds the first time it is written: the kernel zeroes and
maps every page on its first touch. An array that was already touched costs nothing. So:

* `BufferPool` keeps the intermediates of one call and hands them out again on the next (and,
  within a call, reuses an intermediate's memory once its last reader has run);
* `OutputRecycler` remembers the outputs handed to the caller; when the caller has dropped one
  (only the recycler still references it), the next call writes into it instead of a new array.
  An array the caller still holds, or a view of it, or anything else referencing it, is never reused.

New arrays come from np.empty (nothing is zeroed that a kernel overwrites). NumPy already advises
transparent huge pages (madvise MADV_HUGEPAGE) for allocations of 4 MiB and more on Linux; an
aligned mmap of our own measured slower on the development machine (bench/README.md), so there is none.
"""

from __future__ import annotations

import sys
import threading

import numpy as np


def _key(shape: tuple[int, ...], dtype: np.dtype) -> tuple:
    return (tuple(shape), np.dtype(dtype).str)


class BufferPool:
    """Arrays keyed by (shape, dtype). `take` hands out a free one (or allocates); `give` returns it."""

    def __init__(self) -> None:
        self._free: dict[tuple, list[np.ndarray]] = {}
        self._lock = threading.Lock()
        self.allocations = 0  # how many arrays were ever allocated (tests check reuse with it)

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        key = _key(shape, dtype)
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


def _unreferenced_count() -> int:
    """sys.getrefcount of an array that only a list holds, read the way OutputRecycler reads it
    (measured once, so it holds on any CPython version)."""
    held = [np.empty(1)]
    return sys.getrefcount(held[0])


class OutputRecycler:
    """The outputs handed to callers; one the caller has let go of is written again by the next call.

    "Let go of" means nothing but this recycler references the array object: not the caller's
    variable, not a view (a view references its base), not a memoryview or a torch tensor sharing
    its memory. Checked with sys.getrefcount at the moment of reuse, under a lock, so two threads
    calling the same program never receive the same array. At most `keep` arrays are remembered.
    Other Python implementations (no reference counts to read) always get new arrays.
    """

    _FREE = _unreferenced_count() if sys.implementation.name == "cpython" else None

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._handed: list[np.ndarray] = []
        self._lock = threading.Lock()
        self.recycled = 0  # how many outputs were written into a dropped array (tests read it)

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A dropped output of this shape and dtype, or a new array."""
        if self._FREE is not None:
            with self._lock:
                handed = self._handed
                for k in range(len(handed)):
                    if handed[k].shape == shape and handed[k].dtype == dtype and sys.getrefcount(handed[k]) == self._FREE:
                        self.recycled += 1
                        return handed.pop(k)
        return np.empty(shape, dtype)

    def hand_out(self, array: np.ndarray) -> None:
        """Remember an output given to the caller (the oldest is forgotten beyond `keep`)."""
        with self._lock:
            self._handed.append(array)
            if len(self._handed) > self.keep:
                del self._handed[0]

    @property
    def idle_bytes(self) -> int:
        return sum(a.nbytes for a in self._handed)

    def clear(self) -> None:
        with self._lock:
            self._handed.clear()
