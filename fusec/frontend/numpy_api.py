"""NumPy on traced tensors: ufuncs (`np.exp(t)`), functions (`np.sum(t, axis=1)`) and indexing.

NumPy hands a call whose operands include a traced `Tensor` to `Tensor.__array_ufunc__` or
`Tensor.__array_function__`, which land here. Each NumPy name maps to one op of the table (or a
short composition of ops); a name with no op raises a FusecError that says which op is missing.
Ops that a later version of the table adds (sin, cos, ...) work as soon as their row exists.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from fusec.errors import FusecError
from fusec.frontend.tensor import NUMPY_HANDLERS, Tensor, has_op, to_dtype, tracer_of, user_location
from fusec.ir.dtypes import literal_dtype, normalize_axis

# NumPy ufunc name -> fusec op name (an op missing from the table is reported when used)
UFUNC_OPS = {
    "add": "add", "subtract": "sub", "multiply": "mul", "true_divide": "div", "divide": "div", "power": "pow",
    "negative": "neg", "absolute": "abs", "fabs": "abs", "exp": "exp", "log": "log", "sqrt": "sqrt",
    "tanh": "tanh", "maximum": "maximum", "minimum": "minimum", "equal": "eq", "not_equal": "ne", "less": "lt",
    "less_equal": "le", "greater": "gt", "greater_equal": "ge", "matmul": "matmul", "reciprocal": "reciprocal",
    "sin": "sin", "cos": "cos", "log1p": "log1p", "expm1": "expm1", "sign": "sign", "floor": "floor",
    "ceil": "ceil", "rint": "round", "logical_and": "logical_and", "logical_or": "logical_or",
    "logical_not": "logical_not", "logical_xor": "logical_xor", "isnan": "isnan", "isinf": "isinf",
}  # fmt: skip

# ufuncs that are a short composition of ops
UFUNC_COMPOSED: dict[str, Callable[..., Tensor]] = {
    "positive": lambda x: x,
    "square": lambda x: x * x,
    "log2": lambda x: np.log(x) * (1 / math.log(2)),
    "log10": lambda x: np.log(x) * (1 / math.log(10)),
    "exp2": lambda x: np.exp(x * math.log(2)),
    "floor_divide": lambda a, b: np.floor(np.true_divide(a, b)),
}

REDUCE_OPS = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min"}


def _missing(what: str) -> FusecError:
    return FusecError(f"{what} has no fusec op to trace it with (dir(fusec.ops) lists the ops)", user_location())


def _tracer(*values: Any):
    tracer = tracer_of(*values)
    assert tracer is not None, "NumPy dispatched to fusec without a traced operand"
    return tracer


def array_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Tensor:
    name = ufunc.__name__
    if kwargs.get("out") is not None:
        raise FusecError(f"np.{name}(..., out=...): a traced tensor cannot be written into", user_location())
    if method == "reduce":
        if name not in REDUCE_OPS:
            raise _missing(f"np.{name}.reduce")
        axis = kwargs.get("axis", 0)
        return _tracer(*inputs).apply(REDUCE_OPS[name], inputs[0], axis=axis, keepdims=kwargs.get("keepdims", False))
    if method != "__call__":
        raise _missing(f"np.{name}.{method}")
    unsupported = set(kwargs) - {"out"}
    if unsupported:
        raise FusecError(f"np.{name}: the arguments {sorted(unsupported)} are not supported while tracing",
                         user_location())
    if name in UFUNC_COMPOSED:
        return UFUNC_COMPOSED[name](*inputs)
    op = UFUNC_OPS.get(name)
    if op is None or not has_op(op):
        raise _missing(f"np.{name}")
    return _tracer(*inputs).apply(op, *inputs)


# --------------------------------------------------------------------------------------------
# NumPy functions: each takes NumPy's arguments and builds ops


def _reduction(op: str) -> Callable:
    def reduce(a, axis=None, dtype=None, out=None, keepdims=False, **unsupported):
        _no_extras(op, out, unsupported)
        result = _tracer(a).apply(op, a, axis=axis, keepdims=keepdims)
        return result if dtype is None else result.astype(dtype)

    return reduce


def _no_extras(name: str, out: Any, unsupported: dict) -> None:
    if out is not None:
        raise FusecError(f"np.{name}(..., out=...): a traced tensor cannot be written into", user_location())
    if unsupported:
        raise FusecError(f"np.{name}: the arguments {sorted(unsupported)} are not supported while tracing",
                         user_location())


def _as_tensor(tracer, value) -> Tensor:
    """A traced tensor for a Tensor, a NumPy array or a Python number (a constant of its own dtype)."""
    if isinstance(value, Tensor):
        return value
    name = tracer.operand(value)
    if not isinstance(name, str):
        name = tracer.graph.const(name, literal_dtype(name, None))
    return Tensor(tracer, name)


def _where(condition, x=None, y=None):
    if x is None or y is None:
        raise FusecError("np.where(condition) with one argument gives data-dependent indices, which cannot be traced",
                         user_location())
    return _tracer(condition, x, y).apply("where", condition, x, y)


def _concatenate(arrays, axis=0, out=None, **unsupported):
    _no_extras("concatenate", out, unsupported)
    tracer = _tracer(*arrays)
    if axis is None:
        return tracer.apply("concat", *[_as_tensor(tracer, a).reshape(-1) for a in arrays], axis=0)
    return tracer.apply("concat", *arrays, axis=axis)


def _stack(arrays, axis=0, out=None, **unsupported):
    _no_extras("stack", out, unsupported)
    tracer = _tracer(*arrays)
    tensors = [_as_tensor(tracer, a) for a in arrays]
    axis = normalize_axis(axis, tensors[0].ndim + 1)
    return tracer.apply("concat", *[tracer.apply("expand_dims", t, axis=axis) for t in tensors], axis=axis)


def _transpose(a, axes=None):
    return _as_tensor(_tracer(a), a).transpose(axes)


def _swapaxes(a, axis1, axis2):
    perm = list(range(a.ndim))
    i, j = normalize_axis(axis1, a.ndim), normalize_axis(axis2, a.ndim)
    perm[i], perm[j] = perm[j], perm[i]
    return a.transpose(perm)


def _matmul(a, b, out=None, **unsupported):
    _no_extras("matmul", out, unsupported)
    return _tracer(a, b).apply("matmul", a, b)


def _reshape(a, *args, **kwargs):
    shape = args[0] if args else kwargs.pop("shape", kwargs.pop("newshape", None))
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return a.reshape(shape)


def _clip(a, a_min=None, a_max=None, out=None, min=None, max=None, **unsupported):
    _no_extras("clip", out, unsupported)
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    tracer = _tracer(a, lo, hi)
    result = a
    if lo is not None:
        result = tracer.apply("maximum", result, lo)
    if hi is not None:
        result = tracer.apply("minimum", result, hi)
    return result


def _full_like(a, fill_value, dtype=None, **unsupported):
    _no_extras("full_like", None, unsupported)
    tracer = _tracer(a)
    fill = Tensor(tracer, tracer.graph.const(fill_value, to_dtype(a.dtype if dtype is None else dtype)))
    return tracer.apply("broadcast_to", fill, shape=list(a.shape))


FUNCTIONS: dict[Callable, Callable] = {
    np.sum: _reduction("sum"), np.mean: _reduction("mean"), np.max: _reduction("max"), np.amax: _reduction("max"),
    np.min: _reduction("min"), np.amin: _reduction("min"), np.prod: _reduction("prod"),
    np.var: lambda a, axis=None, keepdims=False: a.var(axis=axis, keepdims=keepdims),
    np.std: lambda a, axis=None, keepdims=False: a.std(axis=axis, keepdims=keepdims),
    np.argmax: lambda a, axis=None, keepdims=False: a.argmax(axis=axis, keepdims=keepdims),
    np.argmin: lambda a, axis=None, keepdims=False: a.argmin(axis=axis, keepdims=keepdims),
    np.where: _where, np.concatenate: _concatenate, np.stack: _stack, np.transpose: _transpose,
    np.swapaxes: _swapaxes, np.matmul: _matmul, np.dot: _matmul, np.reshape: _reshape,
    np.squeeze: lambda a, axis=None: a.squeeze(axis),
    np.expand_dims: lambda a, axis: _tracer(a).apply("expand_dims", a, axis=axis),
    np.broadcast_to: lambda a, shape: _tracer(a).apply("broadcast_to", a, shape=list(shape)),
    np.ravel: lambda a: a.reshape(-1), np.clip: _clip,
    np.zeros_like: lambda a, dtype=None: _full_like(a, 0, dtype),
    np.ones_like: lambda a, dtype=None: _full_like(a, 1, dtype),
    np.full_like: _full_like,
    np.shape: lambda a: a.shape, np.ndim: lambda a: a.ndim, np.size: lambda a: a.size,
}  # fmt: skip


def array_function(func: Callable, args: tuple, kwargs: dict) -> Any:
    impl = FUNCTIONS.get(func)
    if impl is None:
        raise _missing(f"np.{func.__name__}")
    try:
        return impl(*args, **kwargs)
    except TypeError as e:
        raise FusecError(f"np.{func.__name__}: {e}", user_location()) from None


# --------------------------------------------------------------------------------------------
# indexing: t[:, :D//2], t[..., 1::2], t[0], t[None]


def index(t: Tensor, key: Any) -> Tensor:
    """Basic indexing by slices, integers (which drop their axis), `...` and None (a new axis)."""
    key = key if isinstance(key, tuple) else (key,)
    for k in key:
        if not (k is None or k is Ellipsis or isinstance(k, (slice, int, np.integer))) or isinstance(k, bool):
            raise FusecError(f"indexing a traced tensor by {type(k).__name__} (a gather) is not supported; "
                             "index with slices, integers, ... and None", user_location())
    if sum(k is Ellipsis for k in key) > 1:
        raise FusecError("an index can only have one ellipsis ('...')", user_location())
    used = sum(k is not None and k is not Ellipsis for k in key)
    if used > t.ndim:
        raise FusecError(f"too many indices for a tensor of rank {t.ndim}: {used}", user_location())
    if Ellipsis in key:
        at = key.index(Ellipsis)
        key = key[:at] + (slice(None),) * (t.ndim - used) + key[at + 1 :]
    else:
        key = key + (slice(None),) * (t.ndim - used)
    x, axis, dropped = t, 0, []
    for k in key:
        if k is None:
            x = x.tracer.apply("expand_dims", x, axis=axis)
        elif isinstance(k, slice):
            if k != slice(None):
                x = _slice(x, axis, k)
        else:
            n = x.shape[axis]
            i = int(k) + n if int(k) < 0 else int(k)
            if not 0 <= i < n:
                raise FusecError(f"index {int(k)} is out of bounds for axis {axis} of size {n}", user_location())
            x = x.tracer.apply("slice", x, axis=axis, start=i, stop=i + 1, step=1)
            dropped.append(axis)
        axis += 1
    if dropped:
        x = x.tracer.apply("squeeze", x, axis=dropped)
    return x


def _slice(x: Tensor, axis: int, k: slice) -> Tensor:
    n = x.shape[axis]
    start, stop, step = k.indices(n)
    if stop < 0:  # a negative step running to the front: keep it past the front, not from the end
        stop = -n - 1
    return x.tracer.apply("slice", x, axis=axis, start=start, stop=stop, step=step)


NUMPY_HANDLERS.update(ufunc=array_ufunc, function=array_function, index=index)
