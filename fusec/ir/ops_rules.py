"""Shape and dtype rules of the op table, and the helpers that interpret layout attributes.

A rule takes the operand types and the (validated) attributes and returns the result type, or raises
FusecTypeError with a message for the user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fusec.errors import FusecTypeError
from fusec.ir.dtypes import BOOL, F32, I64, TensorType, broadcast_shapes, normalize_axis, promote


def need_float(op: str, t: TensorType) -> None:
    if not t.dtype.is_float:
        raise FusecTypeError(f"{op} needs a float tensor, got {t.dtype}; cast it first")


def need_numeric(op: str, t: TensorType) -> None:
    if t.dtype == BOOL:
        raise FusecTypeError(f"{op} needs a numeric tensor, got bool; cast it first")


def binary_rule(result: str) -> Callable:
    """Broadcasting binary op. result: 'promote', 'bool' (comparisons), 'float' (true division) or
    'numeric' (promote, but not bool with bool: NumPy has no boolean subtract)."""

    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        if result == "numeric" and ts[0].dtype == BOOL and ts[1].dtype == BOOL:
            raise FusecTypeError("cannot subtract bool from bool; cast the operands first")
        shape = broadcast_shapes(ts[0].shape, ts[1].shape)
        if result == "bool":
            return TensorType(BOOL, shape)
        dt = promote(ts[0].dtype, ts[1].dtype)
        if result == "float" and not dt.is_float:
            dt = F32
        return TensorType(dt, shape)

    return infer


def unary_float_rule(name: str) -> Callable:
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        need_float(name, ts[0])
        return ts[0]

    return infer


def unary_numeric_rule(name: str) -> Callable:
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        need_numeric(name, ts[0])
        return ts[0]

    return infer


def infer_where(ts: list[TensorType], attrs: dict) -> TensorType:
    if ts[0].dtype != BOOL:
        raise FusecTypeError(f"where needs a bool condition, got {ts[0].dtype}")
    return TensorType(promote(ts[1].dtype, ts[2].dtype), broadcast_shapes(ts[0].shape, ts[1].shape, ts[2].shape))


def infer_cast(ts: list[TensorType], attrs: dict) -> TensorType:
    return TensorType(attrs["dtype"], ts[0].shape)


def reduce_axes(axis: Any, rank: int) -> tuple[int, ...]:
    """Normalised, sorted reduction axes. None means all axes."""
    if axis is None:
        return tuple(range(rank))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    norm = tuple(sorted({normalize_axis(a, rank) for a in axes}))
    if len(norm) != len(axes):
        raise FusecTypeError(f"repeated axis in {axis!r}")
    return norm


def refuse_empty_axes(name: str, t: TensorType, axes: tuple[int, ...]) -> None:
    """A max (and the ops built on one: softmax, log_softmax, logsumexp) over an empty axis has no
    value: NumPy raises, so fusec refuses it when the graph is built (with the op's location)."""
    for i in axes:
        if t.shape[i] == 0:
            why = "has no identity" if name in ("max", "min") else "is undefined (it takes a max over the axis)"
            raise FusecTypeError(f"{name} over an empty axis {i} {why}")


def reduce_rule(name: str) -> Callable:
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        t = ts[0]
        axes = reduce_axes(attrs["axis"], t.rank)
        if attrs["keepdims"]:
            shape = tuple(1 if i in axes else d for i, d in enumerate(t.shape))
        else:
            shape = tuple(d for i, d in enumerate(t.shape) if i not in axes)
        dt = t.dtype
        if name in ("sum", "prod") and dt == BOOL:
            dt = I64
        if name == "mean" and not dt.is_float:
            dt = F32
        if name in ("max", "min", "logsumexp"):
            refuse_empty_axes(name, t, axes)
        return TensorType(dt, shape)

    return infer


def infer_matmul(ts: list[TensorType], attrs: dict) -> TensorType:
    a, b = ts
    if a.rank == 0 or b.rank == 0:
        raise FusecTypeError("matmul needs operands of rank 1 or more (use * for scalars)")
    if a.dtype == BOOL or b.dtype == BOOL:
        raise FusecTypeError("matmul needs numeric operands, got bool")
    ash = (1,) + a.shape if a.rank == 1 else a.shape
    bsh = b.shape + (1,) if b.rank == 1 else b.shape
    if ash[-1] != bsh[-2]:
        raise FusecTypeError(f"matmul inner dimensions differ: {a} @ {b} ({ash[-1]} vs {bsh[-2]})")
    batch = broadcast_shapes(ash[:-2], bsh[:-2])
    shape = batch + (ash[-2], bsh[-1])
    if a.rank == 1:
        shape = shape[:-2] + shape[-1:]
    if b.rank == 1:
        shape = shape[:-1]
    return TensorType(promote(a.dtype, b.dtype), shape)


def infer_transpose(ts: list[TensorType], attrs: dict) -> TensorType:
    t = ts[0]
    perm = attrs["perm"]
    if perm is None:
        perm = tuple(reversed(range(t.rank)))
    if sorted(perm) != list(range(t.rank)):
        raise FusecTypeError(f"transpose perm {list(perm)} is not a permutation of the {t.rank} axes")
    return TensorType(t.dtype, tuple(t.shape[p] for p in perm))


def transpose_perm(attrs: dict, rank: int) -> tuple[int, ...]:
    return tuple(attrs["perm"]) if attrs["perm"] is not None else tuple(reversed(range(rank)))


def resolve_reshape(shape: tuple[int, ...], size: int) -> tuple[int, ...]:
    if sum(1 for d in shape if d == -1) > 1:
        raise FusecTypeError("reshape may have at most one -1 dimension")
    if any(d < -1 for d in shape):
        raise FusecTypeError(f"reshape dimensions must be >= 0 (or one -1), got {list(shape)}")
    known = 1
    for d in shape:
        if d != -1:
            known *= d
    if -1 in shape:
        if known == 0 or size % known:
            raise FusecTypeError(f"cannot reshape {size} elements into {list(shape)}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    elif known != size:
        raise FusecTypeError(f"cannot reshape {size} elements into {list(shape)}")
    return shape


def infer_reshape(ts: list[TensorType], attrs: dict) -> TensorType:
    return TensorType(ts[0].dtype, resolve_reshape(attrs["shape"], ts[0].size))


def infer_broadcast_to(ts: list[TensorType], attrs: dict) -> TensorType:
    target = attrs["shape"]
    t = ts[0]
    if len(target) < t.rank or broadcast_shapes(t.shape, target) != tuple(target):
        raise FusecTypeError(f"cannot broadcast {t} to shape {list(target)}")
    return TensorType(t.dtype, tuple(target))


def infer_expand_dims(ts: list[TensorType], attrs: dict) -> TensorType:
    t = ts[0]
    axis = normalize_axis(attrs["axis"], t.rank + 1)
    return TensorType(t.dtype, t.shape[:axis] + (1,) + t.shape[axis:])


def squeeze_axes(attrs: dict, t: TensorType) -> tuple[int, ...]:
    if attrs["axis"] is None:
        return tuple(i for i, d in enumerate(t.shape) if d == 1)
    axes = reduce_axes(attrs["axis"], t.rank)
    for a in axes:
        if t.shape[a] != 1:
            raise FusecTypeError(f"squeeze axis {a} has size {t.shape[a]}, not 1")
    return axes


def infer_squeeze(ts: list[TensorType], attrs: dict) -> TensorType:
    t = ts[0]
    axes = squeeze_axes(attrs, t)
    return TensorType(t.dtype, tuple(d for i, d in enumerate(t.shape) if i not in axes))


def slice_bounds(attrs: dict, t: TensorType) -> tuple[int, int, int, int]:
    """(axis, start, stop, step) after Python-style clamping of negative and large bounds."""
    axis = normalize_axis(attrs["axis"], t.rank)
    if attrs["step"] == 0:
        raise FusecTypeError("slice step must not be 0")
    start, stop, step = slice(attrs["start"], attrs["stop"], attrs["step"]).indices(t.shape[axis])
    return axis, start, stop, step


def infer_slice(ts: list[TensorType], attrs: dict) -> TensorType:
    t = ts[0]
    if t.rank == 0:
        raise FusecTypeError("slice needs a tensor of rank 1 or more")
    axis, start, stop, step = slice_bounds(attrs, t)
    n = len(range(start, stop, step))
    return TensorType(t.dtype, t.shape[:axis] + (n,) + t.shape[axis + 1 :])


def infer_concat(ts: list[TensorType], attrs: dict) -> TensorType:
    first = ts[0]
    if first.rank == 0:
        raise FusecTypeError("concat needs tensors of rank 1 or more")
    axis = normalize_axis(attrs["axis"], first.rank)
    dt = first.dtype
    total = 0
    for t in ts:
        if t.rank != first.rank or any(t.shape[i] != first.shape[i] for i in range(t.rank) if i != axis):
            raise FusecTypeError(f"concat operands must match except on axis {axis}: {first} vs {t}")
        dt = promote(dt, t.dtype)
        total += t.shape[axis]
    return TensorType(dt, first.shape[:axis] + (total,) + first.shape[axis + 1 :])


def infer_iota(ts: list[TensorType], attrs: dict) -> TensorType:
    shape = attrs["shape"]
    if any(d < 0 for d in shape):
        raise FusecTypeError(f"iota shape must be non-negative, got {list(shape)}")
    normalize_axis(attrs["axis"], len(shape))
    return TensorType(attrs["dtype"], tuple(shape))


def infer_const(ts: list[TensorType], attrs: dict) -> TensorType:
    return TensorType(attrs["dtype"], ())


def last_axis_norm_rule(name: str, n_params: int) -> Callable:
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        x = ts[0]
        need_float(name, x)
        if x.rank == 0:
            raise FusecTypeError(f"{name} needs a tensor of rank 1 or more")
        for p in ts[1 : 1 + n_params]:
            try:
                ok = broadcast_shapes(x.shape, p.shape) == x.shape
            except FusecTypeError:
                ok = False
            if not ok:
                raise FusecTypeError(f"{name} parameter {p} does not broadcast to its input {x}")
        return x

    return infer


def softmax_rule(name: str) -> Callable:
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        need_float(name, ts[0])
        if ts[0].rank == 0:
            raise FusecTypeError(f"{name} needs a tensor of rank 1 or more")
        refuse_empty_axes(name, ts[0], (normalize_axis(attrs["axis"], ts[0].rank),))
        return ts[0]

    return infer


def infer_logsumexp(ts: list[TensorType], attrs: dict) -> TensorType:
    need_float("logsumexp", ts[0])
    return reduce_rule("logsumexp")(ts, attrs)
