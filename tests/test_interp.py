"""The reference interpreter against NumPy written by hand, and the op table's rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import EXAMPLES, small_sizes

import fusec
from fusec.inputs import random_inputs
from fusec.ir.ops import KINDS, OPS

rng = np.random.default_rng(7)


def run(src: str, *arrays):
    return fusec.interpret(fusec.parse(src), *arrays)


def test_chain_matches_hand_numpy():
    x = rng.standard_normal((5, 7)).astype(np.float32)
    g = fusec.load(next(p for p in EXAMPLES if "chain" in p.stem), sizes={"N": 5, "M": 7})
    expected = ((x * 2 + 1) * x - 3) / (x * x + 1) + np.sqrt(np.abs(x))
    np.testing.assert_allclose(fusec.interpret(g, x), expected, rtol=1e-6)


def test_softmax_and_layernorm_match_hand_numpy():
    x = rng.standard_normal((4, 9)).astype(np.float32)
    gamma = rng.standard_normal(9).astype(np.float32)
    beta = rng.standard_normal(9).astype(np.float32)
    src = "graph g(x: f32[4, 9], gm: f32[9], bt: f32[9]) { return softmax(x), layernorm(x, gm, bt, eps=0.001) }"
    sm, ln = run(src, x, gamma, beta)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(sm, e / e.sum(axis=1, keepdims=True), rtol=1e-6)
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    np.testing.assert_allclose(ln, (x - mu) / np.sqrt(var + 0.001) * gamma + beta, rtol=1e-5, atol=1e-6)


def test_gelu_both_forms():
    x = np.linspace(-5, 5, 101)
    exact, approx = run('graph g(x: f64[101]) { return gelu(x), gelu(x, approximate="tanh") }', x)
    expected_exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    # 1 + erf(x) cancels for negative x, in both this reference and the expected values: about 1e-11
    np.testing.assert_allclose(exact, expected_exact, rtol=1e-10, atol=1e-15)
    expected_tanh = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(approx, expected_tanh, rtol=1e-14)


def test_erf_matches_math_erf():
    x = np.concatenate([np.linspace(-7, 7, 2001), [0.0, -0.0, 1e-310]])
    (y,) = [run("graph g(x: f64[2004]) { return erf(x) }", x)]
    np.testing.assert_allclose(y, [math.erf(v) for v in x], rtol=4e-15, atol=1e-300)
    assert np.signbit(y[-2])


def test_reductions_and_keepdims():
    x = rng.standard_normal((3, 4, 5))
    s, m, mx, mn, p = run(
        "graph g(x: f64[3, 4, 5]) { return sum(x, axis=[0, 2]), mean(x, axis=1, keepdims=true), max(x), min(x, axis=-1), prod(x, axis=0) }",
        x,
    )
    np.testing.assert_allclose(s, x.sum(axis=(0, 2)))
    np.testing.assert_allclose(m, x.mean(axis=1, keepdims=True))
    assert mx == x.max()
    np.testing.assert_allclose(mn, x.min(axis=-1))
    np.testing.assert_allclose(p, x.prod(axis=0))


def test_layout_ops():
    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    t, r, sl, c, b = run(
        "graph g(x: i32[2, 3, 4]) { return transpose(x, perm=[1, 2, 0]), reshape(x, shape=[4, -1]), "
        "slice(x, axis=2, start=-3, step=2), concat(x, x, axis=0), broadcast_to(sum(x, axis=0), shape=[2, 3, 4]) }",
        x,
    )
    np.testing.assert_array_equal(t, x.transpose(1, 2, 0))
    np.testing.assert_array_equal(r, x.reshape(4, 6))
    np.testing.assert_array_equal(sl, x[:, :, -3::2])
    np.testing.assert_array_equal(c, np.concatenate([x, x]))
    np.testing.assert_array_equal(b, np.broadcast_to(x.sum(axis=0), (2, 3, 4)))
    assert b.flags.c_contiguous  # outputs are real arrays, not broadcast views


def test_where_cast_comparisons_and_integer_division():
    a = np.array([1, -2, 3], dtype=np.int32)
    w, c, d, lt = run("graph g(a: i32[3]) { return where(a > 0, a, 0), cast(a, dtype=f64), a / 2, a < 0 }", a)
    np.testing.assert_array_equal(w, [1, 0, 3])
    assert c.dtype == np.float64
    np.testing.assert_array_equal(d, np.array([0.5, -1.0, 1.5], dtype=np.float32))
    assert d.dtype == np.float32
    np.testing.assert_array_equal(lt, [False, True, False])


def test_special_values_are_computed_not_rejected():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype=np.float32)
    y, lse = run("graph g(x: f32[5]) { return sqrt(x) * 0 + exp(-x), logsumexp(x) }", x)
    assert np.isnan(y[0]) and np.isnan(y[1]) and y[3] == 1.0
    assert np.isnan(lse)  # a nan in the row makes the whole logsumexp nan, as in NumPy/PyTorch


def test_logsumexp_all_minus_inf_row():
    x = np.array([[-np.inf, -np.inf], [0.0, -np.inf]], dtype=np.float32)
    (lse,) = [run("graph g(x: f32[2, 2]) { return logsumexp(x, axis=-1) }", x)]
    assert lse[0] == -np.inf and lse[1] == 0.0


def test_composites_expand_to_the_same_values():
    x = (rng.standard_normal((6, 10)) * 30).astype(np.float32)
    gm = rng.standard_normal(10).astype(np.float32)
    src = "graph g(x: f32[6, 10], gm: f32[10]) { return softmax(x), log_softmax(x), logsumexp(x, axis=-1), rmsnorm(x, gm), layernorm(x, gm, gm) }"
    g = fusec.parse(src)
    before = fusec.interpret(g, x, gm)
    for node in [n for n in g.ops() if n.opdef.is_composite]:
        g.expand_composite(node.name)
    g.verify()
    assert not any(n.opdef.is_composite for n in g.ops())
    after = fusec.interpret(g, x, gm)
    for a, b in zip(after, before):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_op_table_rows_are_complete():
    required = {"add", "sub", "mul", "div", "pow", "neg", "abs", "exp", "log", "sqrt", "rsqrt", "reciprocal",
                "tanh", "sigmoid", "relu", "gelu", "erf", "maximum", "minimum", "where", "eq", "ne", "lt", "le",
                "gt", "ge", "cast", "sum", "mean", "max", "min", "prod", "softmax", "log_softmax", "layernorm",
                "rmsnorm", "transpose", "reshape", "broadcast_to", "expand_dims", "squeeze", "slice", "concat",
                "matmul"}
    assert required <= set(OPS)
    for op in OPS.values():
        assert op.kind in KINDS or op.kind == "leaf"
        if op.kind != "leaf":
            assert op.numpy is not None and op.infer is not None
    assert {n for n, o in OPS.items() if o.is_composite} >= {"softmax", "log_softmax", "layernorm", "rmsnorm"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_runs_and_outputs_are_typed(path):
    g = fusec.load(path, sizes=small_sizes(path))
    result = fusec.interpret(g, *random_inputs(g, seed=1))
    results = result if isinstance(result, tuple) else (result,)
    for name, value in zip(g.outputs, results):
        t = g.type_of(name)
        assert value.shape == t.shape and value.dtype == t.dtype.numpy
        assert np.isfinite(value).all(), f"{path.name}: {name} has non-finite values on random inputs"
