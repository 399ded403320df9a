"""The op table: one row per op.

Each row says everything the rest of the compiler needs to know about an op:

* `kind`: elementwise, broadcast, reduce, layout or opaque (the fusion planner reasons with these);
* `arity` and `attrs` (with defaults and validation);
* `infer`: the shape/dtype rule;
* `numpy`: the reference implementation the interpreter calls;
* `expand` (composites only): how the op decomposes into primitives;
* `flops`: a rough count of floating-point operations per output element, for the cost model.

Graph leaves are the pseudo-ops `input` and `const` (kind `leaf`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fusec.errors import FusecTypeError
from fusec.ir.dtypes import (
    BOOL,
    F32,
    I32,
    I64,
    DType,
    TensorType,
    broadcast_shapes,
    dtype_named,
    normalize_axis,
    promote,
)
from fusec.ir.special import erf as _np_erf

KINDS = ("elementwise", "broadcast", "reduce", "layout", "opaque")
REQUIRED = object()  # marks an attribute without a default


@dataclass(frozen=True)
class AttrSpec:
    """One attribute: its name, its value type and its default.

    Value types: int, float, bool, str, dtype, ints (list of int), axes (None, int or list of int),
    shape (list of int, -1 allowed where the op says so), scalar (int, float or bool).
    """

    name: str
    type: str
    default: Any = REQUIRED
    choices: tuple | None = None


@dataclass(frozen=True)
class OpDef:
    name: str
    kind: str
    arity: int | None  # None: variadic (one or more)
    infer: Callable[[list[TensorType], dict], TensorType]
    numpy: Callable[[list[np.ndarray], dict], np.ndarray] | None
    attrs: tuple[AttrSpec, ...] = ()
    expand: Callable | None = None  # composites: (graph, args, attrs) -> name of the result
    flops: int = 1
    infix: str | None = None  # the operator spelling in .fg text, if any
    commutative: bool = False
    doc: str = ""
    literal_context: tuple[int, ...] | None = field(default=None)  # args whose dtype a literal adopts

    @property
    def is_composite(self) -> bool:
        return self.expand is not None


OPS: dict[str, OpDef] = {}


def _register(op: OpDef) -> OpDef:
    assert op.kind in KINDS + ("leaf",), op.kind
    OPS[op.name] = op
    return op


def op_named(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, OPS.keys(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise FusecTypeError(f"unknown op '{name}'{hint}") from None


# --------------------------------------------------------------------------------------------
# attribute validation


def _check_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _validate_attr(op: str, spec: AttrSpec, value: Any) -> Any:
    def bad(expected: str) -> FusecTypeError:
        return FusecTypeError(f"attribute '{spec.name}' of {op} must be {expected}, got {value!r}")

    t = spec.type
    if t == "int":
        if not _check_int(value):
            raise bad("an integer")
        value = int(value)
    elif t == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise bad("a number")
        value = float(value)
    elif t == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
    elif t == "str":
        if not isinstance(value, str):
            raise bad("a string")
    elif t == "dtype":
        if isinstance(value, DType):
            pass
        elif isinstance(value, str):
            value = dtype_named(value)
        else:
            raise bad("a dtype such as f32")
    elif t in ("ints", "shape"):
        if not isinstance(value, (list, tuple)) or not all(_check_int(v) for v in value):
            raise bad("a list of integers")
        value = tuple(int(v) for v in value)
    elif t == "axes":
        if value is None:
            pass
        elif _check_int(value):
            value = int(value)
        elif isinstance(value, (list, tuple)) and all(_check_int(v) for v in value):
            value = tuple(int(v) for v in value)
        else:
            raise bad("an integer or a list of integers")
    elif t == "scalar":
        if not isinstance(value, (bool, int, float, np.number)):
            raise bad("a number")
    else:  # pragma: no cover - table error
        raise AssertionError(t)
    if spec.choices is not None and value not in spec.choices:
        raise FusecTypeError(
            f"attribute '{spec.name}' of {op} must be one of {', '.join(map(repr, spec.choices))}, got {value!r}"
        )
    return value


def check_attrs(op: OpDef, given: dict[str, Any]) -> dict[str, Any]:
    """Validate attributes against the op's table row and fill in defaults."""
    known = {s.name: s for s in op.attrs}
    for name in given:
        if name not in known:
            allowed = ", ".join(known) or "none"
            raise FusecTypeError(f"{op.name} has no attribute '{name}' (attributes: {allowed})")
    out = {}
    for spec in op.attrs:
        if spec.name in given:
            out[spec.name] = _validate_attr(op.name, spec, given[spec.name])
        elif spec.default is REQUIRED:
            raise FusecTypeError(f"{op.name} needs the attribute '{spec.name}'")
        else:
            out[spec.name] = spec.default
    return out


