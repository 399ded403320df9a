"""Rows of the op table: layout and broadcast ops, matmul, and the graph leaves.

Layout ops move elements without computing: inside a fused kernel they become index maps
(fusec/loops/lower.py), so they have no backend spelling and cost no flops. Matmul is opaque: a
kernel of its own with an elementwise epilogue. The pseudo-ops `input` and `const` (kind `leaf`) are
the graph's leaves; constants are inlined into every kernel that uses them.
"""

from __future__ import annotations

import numpy as np

from fusec.ir.dtypes import BOOL, I32, TensorType, normalize_axis
from fusec.ir.ops_registry import AttrSpec, OpDef
from fusec.ir.ops_rules import (
    infer_broadcast_to,
    infer_concat,
    infer_const,
    infer_expand_dims,
    infer_iota,
    infer_matmul,
    infer_reshape,
    infer_slice,
    infer_squeeze,
    infer_transpose,
    resolve_reshape,
    squeeze_axes,
    transpose_perm,
)


def _np_slice(a: list[np.ndarray], attrs: dict) -> np.ndarray:
    x = a[0]
    axis = normalize_axis(attrs["axis"], x.ndim)
    index = [slice(None)] * x.ndim
    index[axis] = slice(attrs["start"], attrs["stop"], attrs["step"])
    return x[tuple(index)]


def _np_iota(a: list[np.ndarray], attrs: dict) -> np.ndarray:
    shape = attrs["shape"]
    axis = normalize_axis(attrs["axis"], len(shape))
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.broadcast_to(np.arange(shape[axis]).reshape(view), shape)


def _np_squeeze(a: list[np.ndarray], attrs: dict) -> np.ndarray:
    return np.squeeze(a[0], axis=squeeze_axes(attrs, TensorType(BOOL, a[0].shape)))


_SLICE_ATTRS = (
    AttrSpec("axis", "int", 0),
    AttrSpec("start", "int", 0),
    AttrSpec("stop", "int", 2**62),
    AttrSpec("step", "int", 1),
)

ROWS = (
    OpDef("transpose", "layout", 1, infer_transpose,
          lambda a, attrs: np.transpose(a[0], transpose_perm(attrs, a[0].ndim)),
          attrs=(AttrSpec("perm", "axes", None),), flops=0),
    OpDef("reshape", "layout", 1, infer_reshape,
          lambda a, attrs: np.reshape(a[0], resolve_reshape(attrs["shape"], a[0].size)),
          attrs=(AttrSpec("shape", "shape"),), flops=0),
    OpDef("broadcast_to", "broadcast", 1, infer_broadcast_to, lambda a, attrs: np.broadcast_to(a[0], attrs["shape"]),
          attrs=(AttrSpec("shape", "shape"),), flops=0),
    OpDef("expand_dims", "layout", 1, infer_expand_dims, lambda a, attrs: np.expand_dims(a[0], attrs["axis"]),
          attrs=(AttrSpec("axis", "int"),), flops=0),
    OpDef("squeeze", "layout", 1, infer_squeeze, _np_squeeze, attrs=(AttrSpec("axis", "axes", None),), flops=0),
    OpDef("slice", "layout", 1, infer_slice, _np_slice, attrs=_SLICE_ATTRS, flops=0),
    OpDef("concat", "layout", None, infer_concat, lambda a, attrs: np.concatenate(a, axis=attrs["axis"]),
          attrs=(AttrSpec("axis", "int", 0),), flops=0),
    # flops per multiply-add of the inner dimension (the cost model charges 2*K per output element)
    OpDef("matmul", "opaque", 2, infer_matmul, lambda a, attrs: np.matmul(a[0], a[1]), infix="@", flops=2,
          families=("computes_in_result_dtype",)),
    OpDef("iota", "broadcast", 0, infer_iota, _np_iota,
          attrs=(AttrSpec("shape", "shape"), AttrSpec("axis", "int", 0), AttrSpec("dtype", "dtype", I32)), flops=0),
    OpDef("input", "leaf", 0, lambda ts, attrs: None, None, flops=0),
    OpDef("const", "leaf", 0, infer_const, lambda a, attrs: np.asarray(attrs["value"], dtype=attrs["dtype"].numpy),
          attrs=(AttrSpec("value", "scalar"), AttrSpec("dtype", "dtype")), flops=0),
)  # fmt: skip
