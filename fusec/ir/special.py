"""erf and the float power for the reference interpreter.

NumPy has no erf, and SciPy is too heavy a dependency for one function. This version is accurate to
a few ulps in float64, which makes it a ground truth for both f32 and f64:

* |x| < 3: erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)).
  Every term is positive, so the sum does not cancel (unlike the plain Taylor series).
* 3 <= |x| < 6: erfc(x) from its continued fraction, evaluated bottom-up; erf = 1 - erfc.
* |x| >= 6: erf(x) = +-1 to double precision (erfc(6) is about 2e-17).
"""

from __future__ import annotations

import numpy as np

_TWO_OVER_SQRT_PI = 1.1283791670955126
_ONE_OVER_SQRT_PI = 0.5641895835477563


def erf(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    out_dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    a = np.abs(x.astype(np.float64))
    result = np.ones_like(a)
    with np.errstate(all="ignore"):
        small = a < 3.0
        if np.any(small):
            s = a[small]
            term = s.copy()
            total = s.copy()
            x2 = s * s
            for n in range(1, 90):  # 3^2 * 2 / (2n+1) < 1 after n ~ 9; 90 terms reach 1e-17
                term = term * (2.0 * x2) / (2 * n + 1)
                total += term
            result[small] = _TWO_OVER_SQRT_PI * np.exp(-x2) * total
        mid = (a >= 3.0) & (a < 6.0)
        if np.any(mid):
            m = a[mid]
            frac = np.zeros_like(m)
            for k in range(60, 0, -1):  # erfc(x) = e^-x^2/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
                frac = (k / 2.0) / (m + frac)
            result[mid] = 1.0 - _ONE_OVER_SQRT_PI * np.exp(-m * m) / (m + frac)
        result[np.isnan(a)] = np.nan
    signed = np.copysign(result, x.astype(np.float64))  # keeps erf(-0) == -0
    return signed.astype(out_dtype, copy=False) if x.ndim else out_dtype.type(signed)


def float_power(x, y) -> np.ndarray:
    """x ** y of floats as C's pow and powf compute it (IEEE 754): the interpreter's definition.

    NumPy's power is not one function. With an exponent that repeats one value (a scalar, or a
    broadcast array of stride 0) its loop takes shortcuts: 0.5 becomes sqrt, so pow(-inf, 0.5) is nan
    where C gives +inf, and pow(-0, 0.5) is -0 where C gives +0. And its float32 power is off by an ulp
    for a quarter of arguments such as 10000 ** (-i / 32), which RoPE's positions multiply by 1000.
    So both operands are laid out in full, and a float32 power is computed in float64 and rounded once
    (correctly rounded but for rare double roundings, as glibc's powf).
    """
    x, y = np.asarray(x), np.asarray(y)
    dtype = np.result_type(x, y)
    wide = np.float64 if dtype == np.float32 else dtype
    shape = np.broadcast_shapes(x.shape, y.shape)
    # np.array copies: no stride 0; and at least 1-d: on 0-d operands (one scalar at a time, as the loop
    # IR's reference executor evaluates) NumPy takes the same shortcut
    base = np.array(np.broadcast_to(x.astype(wide, copy=False), shape), ndmin=1)
    exponent = np.array(np.broadcast_to(y.astype(wide, copy=False), shape), ndmin=1)
    with np.errstate(all="ignore"):
        return np.power(base, exponent).astype(dtype, copy=False).reshape(shape)


def int_power(x, y) -> np.ndarray:
    """x ** y of integers as fusec defines it (NumPy refuses negative integer powers): the float64
    power truncated toward zero, as C's (T)trunc(pow(x, y))."""
    with np.errstate(all="ignore"):
        return np.trunc(np.power(np.asarray(x, np.float64), np.asarray(y, np.float64)))
