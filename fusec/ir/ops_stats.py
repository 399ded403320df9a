"""Rows of the op table: argmax, argmin and var, composites of the primitive reductions.

argmax(x, axis) is min over the axis of where(x == max(x) or x is NaN, index, n): the first
occurrence of the maximum, or of the first NaN (NumPy's rule: NaN wins; `last=true` takes the last
one, as ONNX's select_last_index); the index counts from an
`iota`, and over several axes (axis=None) it is the flat row-major index. var is NumPy's two-pass
formula, sum((x - mean(x))^2) / (n - ddof). Both expansions are their references, operation for
operation, so both backends compile them as fused reductions.
"""

from __future__ import annotations

import math

import numpy as np

from fusec.errors import FusecTypeError
from fusec.ir.dtypes import I64, TensorType
from fusec.ir.ops_reduce import reference_mean, reference_sum
from fusec.ir.ops_registry import AttrSpec, OpDef
from fusec.ir.ops_rules import need_float, reduce_axes, reduce_rule


def _arg_rule(name: str):
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        t = ts[0]
        if isinstance(attrs["axis"], tuple):
            raise FusecTypeError(f"{name} takes one axis or none (all axes), got {list(attrs['axis'])}")
        axes = reduce_axes(attrs["axis"], t.rank)
        for i in axes:
            if t.shape[i] == 0:
                raise FusecTypeError(f"{name} over an empty axis {i} has no answer")
        if attrs["keepdims"]:
            shape = tuple(1 if i in axes else d for i, d in enumerate(t.shape))
        else:
            shape = tuple(d for i, d in enumerate(t.shape) if i not in axes)
        return TensorType(I64, shape)

    return infer


def _np_arg(fn):
    def run(a: list[np.ndarray], attrs: dict) -> np.ndarray:
        x, axis, keepdims = a[0], attrs["axis"], attrs["keepdims"]
        if not attrs["last"]:
            return np.asarray(fn(x, axis=axis, keepdims=keepdims), dtype=np.int64)
        # the last occurrence: the first one in the reversed order (axis=None reverses the flat order)
        first = fn(np.flip(x, axis=axis), axis=axis, keepdims=keepdims)
        return np.asarray(_count(x.shape, axis) - 1 - first, dtype=np.int64)

    return run


def _expand_arg(which: str):
    def expand(g, args, attrs):
        (x,) = args
        t = g.type_of(x)
        axes = reduce_axes(attrs["axis"], t.rank)
        best = g.add(which, x, axis=attrs["axis"], keepdims=True)
        hit = g.add("eq", x, best)
        if t.dtype.is_float:  # NaN wins, as in NumPy: where the extreme is NaN, x == best never holds
            hit = g.add("logical_or", hit, g.add("ne", x, x))
        index, stride = None, 1
        for axis in reversed(axes):  # the row-major flat index over the reduced axes
            step = g.add("iota", shape=list(t.shape), axis=axis, dtype=I64)
            if stride != 1:
                step = g.add("mul", step, stride)
            index = step if index is None else g.add("add", index, step)
            stride *= t.shape[axis]
        if attrs["last"]:  # the largest index that hits; -1 is below every index
            chosen = g.add("where", hit, index, -1)
            return g.add("max", chosen, axis=attrs["axis"], keepdims=attrs["keepdims"])
        chosen = g.add("where", hit, index, stride)  # stride is now the count, past every index
        return g.add("min", chosen, axis=attrs["axis"], keepdims=attrs["keepdims"])

    return expand


def _var_rule(ts: list[TensorType], attrs: dict) -> TensorType:
    need_float("var", ts[0])
    if attrs["ddof"] < 0:
        raise FusecTypeError(f"var's ddof must not be negative, got {attrs['ddof']}")
    return reduce_rule("var")(ts, attrs)


def _count(shape, axis) -> int:
    return math.prod(shape[i] for i in reduce_axes(axis, len(shape)))


def _np_var(a: list[np.ndarray], attrs: dict) -> np.ndarray:
    x = a[0]
    d = x - reference_mean(x, attrs["axis"], True)
    s = reference_sum(d * d, attrs["axis"], attrs["keepdims"])
    return np.true_divide(s, x.dtype.type(_count(x.shape, attrs["axis"]) - attrs["ddof"]))


def _expand_var(g, args, attrs):
    (x,) = args
    axis = attrs["axis"]
    d = g.add("sub", x, g.add("mean", x, axis=axis, keepdims=True))
    s = g.add("sum", g.add("mul", d, d), axis=axis, keepdims=attrs["keepdims"])
    return g.add("div", s, float(_count(g.type_of(x).shape, axis) - attrs["ddof"]))


_AXIS_KEEP = (AttrSpec("axis", "axes", None), AttrSpec("keepdims", "bool", False))

# last=true: the last occurrence instead of the first (ONNX's select_last_index)
_ARG_ATTRS = _AXIS_KEEP + (AttrSpec("last", "bool", False),)

ROWS = (
    OpDef("argmax", "reduce", 1, _arg_rule("argmax"), _np_arg(np.argmax), attrs=_ARG_ATTRS,
          expand=_expand_arg("max"), flops=4),
    OpDef("argmin", "reduce", 1, _arg_rule("argmin"), _np_arg(np.argmin), attrs=_ARG_ATTRS,
          expand=_expand_arg("min"), flops=4),
    OpDef("var", "reduce", 1, _var_rule, _np_var, attrs=_AXIS_KEEP + (AttrSpec("ddof", "int", 0),),
          expand=_expand_var, flops=5),
)  # fmt: skip


