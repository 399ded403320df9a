"""The ops real models need (issue 11): each is one row, interprets as NumPy (and ONNX, for the
activations' defaults) defines it, and compiles to the same values on both backends, special
values included."""

from __future__ import annotations

import numpy as np
import pytest

import fusec
from fusec.errors import FusecError
from fusec.interp import evaluate
from fusec.ir.ops import OPS
from fusec.tolerance import compare_output

UNARY_FLOAT = ["sin", "cos", "silu", "softplus", "softsign", "mish", "elu", "selu", "leaky_relu", "hardsigmoid",
               "hardswish", "log1p", "expm1", "floor", "ceil", "round", "isnan", "isinf"]  # fmt: skip
NEW = UNARY_FLOAT + ["sign", "clip", "logical_and", "logical_or", "logical_not", "logical_xor", "argmax", "argmin",
                     "var"]  # fmt: skip

SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 1e-30, -1e-30, 100.0, -100.0]


NP = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64}


def _x(dtype, shape=(6, 37), seed=0):
    dtype = NP.get(dtype, dtype)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    x.reshape(-1)[: len(SPECIALS)] = SPECIALS
    return x


def _check(src: str, inputs: list, backend: str) -> dict:
    g = fusec.parse(src)
    program = fusec.compile(g, backend=backend, tune_db=False)
    got = program(*inputs)
    got = got if isinstance(got, tuple) else (got,)
    expected = evaluate(g, inputs)
    for name, value in zip(g.outputs, got):
        assert value.dtype == expected[name].dtype and value.shape == expected[name].shape
        assert compare_output(g, name, value, expected[name]) is None, (name, value, expected[name])
    return expected


def test_every_new_op_is_a_row():
    assert set(NEW) <= set(OPS)


REFERENCE = {
    "sin": np.sin, "cos": np.cos, "log1p": np.log1p, "expm1": np.expm1, "floor": np.floor, "ceil": np.ceil,
    "round": np.round, "isnan": np.isnan, "isinf": np.isinf,
    "softsign": lambda x: x / (1 + np.abs(x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "softplus": lambda x: np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0),
    "mish": lambda x: x * np.tanh(np.log(1 + np.exp(x))),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "selu": lambda x: 1.05070102214813232421875 * np.where(x > 0, x, 1.67326319217681884765625 * (np.exp(x) - 1)),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "hardsigmoid": lambda x: np.clip(0.2 * x + 0.5, 0, 1),
    "hardswish": lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
}  # fmt: skip


@pytest.mark.parametrize("op", UNARY_FLOAT)
def test_reference_agrees_with_the_textbook_formula(op):
    x = np.linspace(-0.99, 20, 4001) if op == "log1p" else np.linspace(-20, 20, 4001)
    got = OPS[op].numpy([x], {s.name: s.default for s in OPS[op].attrs})
    with np.errstate(all="ignore"):
        want = REFERENCE[op](x)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("op", UNARY_FLOAT)
def test_unary_float_ops_compile_on_both_backends(op, dtype, backend):
    src = f"graph g(x: {dtype}[6, 37]) {{\n  y = {op}(x * 1.5)\n  return y\n}}\n"
    _check(src, [_x(dtype)], backend)


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("dtype", ["f32", "f64", "i32", "i64"])
def test_sign_and_clip(dtype, backend):
    x = _x(dtype) if dtype.startswith("f") else np.nan_to_num(_x("float64"), posinf=7, neginf=-7).astype(NP[dtype])
    src = (f"graph g(x: {dtype}[6, 37]) {{\n  s = sign(x)\n  c = clip(x, min=-1, max=2)\n  lo = clip(x, min=0)\n"
           f"  return s, c, lo\n}}\n")
    expected = _check(src, [x], backend)
    np.testing.assert_array_equal(expected["c"], np.clip(x, -1, 2))
    np.testing.assert_array_equal(expected["s"], np.sign(x))


def test_sign_of_negative_zero_is_positive_zero_as_numpy():
    g = fusec.parse("graph g(x: f32[3]) { return sign(x) }")
    x = np.array([-0.0, 0.0, np.nan], np.float32)
    for backend in ("numpy", "c"):
        y = fusec.compile(g, backend=backend, tune_db=False)(x)
        assert not np.signbit(y[0]) and not np.signbit(y[1]) and np.isnan(y[2])


def test_round_is_half_to_even():
    g = fusec.parse("graph g(x: f32[6]) { return round(x) }")
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 3.5000002], np.float32)
    for backend in ("numpy", "c"):
        np.testing.assert_array_equal(fusec.compile(g, backend=backend, tune_db=False)(x), np.round(x))


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_logical_ops(backend):
    src = ("graph g(a: bool[5, 8], b: bool[8], x: f32[5, 8]) {\n  p = logical_and(a, b)\n  q = logical_or(a, x)\n"
           "  r = logical_xor(a, b)\n  s = logical_not(x)\n  return p, q, r, s\n}\n")
    rng = np.random.default_rng(2)
    a, b = rng.random((5, 8)) < 0.5, rng.random(8) < 0.5
    x = _x("float32", (5, 8))
    x[0, :3] = 0
    e = _check(src, [a, b, x], backend)
    np.testing.assert_array_equal(e["q"], np.logical_or(a, x))
    np.testing.assert_array_equal(e["s"], np.logical_not(x))