def check_arity(op: OpDef, n: int) -> None:
    if op.arity is None:
        if n < 1:
            raise FusecTypeError(f"{op.name} takes at least one operand, got {n}")
    elif n != op.arity:
        s = "" if op.arity == 1 else "s"
        raise FusecTypeError(f"{op.name} takes {op.arity} operand{s}, got {n}")


def literal_context_dtype(op: OpDef, arg_dtypes: list[DType | None]) -> DType | None:
    """The dtype a weak literal operand of `op` adopts: the promotion of the op's tensor operands."""
    positions = op.literal_context if op.literal_context is not None else range(len(arg_dtypes))
    ctx = None
    for i in positions:
        if i < len(arg_dtypes) and arg_dtypes[i] is not None:
            ctx = arg_dtypes[i] if ctx is None else promote(ctx, arg_dtypes[i])
    return ctx


# --------------------------------------------------------------------------------------------
# shape and dtype rules


def _need_float(op: str, t: TensorType) -> None:
    if not t.dtype.is_float:
        raise FusecTypeError(f"{op} needs a float tensor, got {t.dtype}; cast it first")


def _need_numeric(op: str, t: TensorType) -> None:
    if t.dtype == BOOL:
        raise FusecTypeError(f"{op} needs a numeric tensor, got bool; cast it first")


def _binary(result: str) -> Callable:
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


def _unary_float(name: str) -> Callable:
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        _need_float(name, ts[0])
        return ts[0]

    return infer


def _unary_numeric(name: str) -> Callable:
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        _need_numeric(name, ts[0])
        return ts[0]

    return infer


def _infer_where(ts: list[TensorType], attrs: dict) -> TensorType:
    if ts[0].dtype != BOOL:
        raise FusecTypeError(f"where needs a bool condition, got {ts[0].dtype}")
    return TensorType(promote(ts[1].dtype, ts[2].dtype), broadcast_shapes(ts[0].shape, ts[1].shape, ts[2].shape))


def _infer_cast(ts: list[TensorType], attrs: dict) -> TensorType:
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


def _reduce(name: str) -> Callable:
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
        if name in ("max", "min"):
            for i in axes:
                if t.shape[i] == 0:
                    raise FusecTypeError(f"{name} over an empty axis {i} has no identity")
        return TensorType(dt, shape)

    return infer


def _infer_matmul(ts: list[TensorType], attrs: dict) -> TensorType:
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


def _infer_transpose(ts: list[TensorType], attrs: dict) -> TensorType:
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


def _infer_reshape(ts: list[TensorType], attrs: dict) -> TensorType:
    return TensorType(ts[0].dtype, resolve_reshape(attrs["shape"], ts[0].size))


def _infer_broadcast_to(ts: list[TensorType], attrs: dict) -> TensorType:
    target = attrs["shape"]
    t = ts[0]
    if len(target) < t.rank or broadcast_shapes(t.shape, target) != tuple(target):
        raise FusecTypeError(f"cannot broadcast {t} to shape {list(target)}")
    return TensorType(t.dtype, tuple(target))


def _infer_expand_dims(ts: list[TensorType], attrs: dict) -> TensorType:
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


def _infer_squeeze(ts: list[TensorType], attrs: dict) -> TensorType:
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


def _infer_slice(ts: list[TensorType], attrs: dict) -> TensorType:
    t = ts[0]
    if t.rank == 0:
        raise FusecTypeError("slice needs a tensor of rank 1 or more")
    axis, start, stop, step = slice_bounds(attrs, t)
    n = len(range(start, stop, step))
    return TensorType(t.dtype, t.shape[:axis] + (n,) + t.shape[axis + 1 :])


def _infer_concat(ts: list[TensorType], attrs: dict) -> TensorType:
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


def _infer_iota(ts: list[TensorType], attrs: dict) -> TensorType:
    shape = attrs["shape"]
    if any(d < 0 for d in shape):
        raise FusecTypeError(f"iota shape must be non-negative, got {list(shape)}")
    normalize_axis(attrs["axis"], len(shape))
    return TensorType(attrs["dtype"], tuple(shape))


def _infer_const(ts: list[TensorType], attrs: dict) -> TensorType:
    return TensorType(attrs["dtype"], ())


