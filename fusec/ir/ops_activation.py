"""Rows of the op table: the activations of real models (ONNX's definitions and attribute defaults).

silu, softplus, softsign and mish are primitives with their own spellings; each reference is written
operation for operation as the backends compute it (silu(x) is x * sigmoid(x), sigmoid being
1 / (1 + exp(-x))), so a recognition rule such as `x * sigmoid(x) -> silu(x)` is exact. The ops with
attributes (elu, selu, leaky_relu, hardsigmoid, hardswish, clip) are composites: their expansion into
where/maximum/minimum/expm1 is exactly their reference, and the planner fuses it like any other.
"""

from __future__ import annotations

import math

import numpy as np

from fusec.errors import FusecTypeError
from fusec.ir.dtypes import TensorType
from fusec.ir.ops_registry import AttrSpec, OpDef
from fusec.ir.ops_rules import need_numeric, unary_float_rule

EL = "elementwise"
FLOAT = ("float_math",)
# ONNX's Selu defaults (float32 values of alpha and gamma)
SELU_ALPHA = 1.67326319217681884765625
SELU_GAMMA = 1.05070102214813232421875


def _sigmoid(x: np.ndarray) -> np.ndarray:
    one = x.dtype.type(1)
    return one / (one + np.exp(-x))


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))."""
    return np.maximum(x, x.dtype.type(0)) + np.log1p(np.exp(-np.abs(x)))


def _elu(x: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(x) * x.dtype.type(alpha))


def _hardsigmoid(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    t = x.dtype.type
    return np.maximum(np.minimum(x * t(alpha) + t(beta), t(1)), t(0))


def _clip(x: np.ndarray, lo, hi) -> np.ndarray:
    r = x
    if lo != -math.inf:
        r = np.maximum(r, x.dtype.type(lo))
    if hi != math.inf:
        r = np.minimum(r, x.dtype.type(hi))
    return r


def _expand_elu(g, args, attrs, gamma=None):
    (x,) = args
    r = g.add("where", g.add("gt", x, 0.0), x, g.add("mul", g.add("expm1", x), attrs["alpha"]))
    return r if gamma is None else g.add("mul", r, gamma)


def _expand_hardsigmoid_of(g, x, alpha, beta):
    return g.add("maximum", g.add("minimum", g.add("add", g.add("mul", x, alpha), beta), 1.0), 0.0)


def _expand_clip(g, args, attrs):
    (x,) = args
    lo, hi = attrs["min"], attrs["max"]
    is_int = g.type_of(x).dtype.is_int
    r = x
    if lo != -math.inf:
        r = g.add("maximum", r, int(lo) if is_int else float(lo))
    if hi != math.inf:
        r = g.add("minimum", r, int(hi) if is_int else float(hi))
    if r == x:  # no bounds: a copy
        r = g.add("maximum", x, x)
    return r


def _infer_clip(ts: list[TensorType], attrs: dict) -> TensorType:
    t = ts[0]
    need_numeric("clip", t)
    for key in ("min", "max"):
        v = attrs[key]
        if isinstance(v, bool):
            raise FusecTypeError(f"clip's {key} must be a number, got {v!r}")
        if t.dtype.is_int and not math.isinf(v) and v != int(v):
            raise FusecTypeError(f"clip of an integer tensor needs whole-number bounds, got {key}={v!r}")
        if math.isnan(v):
            raise FusecTypeError(f"clip's {key} is NaN")
    return t


SOFTPLUS_NUMPY = ("np.absolute({0}, out={out})", "np.negative({out}, out={out})", "np.exp({out}, out={out})",
                  "np.log1p({out}, out={out})", "np.add(np.maximum({0}, {zero}), {out}, out={out})")  # fmt: skip

ROWS = (
    OpDef("silu", EL, 1, unary_float_rule("silu"), lambda a, attrs: a[0] * _sigmoid(a[0]), flops=13,
          transcendental=True, families=FLOAT,
          numpy_code=("np.negative({0}, out={out})", "np.exp({out}, out={out})", "np.add({one}, {out}, out={out})",
                      "np.true_divide({one}, {out}, out={out})", "np.multiply({0}, {out}, out={out})"),
          c_code={"f32": "({0} * fusec_sigmoidf({0}))", "f64": "({0} * fusec_sigmoid({0}))"}),
    OpDef("softplus", EL, 1, unary_float_rule("softplus"), lambda a, attrs: _softplus(a[0]), flops=24,
          transcendental=True, families=FLOAT, numpy_code=SOFTPLUS_NUMPY,
          c_code={"f64": "fusec_softplus({0})"}, c_vector="fusec_softplusf"),
    OpDef("softsign", EL, 1, unary_float_rule("softsign"),
          lambda a, attrs: a[0] / (a[0].dtype.type(1) + np.abs(a[0])), flops=3, families=FLOAT,
          numpy_code=("np.absolute({0}, out={out})", "np.add({one}, {out}, out={out})",
                      "np.true_divide({0}, {out}, out={out})"),
          c_code={"f32": "({0} / ({one} + fabsf({0})))", "f64": "({0} / ({one} + fabs({0})))"}),
    OpDef("mish", EL, 1, unary_float_rule("mish"), lambda a, attrs: a[0] * np.tanh(_softplus(a[0])), flops=36,
          transcendental=True, families=FLOAT,
          numpy_code=SOFTPLUS_NUMPY + ("np.tanh({out}, out={out})", "np.multiply({0}, {out}, out={out})"),
          c_code={"f32": "({0} * fusec_tanhf(fusec_softplusf({0})))", "f64": "({0} * tanh(fusec_softplus({0})))"}),
    OpDef("elu", EL, 1, unary_float_rule("elu"), lambda a, attrs: _elu(a[0], attrs["alpha"]),
          attrs=(AttrSpec("alpha", "float", 1.0),), expand=_expand_elu, flops=14, families=FLOAT),
    OpDef("selu", EL, 1, unary_float_rule("selu"),
          lambda a, attrs: _elu(a[0], attrs["alpha"]) * a[0].dtype.type(attrs["gamma"]),
          attrs=(AttrSpec("alpha", "float", SELU_ALPHA), AttrSpec("gamma", "float", SELU_GAMMA)),
          expand=lambda g, args, attrs: _expand_elu(g, args, attrs, gamma=attrs["gamma"]), flops=15, families=FLOAT),
    OpDef("leaky_relu", EL, 1, unary_float_rule("leaky_relu"),
          lambda a, attrs: np.where(a[0] >= 0, a[0], a[0] * a[0].dtype.type(attrs["alpha"])),
          attrs=(AttrSpec("alpha", "float", 0.01),),
          expand=lambda g, args, attrs: g.add("where", g.add("ge", args[0], 0.0), args[0],
                                              g.add("mul", args[0], attrs["alpha"])),
          flops=2, families=FLOAT),
    OpDef("hardsigmoid", EL, 1, unary_float_rule("hardsigmoid"),
          lambda a, attrs: _hardsigmoid(a[0], attrs["alpha"], attrs["beta"]),
          attrs=(AttrSpec("alpha", "float", 0.2), AttrSpec("beta", "float", 0.5)),
          expand=lambda g, args, attrs: _expand_hardsigmoid_of(g, args[0], attrs["alpha"], attrs["beta"]),
          flops=4, families=FLOAT),
    OpDef("hardswish", EL, 1, unary_float_rule("hardswish"),
          lambda a, attrs: a[0] * _hardsigmoid(a[0], 1.0 / 6.0, 0.5),
          expand=lambda g, args, attrs: g.add("mul", args[0], _expand_hardsigmoid_of(g, args[0], 1.0 / 6.0, 0.5)),
          flops=5, families=FLOAT),
    # np.clip(x, min, max) is minimum(maximum(x, min), max); an infinite bound is no bound
    OpDef("clip", EL, 1, _infer_clip, lambda a, attrs: _clip(a[0], attrs["min"], attrs["max"]),
          attrs=(AttrSpec("min", "scalar", -math.inf), AttrSpec("max", "scalar", math.inf)),
          expand=_expand_clip, flops=2, families=("numeric",)),
)  # fmt: skip
