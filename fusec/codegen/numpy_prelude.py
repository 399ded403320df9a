"""Helpers that generated NumPy kernels call (everything else in them is plain NumPy).

Each helper writes into `out`, which the kernel preallocated, and follows the reference
interpreter's formula for the op (fusec.ir.ops), so results match it to rounding.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fusec.ir.special import erf as _erf
from fusec.ir.special import float_power, int_power

_SQRT_2_OVER_PI = 0.7978845608028654
_INV_SQRT2 = 0.7071067811865476


def strided(base: np.ndarray, offset: int, shape: tuple[int, ...], strides: tuple[int, ...]) -> np.ndarray:
    """A view of the contiguous array `base`: element [p0, p1, ...] is base.flat[offset + sum(p_k * strides_k)].

    Strides count elements (not bytes); a stride of 0 repeats one element (broadcasting).
    """
    if 0 in shape:  # no element to address: the offset of a reversed empty slice may lie past the buffer
        return np.empty(shape, dtype=base.dtype)
    size = base.itemsize
    return np.ndarray(shape, dtype=base.dtype, buffer=base, offset=offset * size, strides=[s * size for s in strides])


def gather(base: np.ndarray, index: np.ndarray, clip: bool = False) -> np.ndarray:
    """base.flat[index] for an integer index array (reshape indices that are not affine).

    clip=True keeps indices inside the array: used for the pieces of a concat, where only the selected
    piece's elements are meaningful and the others are discarded.
    """
    flat = base.reshape(-1)
    if clip:
        index = np.clip(index, 0, max(flat.size - 1, 0))
        if flat.size == 0:
            return np.zeros(np.shape(index), dtype=base.dtype)
    return flat[index]


def fpow(a, b, out: np.ndarray) -> np.ndarray:
    """Float power as the interpreter defines it (fusec.ir.special.float_power: IEEE pow, float32
    rounded once from float64), not NumPy's power, which takes sqrt for a repeated exponent of 0.5."""
    np.copyto(out, float_power(a, b), casting="same_kind")
    return out


def ipow(a, b, out: np.ndarray) -> np.ndarray:
    """Integer power as the interpreter defines it: the float64 power truncated toward zero."""
    np.copyto(out, int_power(a, b), casting="unsafe")
    return out


def gelu(x: np.ndarray, approximate: str, out: np.ndarray) -> np.ndarray:
    """0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))), or with erf(x / sqrt(2)).

    The tanh form works in `out` alone (no temporaries); `out` must not be `x`.
    """
    t = x.dtype.type
    if approximate == "tanh":
        np.multiply(x, t(0.044715), out=out)
        np.multiply(out, x, out=out)
        np.multiply(out, x, out=out)
        np.add(x, out, out=out)
        np.multiply(out, t(_SQRT_2_OVER_PI), out=out)
        np.tanh(out, out=out)
        np.add(out, t(1.0), out=out)
        np.multiply(out, x, out=out)
        np.multiply(out, t(0.5), out=out)
        return out
    r = 0.5 * x * (1.0 + _erf(x * t(_INV_SQRT2)))
    np.copyto(out, r, casting="unsafe")
    return out


def erf(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.copyto(out, _erf(x), casting="unsafe")
    return out


def where(cond, a, b, out: np.ndarray) -> np.ndarray:
    np.copyto(out, b)
    np.copyto(out, a, where=np.broadcast_to(cond, out.shape))
    return out


def select(index: np.ndarray, bounds: tuple[int, ...], pieces: list, out: np.ndarray) -> np.ndarray:
    """Concat: out = pieces[k] where bounds[k] <= index < bounds[k+1]."""
    for lo, hi, piece in zip(bounds, bounds[1:], pieces):
        np.copyto(out, piece, where=np.broadcast_to((index >= lo) & (index < hi), out.shape), casting="unsafe")
    return out


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def threads() -> int:
    """Threads for parallel tile loops: FUSEC_NUMPY_THREADS, else the number of cores."""
    return max(1, int(os.environ.get("FUSEC_NUMPY_THREADS") or os.cpu_count() or 1))


def run_parallel(tiles, n: int) -> None:
    """Run tiles(first, last) over [0, n), split into one contiguous range per thread."""
    k = min(threads(), n)
    if k <= 1:
        tiles(0, n)
        return
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < k:
            _pool = ThreadPoolExecutor(max_workers=k, thread_name_prefix="fusec-numpy")
    bounds = [n * j // k for j in range(k + 1)]
    futures = [_pool.submit(_quiet, tiles, lo, hi) for lo, hi in zip(bounds, bounds[1:])]
    for f in futures:
        f.result()


def _quiet(tiles, first: int, last: int) -> None:
    with np.errstate(all="ignore"):  # NaN and inf are computed, not reported (errstate is per thread)
        tiles(first, last)