def _infer_last_axis_norm(name: str, n_params: int) -> Callable:
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        x = ts[0]
        _need_float(name, x)
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


def _infer_softmax(name: str) -> Callable:
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        _need_float(name, ts[0])
        if ts[0].rank == 0:
            raise FusecTypeError(f"{name} needs a tensor of rank 1 or more")
        normalize_axis(attrs["axis"], ts[0].rank)
        return ts[0]

    return infer


def _infer_logsumexp(ts: list[TensorType], attrs: dict) -> TensorType:
    _need_float("logsumexp", ts[0])
    return _reduce("logsumexp")(ts, attrs)


# --------------------------------------------------------------------------------------------
# NumPy reference implementations. They receive the operand arrays and the attributes; the
# interpreter casts each result to the node's declared dtype.

_SQRT_2_OVER_PI = 0.7978845608028654
_INV_SQRT2 = 0.7071067811865476


def _np_gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(x.dtype.type(_SQRT_2_OVER_PI) * (x + x.dtype.type(0.044715) * x * x * x)))
    return 0.5 * x * (1.0 + _np_erf(x * x.dtype.type(_INV_SQRT2)))


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    one = x.dtype.type(1)
    return one / (one + np.exp(-x))


def _np_reduce(fn: Callable) -> Callable:
    def run(a: list[np.ndarray], attrs: dict) -> np.ndarray:
        x = a[0]
        return fn(x, axis=reduce_axes(attrs["axis"], x.ndim), keepdims=attrs["keepdims"])

    return run


def _np_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _np_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    d = x - np.max(x, axis=axis, keepdims=True)
    return d - np.log(np.sum(np.exp(d), axis=axis, keepdims=True))


def _np_logsumexp(x: np.ndarray, attrs: dict) -> np.ndarray:
    axes = reduce_axes(attrs["axis"], x.ndim)
    m = np.max(x, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype)  # an all -inf row gives -inf, not nan
    r = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return r if attrs["keepdims"] else np.squeeze(r, axis=axes)


def _np_layernorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = np.mean(x, axis=-1, keepdims=True)
    d = x - mean
    var = np.mean(d * d, axis=-1, keepdims=True)
    return d * (x.dtype.type(1) / np.sqrt(var + x.dtype.type(eps))) * gamma + beta


def _np_rmsnorm(x: np.ndarray, gamma: np.ndarray, eps: float) -> np.ndarray:
    ms = np.mean(x * x, axis=-1, keepdims=True)
    return x * (x.dtype.type(1) / np.sqrt(ms + x.dtype.type(eps))) * gamma


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


def _np_pow(a: list[np.ndarray], attrs: dict) -> np.ndarray:
    x, y = a
    if np.issubdtype(np.result_type(x, y), np.integer):
        # NumPy refuses negative integer powers; define them as C does: truncation toward zero.
        with np.errstate(all="ignore"):
            return np.trunc(np.power(x.astype(np.float64), y.astype(np.float64)))
    return np.power(x, y)


# --------------------------------------------------------------------------------------------
# composite expansions: written against the Graph builder API, g.add(op, *args, **attrs)


def _expand_softmax(g, args, attrs):
    (x,) = args
    axis = attrs["axis"]
    m = g.add("max", x, axis=axis, keepdims=True)
    e = g.add("exp", g.add("sub", x, m))
    return g.add("div", e, g.add("sum", e, axis=axis, keepdims=True))


def _expand_log_softmax(g, args, attrs):
    (x,) = args
    axis = attrs["axis"]
    d = g.add("sub", x, g.add("max", x, axis=axis, keepdims=True))
    lse = g.add("log", g.add("sum", g.add("exp", d), axis=axis, keepdims=True))
    return g.add("sub", d, lse)


def _expand_logsumexp(g, args, attrs):
    (x,) = args
    axis, keepdims = attrs["axis"], attrs["keepdims"]
    m = g.add("max", x, axis=axis, keepdims=True)
    # a finite max stays; an infinite or nan max becomes 0, so an all -inf row gives -inf, not nan
    safe = g.add("where", g.add("lt", g.add("abs", m), float("inf")), m, 0.0)
    r = g.add("add", g.add("log", g.add("sum", g.add("exp", g.add("sub", x, safe)), axis=axis, keepdims=True)), safe)
    if not keepdims:
        r = g.add("squeeze", r, axis=axis)
    return r


