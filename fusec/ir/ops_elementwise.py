"""Rows of the op table: the elementwise ops.

Each row is everything the compiler knows about one op: its type rule, its NumPy reference, its
cost, its families and how each backend spells it (see fusec/ir/ops_registry.py for the template
language). Semantics follow NumPy; integer add/sub/mul/neg wrap around, so C computes them in
unsigned arithmetic (signed overflow is undefined in C).
"""

from __future__ import annotations

import numpy as np

from fusec.ir.ops_registry import AttrSpec, OpDef
from fusec.ir.ops_rules import binary_rule, infer_cast, infer_where, unary_float_rule, unary_numeric_rule
from fusec.ir.special import erf as _np_erf
from fusec.ir.special import float_power, int_power

_SQRT_2_OVER_PI = 0.7978845608028654
_INV_SQRT2 = 0.7071067811865476


def _binary(fn):
    return lambda a, attrs: fn(a[0], a[1])


def _unary(fn):
    return lambda a, attrs: fn(a[0])


def _np_gelu(a: list[np.ndarray], attrs: dict) -> np.ndarray:
    x = a[0]
    if attrs["approximate"] == "tanh":
        return 0.5 * x * (1.0 + np.tanh(x.dtype.type(_SQRT_2_OVER_PI) * (x + x.dtype.type(0.044715) * x * x * x)))
    return 0.5 * x * (1.0 + _np_erf(x * x.dtype.type(_INV_SQRT2)))


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    one = x.dtype.type(1)
    return one / (one + np.exp(-x))


def _np_pow(a: list[np.ndarray], attrs: dict) -> np.ndarray:
    x, y = a
    if np.issubdtype(np.result_type(x, y), np.integer):
        return int_power(x, y)  # truncated toward zero, as C does (NumPy refuses negative powers)
    return float_power(x, y)  # IEEE pow: NumPy's own power takes shortcuts (see float_power)


def _wrapping(sym: str, bool_sym: str | None = None) -> dict[str, str]:
    """C for + - *: bool as | or & (NumPy's bool arithmetic), integers wrapping in unsigned arithmetic."""
    spelled = {"bool": f"({{0}} {bool_sym} {{1}})"} if bool_sym else {}
    spelled["int"] = f"({{ctype}})(({{utype}}){{0}} {sym} ({{utype}}){{1}})"
    spelled["*"] = f"({{0}} {sym} {{1}})"
    return spelled


def _nan_minmax(fn: str, cmp: str, bool_sym: str, second: str = "{1}") -> dict[str, str]:
    """C for maximum/minimum: NaN-propagating helpers for floats (as np.maximum), | or & for bool."""
    return {
        "f32": f"fusec_{fn}f({{0}}, {second})",
        "f64": f"fusec_{fn}({{0}}, {second})",
        "bool": f"({{0}} {bool_sym} {second})",
        "*": f"({{0}} {cmp} {second} ? {{0}} : {second})",
    }


def _comparison(name: str, fn, symbol: str, commutative: bool) -> OpDef:
    families = ("comparison", "commutative") if commutative else ("comparison",)
    return OpDef(
        name, "elementwise", 2, binary_rule("bool"), _binary(fn), infix=symbol, families=families,
        numpy_code=f"np.{fn.__name__}({{0}}, {{1}}, out={{out}})", c_code=f"({{0}} {symbol} {{1}})",
    )  # fmt: skip


def _float_function(name: str, reference, flops: int, numpy_code, c_vector: str | None, c_f64: str) -> OpDef:
    """A transcendental function of floats: float32 through fusec_math.h's vector function, float64 through libm."""
    c_code = {"f64": f"{c_f64}({{0}})"}
    transcendental = True
    return OpDef(
        name, "elementwise", 1, unary_float_rule(name), _unary(reference), flops=flops, transcendental=transcendental,
        families=("float_math",), numpy_code=numpy_code, c_code=c_code, c_vector=c_vector,
    )  # fmt: skip


EL = "elementwise"
ARITH = ("arithmetic", "computes_in_result_dtype")

