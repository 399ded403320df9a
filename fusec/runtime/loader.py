"""Loading a compiled kernel library with ctypes, and calling its functions on NumPy arrays.

A kernel function takes only pointers and 64-bit integers:

    void fused_chain(const float *restrict x, float *restrict y);

so a `Param` list (name, array or scalar, dtype, shape) is all the loader needs to check a call: the
arrays' dtypes and shapes, that they are C-contiguous, and that outputs are writable. A wrong array
gives a FusecInputError naming the parameter instead of a segfault.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusec.errors import FusecError, FusecInputError
from fusec.ir.dtypes import DType
from fusec.runtime.threads import ThreadBudget, gomp_env, omp_set_num_threads, quiet_blas_threads

_LOADED: dict[str, ctypes.CDLL] = {}
_THREADS: list[ThreadBudget] = []  # one per process, made when the first OpenMP kernel library loads


def thread_budget() -> ThreadBudget | None:
    """The process's ThreadBudget (None until a kernel library using OpenMP is loaded)."""
    return _THREADS[0] if _THREADS else None


@dataclass(frozen=True)
class Param:
    """One parameter of a kernel function, in order.

    kind: "in" (read-only array), "out" (written array), "inout" (read and written in place) or
    "scalar" (an int64_t or double passed by value; dtype says which).
    shape: the array's required shape, or None to accept any C-contiguous array of that dtype.
    """

    name: str
    kind: str
    dtype: DType
    shape: tuple[int, ...] | None = None

    @property
    def is_array(self) -> bool:
        return self.kind != "scalar"

    def ctype(self):
        if self.is_array:
            return ctypes.c_void_p
        return ctypes.c_double if self.dtype.is_float else ctypes.c_int64


_from_buffer = ctypes.c_char.from_buffer
_addressof = ctypes.addressof


def address(array: np.ndarray) -> int:
    """The address of a contiguous array's first element.

    Through the buffer protocol (about 4x cheaper than `array.ctypes.data`, which builds a helper
    object); a read-only or empty array takes the slower way.
    """
    try:
        return _addressof(_from_buffer(array))
    except (TypeError, ValueError):
        return array.ctypes.data


def _asan_loaded() -> bool:
    try:
        with open("/proc/self/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


def load_library(path: str | Path) -> ctypes.CDLL:
    """dlopen a kernel library once per process (dlopen itself also shares one handle per path)."""
    key = os.path.realpath(path)
    lib = _LOADED.get(key)
    if lib is not None:
        return lib
    with open(key, "rb") as f:
        needs_asan = b"libasan.so" in f.read()
    if needs_asan and not _asan_loaded():
        # loading it anyway would abort the whole process with "ASan runtime does not come first"
        raise FusecError(
            f"{key} was built in sanitize mode, which needs AddressSanitizer loaded first: run Python with the "
            "environment from fusec.runtime.build.sanitizer_env() (LD_PRELOAD of libasan)"
        )
    try:
        with gomp_env():  # idle OpenMP threads sleep instead of spinning (fusec.runtime.threads)
            lib = ctypes.CDLL(key)
    except OSError as err:
        raise FusecError(f"cannot load the kernel library {key}: {err}") from None
    _LOADED[key] = lib
    if not _THREADS:
        setter = omp_set_num_threads(lib)
        if setter is not None:
            _THREADS.append(ThreadBudget(setter))
            quiet_blas_threads()  # no spinning BLAS threads in the way of the kernels' own
    return lib


class KernelFunction:
    """A C function in a loaded library, callable with NumPy arrays and Python scalars."""

    def __init__(self, library: str | Path | ctypes.CDLL, symbol: str, params: Sequence[Param]):
        lib = library if isinstance(library, ctypes.CDLL) else load_library(library)
        try:
            self._fn = lib[symbol]  # a fresh function pointer: its argtypes are this object's own
        except AttributeError:
            raise FusecError(f"the kernel library has no function '{symbol}'") from None
        self._fn.restype = None
        self._fn.argtypes = [p.ctype() for p in params]
        self.symbol = symbol
        self.params = tuple(params)

    def __call__(self, *args) -> None:
        self._fn(*self.check(args))

    def call_pointers(self, *raw) -> None:
        """Call with already-checked raw addresses and scalars."""
        self._fn(*raw)

    def call_arrays(self, *arrays: np.ndarray) -> None:
        """Call with arrays the executor has already checked (the hot path: no checks here)."""
        self._fn(*[address(a) for a in arrays])

    def check(self, args: Sequence) -> list:
        """Validate the arguments against the parameters; return what ctypes should receive."""
        if len(args) != len(self.params):
            names = ", ".join(p.name for p in self.params)
            raise FusecInputError(f"kernel {self.symbol} takes {len(self.params)} arguments ({names}), got {len(args)}")
        raw = []
        for p, a in zip(self.params, args):
            if not p.is_array:
                raw.append(float(a) if p.dtype.is_float else int(a))
                continue
            if not isinstance(a, np.ndarray):
                raise FusecInputError(f"argument '{p.name}' of {self.symbol} must be a NumPy array, got {type(a).__name__}")
            if a.dtype != p.dtype.numpy:
                raise FusecInputError(f"argument '{p.name}' of {self.symbol} must have dtype {p.dtype}, got {a.dtype}")
            if p.shape is not None and tuple(a.shape) != tuple(p.shape):
                raise FusecInputError(
                    f"argument '{p.name}' of {self.symbol} must have shape {list(p.shape)}, got {list(a.shape)}"
                )
            if not a.flags.c_contiguous:
                raise FusecInputError(f"argument '{p.name}' of {self.symbol} must be C-contiguous (use np.ascontiguousarray)")
            if p.kind in ("out", "inout") and not a.flags.writeable:
                raise FusecInputError(f"argument '{p.name}' of {self.symbol} is written, but the array is read-only")
            raw.append(a.ctypes.data)
        return raw
