"""Rows of the op table: logical operations and the NaN/inf tests. All give bool.

Operands of any dtype count as true when nonzero (NumPy's np.logical_and etc.); the lowering
converts them to bool first, so the kernels only ever combine bools. isnan and isinf are composites:
`x != x` and `|x| == inf`, exactly.
"""

from __future__ import annotations

import numpy as np

from fusec.ir.dtypes import BOOL, TensorType, broadcast_shapes
from fusec.ir.ops_registry import OpDef
from fusec.ir.ops_rules import need_float

EL = "elementwise"


def _logical_rule(ts: list[TensorType], attrs: dict) -> TensorType:
    return TensorType(BOOL, broadcast_shapes(*(t.shape for t in ts)))


def _float_test_rule(name: str):
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        need_float(name, ts[0])
        return TensorType(BOOL, ts[0].shape)

    return infer


def _logical(name: str, fn, c_op: str) -> OpDef:
    return OpDef(
        name, EL, 2, _logical_rule, lambda a, attrs: fn(a[0], a[1]), families=("commutative", "logical"),
        numpy_code=f"np.{name}({{0}}, {{1}}, out={{out}})", c_code=f"({{0}} {c_op} {{1}})",
    )  # fmt: skip


def _expand_isnan(g, args, attrs):
    (x,) = args
    return g.add("ne", x, x)


def _expand_isinf(g, args, attrs):
    (x,) = args
    return g.add("eq", g.add("abs", x), float("inf"))


ROWS = (
    # bools are stored as 0 and 1, so the bitwise operators are the logical ones (and vectorize)
    _logical("logical_and", np.logical_and, "&"),
    _logical("logical_or", np.logical_or, "|"),
    _logical("logical_xor", np.logical_xor, "^"),
    OpDef("logical_not", EL, 1, _logical_rule, lambda a, attrs: np.logical_not(a[0]), families=("logical",),
          numpy_code="np.logical_not({0}, out={out})", c_code="(!{0})"),
    OpDef("isnan", EL, 1, _float_test_rule("isnan"), lambda a, attrs: np.isnan(a[0]), expand=_expand_isnan,
          families=("float_math",)),
    OpDef("isinf", EL, 1, _float_test_rule("isinf"), lambda a, attrs: np.isinf(a[0]), expand=_expand_isinf,
          flops=2, families=("float_math",)),
)  # fmt: skip