def _expand_layernorm(g, args, attrs):
    x, gamma, beta = args
    mean = g.add("mean", x, axis=-1, keepdims=True)
    d = g.add("sub", x, mean)
    var = g.add("mean", g.add("mul", d, d), axis=-1, keepdims=True)
    inv = g.add("rsqrt", g.add("add", var, attrs["eps"]))
    return g.add("add", g.add("mul", g.add("mul", d, inv), gamma), beta)


def _expand_rmsnorm(g, args, attrs):
    x, gamma = args
    ms = g.add("mean", g.add("mul", x, x), axis=-1, keepdims=True)
    inv = g.add("rsqrt", g.add("add", ms, attrs["eps"]))
    return g.add("mul", g.add("mul", x, inv), gamma)


# --------------------------------------------------------------------------------------------
# the table

_AXIS_KEEP = (AttrSpec("axis", "axes", None), AttrSpec("keepdims", "bool", False))


def _np_binary(fn: Callable) -> Callable:
    return lambda a, attrs: fn(a[0], a[1])


def _np_unary(fn: Callable) -> Callable:
    return lambda a, attrs: fn(a[0])


def _defs() -> None:
    el = "elementwise"
    binary = [
        ("add", np.add, "+", True, "promote", 1),
        ("sub", np.subtract, "-", False, "numeric", 1),
        ("mul", np.multiply, "*", True, "promote", 1),
        ("div", np.true_divide, "/", False, "float", 1),
        # not commutative in IEEE terms: np.maximum(0.0, -0.0) and np.maximum(-0.0, 0.0) differ
        ("maximum", np.maximum, None, False, "promote", 1),
        ("minimum", np.minimum, None, False, "promote", 1),
        ("eq", np.equal, "==", True, "bool", 1),
        ("ne", np.not_equal, "!=", True, "bool", 1),
        ("lt", np.less, "<", False, "bool", 1),
        ("le", np.less_equal, "<=", False, "bool", 1),
        ("gt", np.greater, ">", False, "bool", 1),
        ("ge", np.greater_equal, ">=", False, "bool", 1),
    ]
    for name, fn, infix, comm, result, flops in binary:
        _register(OpDef(name, el, 2, _binary(result), _np_binary(fn), infix=infix, commutative=comm, flops=flops))
    _register(OpDef("pow", el, 2, _binary("promote"), _np_pow, infix="**", flops=10))

    unary_float = [
        ("exp", np.exp, 10),
        ("log", np.log, 10),
        ("sqrt", np.sqrt, 4),
        ("rsqrt", lambda x: x.dtype.type(1) / np.sqrt(x), 5),
        ("reciprocal", lambda x: x.dtype.type(1) / x, 4),
        ("tanh", np.tanh, 12),
        ("sigmoid", _np_sigmoid, 12),
        ("erf", _np_erf, 14),
    ]
    for name, fn, flops in unary_float:
        _register(OpDef(name, el, 1, _unary_float(name), _np_unary(fn), flops=flops))
    _register(OpDef("neg", el, 1, _unary_numeric("neg"), _np_unary(np.negative), infix="-"))
    _register(OpDef("abs", el, 1, _unary_numeric("abs"), _np_unary(np.abs)))
    _register(OpDef("relu", el, 1, _unary_numeric("relu"), _np_unary(lambda x: np.maximum(x, x.dtype.type(0)))))
    _register(
        OpDef(
            "gelu",
            el,
            1,
            _unary_float("gelu"),
            lambda a, attrs: _np_gelu(a[0], attrs["approximate"]),
            attrs=(AttrSpec("approximate", "str", "none", ("none", "tanh")),),
            flops=20,
        )
    )
    _register(
        OpDef(
            "where",
            el,
            3,
            _infer_where,
            lambda a, attrs: np.where(a[0], a[1], a[2]),
            literal_context=(1, 2),
        )
    )
    _register(
        OpDef(
            "cast",
            el,
            1,
            _infer_cast,
            lambda a, attrs: a[0].astype(attrs["dtype"].numpy),
            attrs=(AttrSpec("dtype", "dtype"),),
        )
    )

    for name, fn in [("sum", np.sum), ("mean", np.mean), ("max", np.max), ("min", np.min), ("prod", np.prod)]:
        _register(OpDef(name, "reduce", 1, _reduce(name), _np_reduce(fn), attrs=_AXIS_KEEP))

    _register(
        OpDef(
            "softmax",
            "reduce",
            1,
            _infer_softmax("softmax"),
            lambda a, attrs: _np_softmax(a[0], attrs["axis"]),
            attrs=(AttrSpec("axis", "int", -1),),
            expand=_expand_softmax,
            flops=14,
        )
    )
    _register(
        OpDef(
            "log_softmax",
            "reduce",
            1,
            _infer_softmax("log_softmax"),
            lambda a, attrs: _np_log_softmax(a[0], attrs["axis"]),
            attrs=(AttrSpec("axis", "int", -1),),
            expand=_expand_log_softmax,
            flops=14,
        )
    )
    _register(
        OpDef(
            "logsumexp",
            "reduce",
            1,
            _infer_logsumexp,
            lambda a, attrs: _np_logsumexp(a[0], attrs),
            attrs=_AXIS_KEEP,
            expand=_expand_logsumexp,
            flops=14,
        )
    )
    _register(
        OpDef(
            "layernorm",
            "reduce",
            3,
            _infer_last_axis_norm("layernorm", 2),
            lambda a, attrs: _np_layernorm(a[0], a[1], a[2], attrs["eps"]),
            attrs=(AttrSpec("eps", "float", 1e-5),),
            expand=_expand_layernorm,
            flops=10,
        )
    )
    _register(
        OpDef(
            "rmsnorm",
            "reduce",
            2,
            _infer_last_axis_norm("rmsnorm", 1),
            lambda a, attrs: _np_rmsnorm(a[0], a[1], attrs["eps"]),
            attrs=(AttrSpec("eps", "float", 1e-6),),
            expand=_expand_rmsnorm,
            flops=8,
        )
    )

    _register(
        OpDef(
            "transpose",
            "layout",
            1,
            _infer_transpose,
            lambda a, attrs: np.transpose(a[0], transpose_perm(attrs, a[0].ndim)),
            attrs=(AttrSpec("perm", "axes", None),),
            flops=0,
        )
    )
    _register(
        OpDef(
            "reshape",
            "layout",
            1,
            _infer_reshape,
            lambda a, attrs: np.reshape(a[0], resolve_reshape(attrs["shape"], a[0].size)),
            attrs=(AttrSpec("shape", "shape"),),
            flops=0,
        )
    )
    _register(
        OpDef(
            "broadcast_to",
            "broadcast",
            1,
            _infer_broadcast_to,
            lambda a, attrs: np.broadcast_to(a[0], attrs["shape"]),
            attrs=(AttrSpec("shape", "shape"),),
            flops=0,
        )
    )
    _register(
        OpDef(
            "expand_dims",
            "layout",
            1,
            _infer_expand_dims,
            lambda a, attrs: np.expand_dims(a[0], attrs["axis"]),
            attrs=(AttrSpec("axis", "int"),),
            flops=0,
        )
    )
    _register(
        OpDef(
            "squeeze",
            "layout",
            1,
            _infer_squeeze,
            lambda a, attrs: np.squeeze(a[0], axis=squeeze_axes(attrs, TensorType(BOOL, a[0].shape))),
            attrs=(AttrSpec("axis", "axes", None),),
            flops=0,
        )
    )
    _register(
        OpDef(
            "slice",
            "layout",
            1,
            _infer_slice,
            _np_slice,
            attrs=(
                AttrSpec("axis", "int", 0),
                AttrSpec("start", "int", 0),
                AttrSpec("stop", "int", 2**62),
                AttrSpec("step", "int", 1),
            ),
            flops=0,
        )
    )
    _register(
        OpDef(
            "concat",
            "layout",
            None,
            _infer_concat,
            lambda a, attrs: np.concatenate(a, axis=attrs["axis"]),
            attrs=(AttrSpec("axis", "int", 0),),
            flops=0,
        )
    )
    _register(OpDef("matmul", "opaque", 2, _infer_matmul, _np_binary(np.matmul), infix="@", flops=2))
    _register(
        OpDef(
            "iota",
            "broadcast",
            0,
            _infer_iota,
            _np_iota,
            attrs=(AttrSpec("shape", "shape"), AttrSpec("axis", "int", 0), AttrSpec("dtype", "dtype", I32)),
            flops=0,
        )
    )
    _register(OpDef("input", "leaf", 0, lambda ts, attrs: None, None, flops=0))
    _register(
        OpDef(
            "const",
            "leaf",
            0,
            _infer_const,
            lambda a, attrs: np.asarray(attrs["value"], dtype=attrs["dtype"].numpy),
            attrs=(AttrSpec("value", "scalar"), AttrSpec("dtype", "dtype")),
            flops=0,
        )
    )


_defs()

# Ops spelled with infix operators in .fg text, by their symbol.
BINARY_INFIX = {op.infix: op.name for op in OPS.values() if op.infix and op.arity == 2}
