"""Where a compiled graph's arrays come from: intermediates, fresh outputs, and their memory.

A fresh 64 MiB array costs tens of milliseconds the first time it is written: the kernel zeroes and
maps every 4 KiB page on its first touch. An array that was already touched costs nothing. So:

* `BufferPool` keeps the intermediates of one call and hands them out again on the next (and,
  within a call, reuses an intermediate's memory once its last reader has run);
* `OutputRecycler` remembers the outputs handed to the caller; when the caller has dropped one
  (only the recycler still references it), the next call writes into it instead of a new array.
  An array the caller still holds, or a view of it, or anything else referencing it, is never reused;
* `empty` allocates large arrays on transparent huge pages where the OS offers them (Linux,
  `madvise(MADV_HUGEPAGE)`): one fault per 2 MiB instead of one per 4 KiB. Nothing is zeroed that a
  kernel will overwrite.
"""

from __future__ import annotations

import mmap
import sys
import threading

import numpy as np

HUGE_PAGE = 2 * 1024 * 1024
HUGE_MIN_BYTES = 4 * 1024 * 1024  # below this, malloc's memory is as good (and reused by malloc itself)
_MADV_HUGEPAGE = getattr(mmap, "MADV_HUGEPAGE", None)


def empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array; a large one starts on a huge-page boundary, advised as such."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if _MADV_HUGEPAGE is None or nbytes < HUGE_MIN_BYTES:
        return np.empty(shape, dtype)
    try:
        region = mmap.mmap(-1, nbytes + HUGE_PAGE)  # anonymous, private; over-allocated to align it
        region.madvise(_MADV_HUGEPAGE)
    except (OSError, ValueError):
        return np.empty(shape, dtype)
    return _on_mapping(region, shape, dtype)


def _on_mapping(region: mmap.mmap, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An array over `region`, starting at its first huge-page boundary; its base is the mapping
    itself, which stays mapped until the array and every view of it are gone."""
    address = np.frombuffer(region, dtype=np.uint8, count=1).ctypes.data
    return np.ndarray(shape, dtype, buffer=region, offset=-address % HUGE_PAGE)


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
        return empty(shape, dtype)

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


def _references(array: np.ndarray) -> tuple[int, int]:
    """How many references the array has, and its memory's owner (a huge-page mapping) if not itself.

    A view made by NumPy references either the array or, for an array that does not own its memory,
    possibly the owner directly: both counts must be at their minimum before the memory is reused.
    """
    base = array.base
    return sys.getrefcount(array), (sys.getrefcount(base) if base is not None else 0)


def _minimum_references() -> tuple[tuple[int, int], tuple[int, int]]:
    """`_references` of an array (plain, and on a mapping) that only a list holds, as OutputRecycler
    calls it: measured once, so it holds on any CPython version."""
    held = [np.empty(1), _on_mapping(mmap.mmap(-1, 2 * HUGE_PAGE), (1,), np.dtype(np.float64))]
    return _references(held[0]), _references(held[1])


class OutputRecycler:
    """The outputs handed to callers; one the caller has let go of is written again by the next call.

    "Let go of" means nothing but this recycler references the array object: not the caller's
    variable, not a view (a view references its base), not a memoryview or a torch tensor sharing
    its memory. Checked with sys.getrefcount at the moment of reuse, under a lock, so two threads
    calling the same program never receive the same array. At most `keep` arrays are remembered.
    Other Python implementations (no reference counts to read) always get new arrays.
    """

    _FREE = _minimum_references() if sys.implementation.name == "cpython" else None

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
                    if handed[k].shape == shape and handed[k].dtype == dtype and _references(handed[k]) in self._FREE:
                        self.recycled += 1
                        return handed.pop(k)
        return empty(shape, dtype)

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