def test_activation_attributes_follow_onnx_defaults():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0], np.float32)
    assert np.allclose(OPS["leaky_relu"].numpy([x], {"alpha": 0.1}), np.where(x >= 0, x, 0.1 * x))
    assert np.allclose(OPS["hardsigmoid"].numpy([x], {"alpha": 0.2, "beta": 0.5}), np.clip(0.2 * x + 0.5, 0, 1))
    g = fusec.parse("graph g(x: f32[5]) {\n  return elu(x, alpha=0.5), leaky_relu(x, alpha=0.2)\n}\n")
    for backend in ("numpy", "c"):
        e, leaky = fusec.compile(g, backend=backend, tune_db=False)(x)
        np.testing.assert_allclose(e, np.where(x > 0, x, 0.5 * np.expm1(x)), rtol=1e-6)
        np.testing.assert_allclose(leaky, np.where(x >= 0, x, 0.2 * x), rtol=1e-6)


ARG_CASES = [("argmax", None, False), ("argmax", 0, False), ("argmax", 1, True), ("argmin", -1, False),
             ("argmin", None, True), ("argmax", 2, False)]  # fmt: skip


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("axis", [None, 1])
def test_argmax_last_occurrence(axis, backend):
    x = np.array([[1, 3, 3, 0], [2, 2, 1, 2], [0, 0, 0, 0]], np.float32)
    a = "" if axis is None else f"axis={axis}, "
    e = _check(f"graph g(x: f32[3, 4]) {{\n  y = argmax(x, {a}last=true)\n  z = argmin(x, {a}last=true)\n"
               f"  return y, z\n}}\n", [x], backend)
    flat = axis is None
    assert e["y"].tolist() == (2 if flat else [2, 3, 3]) and e["z"].tolist() == (11 if flat else [3, 2, 3])


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("op,axis,keepdims", ARG_CASES)
def test_argmax_argmin_match_numpy(op, axis, keepdims, backend):
    rng = np.random.default_rng(4)
    x = rng.integers(-3, 4, (4, 5, 6)).astype(np.float32)  # ties everywhere: the first one wins
    x[1, 2, 3] = np.nan
    x[2, :, 1] = np.nan  # NaN wins, the first NaN
    attr = "" if axis is None else f"axis={axis}, "
    src = f"graph g(x: f32[4, 5, 6]) {{\n  y = {op}(x, {attr}keepdims={'true' if keepdims else 'false'})\n  return y\n}}\n"
    e = _check(src, [x], backend)
    want = getattr(np, op)(x, axis=axis, keepdims=keepdims)
    np.testing.assert_array_equal(e["y"], want)
    assert e["y"].dtype == np.int64


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_argmax_of_integers(backend):
    x = np.random.default_rng(1).integers(-5, 5, (7, 9)).astype(np.int32)
    e = _check("graph g(x: i32[7, 9]) { return argmax(x, axis=1) }", [x], backend)
    np.testing.assert_array_equal(e[next(iter(e))], np.argmax(x, axis=1))


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("axis,ddof", [(None, 0), (1, 0), (0, 1), ([0, 2], 0)])
def test_var_matches_numpy(axis, ddof, backend):
    x = _x("float32", (5, 7, 9), seed=3)
    x.reshape(-1)[: len(SPECIALS)] = 0.25
    a = "" if axis is None else f"axis={axis}, "
    e = _check(f"graph g(x: f32[5, 7, 9]) {{\n  v = var(x, {a}ddof={ddof})\n  return v\n}}\n", [x], backend)
    np.testing.assert_allclose(e["v"], np.var(x.astype(np.float64), axis=None if axis is None else tuple(np.atleast_1d(axis)), ddof=ddof), rtol=1e-5)


def test_errors_name_the_op():
    with pytest.raises(FusecError, match="argmax takes one axis"):
        fusec.parse("graph g(x: f32[3, 4]) { return argmax(x, axis=[0, 1]) }")
    with pytest.raises(FusecError, match="argmin over an empty axis"):
        fusec.parse("graph g(x: f32[3, 0]) { return argmin(x, axis=1) }")
    with pytest.raises(FusecError, match="whole-number bounds"):
        fusec.parse("graph g(x: i32[3]) { return clip(x, min=0.5) }")
    with pytest.raises(FusecError, match="sin needs a float tensor"):
        fusec.parse("graph g(x: i32[3]) { return sin(x) }")


def test_reference_sum_accumulates_float32_columns_in_float64():
    x = np.full((1_000_000, 2), 0.1, np.float32)
    got = OPS["sum"].numpy([x], {"axis": 0, "keepdims": False})
    exact = np.float32(np.sum(x.astype(np.float64), axis=0))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, exact)
    mean = OPS["mean"].numpy([x], {"axis": 0, "keepdims": True})
    np.testing.assert_array_equal(mean, np.float32(np.mean(x.astype(np.float64), axis=0, keepdims=True)))
