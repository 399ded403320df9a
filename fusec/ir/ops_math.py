"""Rows of the op table: elementwise math for real models (sin, cos, log1p, expm1, rounding, sign).

float32 sin/cos/log1p/expm1 go through fusec_math.h's vectorizable functions (accurate to 1 ulp,
see the header); float64 through the C library. floor, ceil and round are exact in every spelling:
`round` is NumPy's, half to even (rint in C, under the default rounding mode).
"""

from __future__ import annotations

import numpy as np

from fusec.ir.ops_registry import OpDef
from fusec.ir.ops_rules import unary_float_rule, unary_numeric_rule

EL = "elementwise"


def _unary(fn):
    return lambda a, attrs: fn(a[0])


def _transcendental(name: str, fn, flops: int) -> OpDef:
    return OpDef(
        name, EL, 1, unary_float_rule(name), _unary(fn), flops=flops, transcendental=True, families=("float_math",),
        numpy_code=f"np.{fn.__name__}({{0}}, out={{out}})", c_code={"f64": f"{name}({{0}})"}, c_vector=f"fusec_{name}f",
    )  # fmt: skip


def _rounding(name: str, fn, c_name: str) -> OpDef:
    return OpDef(
        name, EL, 1, unary_float_rule(name), _unary(fn), families=("float_math",),
        numpy_code=f"np.{fn.__name__}({{0}}, out={{out}})", c_code={"f32": f"{c_name}f({{0}})", "f64": f"{c_name}({{0}})"},
    )  # fmt: skip


ROWS = (
    _transcendental("sin", np.sin, 12),
    _transcendental("cos", np.cos, 12),
    _transcendental("log1p", np.log1p, 12),
    _transcendental("expm1", np.expm1, 12),
    _rounding("floor", np.floor, "floor"),
    _rounding("ceil", np.ceil, "ceil"),
    # np.round of a float array is np.rint: halfway cases to even
    OpDef("round", EL, 1, unary_float_rule("round"), _unary(np.round), families=("float_math",),
          numpy_code="np.rint({0}, out={out})", c_code={"f32": "rintf({0})", "f64": "rint({0})"}),
    # np.sign: NaN stays NaN, both zeros give +0
    OpDef("sign", EL, 1, unary_numeric_rule("sign"), _unary(np.sign), flops=2, families=("numeric",),
          numpy_code="np.sign({0}, out={out})",
          c_code={"float": "({0} > 0 ? {one} : ({0} < 0 ? -{one} : {0} + {zero}))",
                  "*": "({ctype})(({0} > 0) - ({0} < 0))"}),
)  # fmt: skip
