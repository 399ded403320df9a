"""Division by a loop-invariant value as a multiply by its reciprocal (fusec/codegen/c_reciprocal.py):
where 1/s is a normal float the loop multiplies (within 1.5 ulp), elsewhere it divides as before."""

from __future__ import annotations

import numpy as np
import pytest

import fusec
from fusec.bisect import check
from fusec.interp import interpret
from fusec.tolerance import ulp_distance

NORMALIZE = "graph g(x: f32[8, 300]) { return y = x / sum(x, axis=-1, keepdims=true) }"


def _source(text: str) -> str:
    return fusec.compile(fusec.parse(text), backend="c", tune_db=False).source()


def test_softmax_multiplies_by_the_reciprocal_of_the_row_sum():
    source = _source("graph g(x: f32[4, 300]) { e = exp(x - max(x, axis=-1, keepdims=true))\n return y = e / sum(e, axis=-1, keepdims=true) }")
    assert "const float acc_y_sum_inv = 1.0f / acc_y_sum;" in source, source
    assert "fabsf(acc_y_sum) >= 0x1p-126f && fabsf(acc_y_sum) <= 0x1p126f" in source
    assert "acc_y_sum_inv_ok ? row0[r1] * acc_y_sum_inv : row0[r1] / acc_y_sum" in source


@pytest.mark.parametrize("scale", [1.0, 1e-40, 1e-30, 1e36, 3e37], ids=["ones", "denormal", "tiny", "large", "huge"])
def test_every_divisor_range_matches_the_interpreter(scale):
    """Rows whose sum is a denormal (1/s = inf) or beyond 2^126 (1/s a denormal) take the division."""
    g = fusec.parse(NORMALIZE)
    rng = np.random.default_rng(0)
    x = (rng.uniform(0.5, 1.0, (8, 300)) * scale).astype(np.float32)
    x[0, :] = 0.0  # 0 / 0: NaN on both paths
    x[1, 0] = np.inf
    assert check(g, [x], "c") is None
    got = fusec.compile(g, backend="c", tune_db=False)(x)
    expected = interpret(g, x)
    assert np.isnan(got[0]).all() and np.array_equal(np.isnan(got), np.isnan(expected))


def test_within_two_ulps_of_the_quotient():
    """Small integers: every row sum is exact in float32 whatever the order, so the only difference
    from NumPy's x / s is the reciprocal's rounding (x * fl(1/s) is within 1.5 ulp of x / s)."""
    g = fusec.parse(NORMALIZE)
    x = np.random.default_rng(5).integers(1, 17, (8, 300)).astype(np.float32)
    got = fusec.compile(g, backend="c", tune_db=False)(x)
    quotient = x / x.sum(axis=-1, keepdims=True)
    assert ulp_distance(got, quotient).max() <= 2


def test_a_divisor_computed_in_the_loop_is_left_alone():
    source = _source("graph g(x: f32[64, 300], z: f32[64, 300]) { return x / (z + 1.0) }")
    assert "_inv" not in source