ROWS = (
    # -- arithmetic -------------------------------------------------------------------------------
    OpDef("add", EL, 2, binary_rule("promote"), _binary(np.add), infix="+", families=ARITH + ("commutative",),
          numpy_code="np.add({0}, {1}, out={out})", c_code=_wrapping("+", "|")),
    OpDef("sub", EL, 2, binary_rule("numeric"), _binary(np.subtract), infix="-", families=ARITH,
          numpy_code="np.subtract({0}, {1}, out={out})", c_code=_wrapping("-")),
    OpDef("mul", EL, 2, binary_rule("promote"), _binary(np.multiply), infix="*", families=ARITH + ("commutative",),
          numpy_code="np.multiply({0}, {1}, out={out})", c_code=_wrapping("*", "&")),
    OpDef("div", EL, 2, binary_rule("float"), _binary(np.true_divide), infix="/", families=ARITH,
          numpy_code="np.true_divide({0}, {1}, out={out})", c_code="({0} / {1})"),
    # not commutative in IEEE terms: np.maximum(0.0, -0.0) and np.maximum(-0.0, 0.0) differ
    OpDef("maximum", EL, 2, binary_rule("promote"), _binary(np.maximum), families=ARITH,
          numpy_code="np.maximum({0}, {1}, out={out})", c_code=_nan_minmax("max", ">", "|")),
    OpDef("minimum", EL, 2, binary_rule("promote"), _binary(np.minimum), families=ARITH,
          numpy_code="np.minimum({0}, {1}, out={out})", c_code=_nan_minmax("min", "<", "&")),
    # -- comparisons: give bool ---------------------------------------------------------------------
    _comparison("eq", np.equal, "==", commutative=True),
    _comparison("ne", np.not_equal, "!=", commutative=True),
    _comparison("lt", np.less, "<", commutative=False),
    _comparison("le", np.less_equal, "<=", commutative=False),
    _comparison("gt", np.greater, ">", commutative=False),
    _comparison("ge", np.greater_equal, ">=", commutative=False),
    # integer powers are the float64 power truncated toward zero (ipow, trunc(pow(...)))
    OpDef("pow", EL, 2, binary_rule("promote"), _np_pow, infix="**", flops=10, transcendental=True, families=ARITH,
          numpy_code={"float": "fpow({0}, {1}, out={out})", "*": "ipow({0}, {1}, out={out})"},
          c_code={"f32": "fusec_powf({0}, {1})", "f64": "fusec_pow({0}, {1})",
                  "*": "({ctype})trunc(pow((double){0}, (double){1}))"}),
    # -- functions of floats --------------------------------------------------------------------------
    _float_function("exp", np.exp, 10, "np.exp({0}, out={out})", "fusec_expf", "exp"),
    _float_function("log", np.log, 10, "np.log({0}, out={out})", "fusec_logf", "log"),
    OpDef("sqrt", EL, 1, unary_float_rule("sqrt"), _unary(np.sqrt), flops=4, families=("float_math",),
          numpy_code="np.sqrt({0}, out={out})", c_code={"f32": "sqrtf({0})", "f64": "sqrt({0})"}),
    OpDef("rsqrt", EL, 1, unary_float_rule("rsqrt"), _unary(lambda x: x.dtype.type(1) / np.sqrt(x)), flops=5,
          families=("float_math",),
          numpy_code=("np.sqrt({0}, out={out})", "np.true_divide({one}, {out}, out={out})"),
          c_code={"f32": "({one} / sqrtf({0}))", "f64": "({one} / sqrt({0}))"}),
    OpDef("reciprocal", EL, 1, unary_float_rule("reciprocal"), _unary(lambda x: x.dtype.type(1) / x), flops=4,
          families=("float_math",), numpy_code="np.true_divide({one}, {0}, out={out})", c_code="({one} / {0})"),
    _float_function("tanh", np.tanh, 12, "np.tanh({0}, out={out})", "fusec_tanhf", "tanh"),
    _float_function(
        "sigmoid", _np_sigmoid, 12,
        ("np.negative({0}, out={out})", "np.exp({out}, out={out})", "np.add({one}, {out}, out={out})",
         "np.true_divide({one}, {out}, out={out})"),
        "fusec_sigmoidf", "fusec_sigmoid",
    ),  # fmt: skip
    _float_function("erf", _np_erf, 14, "erf({0}, out={out})", "fusec_erff", "erf"),
    # -- functions of numbers -------------------------------------------------------------------------
    OpDef("neg", EL, 1, unary_numeric_rule("neg"), _unary(np.negative), infix="-", families=("numeric",),
          numpy_code="np.negative({0}, out={out})",
          c_code={"int": "({ctype})(0u - ({utype}){0})", "bool": "{0}", "*": "(-{0})"}),
    OpDef("abs", EL, 1, unary_numeric_rule("abs"), _unary(np.abs), families=("numeric",),
          numpy_code="np.absolute({0}, out={out})",
          c_code={"f32": "fabsf({0})", "f64": "fabs({0})", "int": "({0} < 0 ? ({ctype})(0u - ({utype}){0}) : {0})",
                  "*": "{0}"}),
    OpDef("relu", EL, 1, unary_numeric_rule("relu"), _unary(lambda x: np.maximum(x, x.dtype.type(0))),
          families=("numeric",), numpy_code="np.maximum({0}, {zero}, out={out})",
          c_code=_nan_minmax("max", ">", "|", second="{zero}")),
    OpDef("gelu", EL, 1, unary_float_rule("gelu"), _np_gelu, flops=20, transcendental=True, families=("float_math",),
          attrs=(AttrSpec("approximate", "str", "none", ("none", "tanh")),),
          numpy_code="gelu({0}, {approximate}, out={out})",
          c_code={"f32 approximate=tanh": "fusec_gelu_tanhf({0})", "f32": "fusec_gelu_erff({0})",
                  "f64 approximate=tanh": "fusec_gelu_tanh({0})", "f64": "fusec_gelu_erf({0})"}),
    # -- selection and conversion ---------------------------------------------------------------------
    OpDef("where", EL, 3, infer_where, lambda a, attrs: np.where(a[0], a[1], a[2]), literal_context=(1, 2),
          numpy_code="where({0}, {1}, {2}, out={out})",
          c_code={"f32": "fusec_wheref({0}, {1}, {2})", "f64": "fusec_where({0}, {1}, {2})",
                  "i32": "fusec_where_i32({0}, {1}, {2})", "i64": "fusec_where_i64({0}, {1}, {2})",
                  "bool": "fusec_where_bool({0}, {1}, {2})"}),
    # float -> integer truncates toward zero with NumPy's result for NaN, inf and out-of-range values
    OpDef("cast", EL, 1, infer_cast, lambda a, attrs: a[0].astype(attrs["dtype"].numpy),
          attrs=(AttrSpec("dtype", "dtype"),), numpy_code="np.copyto({out}, {0}, casting='unsafe')",
          c_code={"bool": "({0} != 0)", "* from=same": "{0}", "i32 from=float": "fusec_f2i32({0})",
                  "i64 from=float": "fusec_f2i64({0})", "*": "({ctype})({0})"}),
)  # fmt: skip
