"""Numerical robustness of the row-wise composites on every backend.

softmax, log_softmax, logsumexp and layernorm must stay finite and accurate for inputs of magnitude
1e4 and for rows that are all -inf but one. "Accurate" is judged against a float64 reference computed
from the same float32 inputs, with the tolerance policy of fusec.tolerance; where the problem itself
is ill-conditioned (layernorm of 1e4 + noise: the mean cancels), the bound is the conditioning times
float32's epsilon, as docs/tolerances.md explains.
"""

from __future__ import annotations

import numpy as np
import pytest

import fusec
from fusec.tolerance import compare

SRC = """graph g<R=6, D=67>(x: f32[R, D], gam: f32[D], bet: f32[D]) {
  return softmax(x), log_softmax(x), logsumexp(x, axis=-1), layernorm(x, gam, bet)
}
"""
EPS32 = float(np.finfo(np.float32).eps)
BACKENDS = ["interp", "numpy", "c"]


@pytest.fixture(scope="module")
def graph():
    return fusec.parse(SRC)


@pytest.fixture(scope="module")
def runners(graph):
    compiled = {b: fusec.compile(graph, backend=b) for b in ("numpy", "c")}
    return {"interp": lambda *a: fusec.interpret(graph, *a), **compiled}


def reference(x, gam, bet):
    """The composites in float64, written the numerically stable way."""
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(all="ignore"):
        e = np.exp(x - m_safe)
        s = e.sum(-1, keepdims=True)
        softmax = e / s
        log_softmax = (x - m_safe) - np.log(s)
        lse = (np.log(s) + m_safe)[:, 0]
        mu = x.mean(-1, keepdims=True)
        d = x - mu
        layernorm = d / np.sqrt((d * d).mean(-1, keepdims=True) + 1e-5) * gam + bet
    return softmax, log_softmax, lse, layernorm


def params(rng, d=67):
    return rng.uniform(0.5, 1.5, d).astype(np.float32), rng.standard_normal(d).astype(np.float32)


def as_f32(a):
    with np.errstate(all="ignore"):
        return a.astype(np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_magnitude_1e4_is_finite_and_accurate(runners, backend):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((6, 67)) * 1e4).astype(np.float32)
    gam, bet = params(rng)
    got = runners[backend](x, gam, bet)
    for name, a, want in zip(["softmax", "log_softmax", "logsumexp", "layernorm"], got, reference(x, gam, bet)):
        assert np.isfinite(a).all(), f"{name} is not finite"
        assert compare(a, as_f32(want)) is None, f"{name}: {compare(a, as_f32(want))}"
    np.testing.assert_allclose(got[0].sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_offset_1e4_layernorm_is_as_accurate_as_its_conditioning_allows(runners, backend):
    # mean 1e4, spread 1: centring cancels about log2(1e4) bits, so f32 can promise
    # |error| <= c * eps32 * |mean| / std, with c = 8 for the rounding of the sums
    rng = np.random.default_rng(2)
    x = (1e4 + rng.standard_normal((6, 67))).astype(np.float32)
    gam, bet = params(rng)
    got = runners[backend](x, gam, bet)
    want = reference(x, gam, bet)
    bound = 8 * EPS32 * 1e4 / float(x.astype(np.float64).std(-1).min())
    ln = got[3].astype(np.float64)
    assert np.isfinite(ln).all()
    assert np.abs(ln - want[3]).max() <= bound * np.abs(gam).max(), np.abs(ln - want[3]).max()
    # softmax and friends are shift-invariant, so the offset costs them nothing
    for name, a, w in zip(["softmax", "log_softmax", "logsumexp"], got[:3], want[:3]):
        assert compare(a, as_f32(w)) is None, f"{name}: {compare(a, as_f32(w))}"


def one_finite_per_row(rng):
    x = np.full((6, 67), -np.inf, np.float32)
    cols = rng.integers(0, 67, size=6)
    vals = np.array([0.0, 1e4, -1e4, 3.5, -0.0, 88.0], np.float32)
    x[np.arange(6), cols] = vals
    return x, cols, vals


@pytest.mark.parametrize("backend", BACKENDS)
def test_rows_all_minus_inf_but_one(runners, backend):
    rng = np.random.default_rng(3)
    x, cols, vals = one_finite_per_row(rng)
    gam, bet = params(rng)
    sm, lsm, lse, _ = runners[backend](x, gam, bet)
    onehot = np.zeros((6, 67), np.float32)
    onehot[np.arange(6), cols] = 1.0
    np.testing.assert_array_equal(sm, onehot)  # exactly one-hot, no NaN
    expected_lsm = np.where(onehot == 1.0, np.float32(0.0), np.float32(-np.inf))
    np.testing.assert_array_equal(lsm, expected_lsm)
    np.testing.assert_array_equal(lse, vals)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_row_all_minus_inf_matches_the_interpreter(runners, backend):
    # softmax of an all -inf row is 0/0 = NaN (undefined), logsumexp is -inf: the compiled code must
    # put NaN and inf exactly where the interpreter does, and leave the other rows alone
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 67)).astype(np.float32)
    x[2] = -np.inf
    x[4, :60] = -np.inf
    gam, bet = params(rng)
    want = runners["interp"](x, gam, bet)
    got = runners[backend](x, gam, bet)
    assert np.isneginf(want[2][2])
    for name, a, w in zip(["softmax", "log_softmax", "logsumexp", "layernorm"], got, want):
        assert compare(a, w) is None, f"{name}: {compare(a, w)}"
    assert np.isfinite(got[0][[0, 1, 3, 4, 5]]).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_large_positive_logits_do_not_overflow(backend, dtype):
    # 1e4 > log(max float): a naive exp(x) overflows to inf and inf/inf gives NaN
    g = fusec.parse(f"graph g(x: {dtype}[3, 40]) {{\n  return softmax(x), logsumexp(x, axis=-1)\n}}\n")
    x = np.linspace(-1e4, 1e4, 120).reshape(3, 40).astype(g.type_of("x").dtype.numpy)
    run = (lambda *a: fusec.interpret(g, *a)) if backend == "interp" else fusec.compile(g, backend=backend)
    sm, lse = run(x)
    assert np.isfinite(sm).all() and np.isfinite(lse).all()
    np.testing.assert_allclose(lse, x.max(-1), rtol=1e-6)
    assert (sm[:, -1] == 1.0).all()
