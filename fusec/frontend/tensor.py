"""The traced tensor: a NumPy-like value whose operations add nodes to the graph being traced.

A `Tensor` stands for a value of the graph a `Tracer` is building. Operators, methods
(`.sum(axis=, keepdims=)`, `.T`, `.reshape`, `.astype`, slicing) and, through the NumPy protocols
in `numpy_api.py`, NumPy functions (`np.exp(t)`, `np.where(c, a, b)`) each add one node with the same
checks as the .fg parser. Its shape and dtype are known while tracing; its values are not, so
anything that needs them (`if t > 0:`, `bool(t)`, `float(t)`, iterating) raises one FusecError that
names the line of the user's function it happened on.
"""

from __future__ import annotations

import linecache
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fusec.errors import FusecError, SourceLocation
from fusec.ir.dtypes import DType, TensorType, dtype_named, dtype_of_numpy
from fusec.ir.graph import Graph
from fusec.ir.ops import OPS

# NumPy's protocols (np.exp(t), np.sum(t, axis=1)) and indexing (t[:, 1:3]) are answered by
# fusec/frontend/numpy_api.py. That module builds Tensors, so it imports this one; it registers its
# handlers here when imported (fusec/frontend/__init__.py imports it), so the two never import each other.
NUMPY_HANDLERS: dict[str, Any] = {}

_FUSEC_DIR = str(Path(__file__).resolve().parent.parent)
_NUMPY_DIR = str(Path(np.__file__).resolve().parent)


def user_location() -> SourceLocation | None:
    """Where the user's code is running: the innermost stack frame outside fusec and NumPy."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        path = filename if filename.startswith("<") else str(Path(filename).resolve())
        if not path.startswith((_FUSEC_DIR, _NUMPY_DIR, "<frozen")):
            line, column = frame.f_lineno, 1
            positions = getattr(frame.f_code, "co_positions", None)  # Python 3.11: the column too
            if positions is not None:
                start = list(positions())[frame.f_lasti // 2]
                if start[0] == line and start[2] is not None:
                    column = start[2] + 1
            return SourceLocation(filename, line, column, linecache.getline(filename, line))
        frame = frame.f_back
    return None


def located(error: FusecError) -> FusecError:
    """The same error, tied to the user's line if it has no location yet."""
    if error.location is not None:
        return error
    return type(error)(error.message, user_location())


def not_traceable(what: str) -> FusecError:
    return FusecError(
        f"{what}: a tensor's values are not known while tracing, so Python control flow and conversions "
        "cannot depend on them (use fusec.ops.where(cond, a, b), or pass the argument as a "
        "static argument: fusec.jit(fn, static_argnames=...))",
        user_location(),
    )


def to_dtype(dtype: Any) -> DType:
    """A fusec DType from 'f32', a fusec DType, np.float32 or np.dtype('float32')."""
    if isinstance(dtype, DType):
        return dtype
    if isinstance(dtype, str) and dtype in ("bool", "i32", "i64", "f32", "f64"):
        return dtype_named(dtype)
    try:
        return dtype_of_numpy(np.dtype(dtype))
    except (TypeError, FusecError):
        raise FusecError(f"fusec has no dtype {dtype!r} (dtypes: f32, f64, i32, i64, bool)", user_location()) from None


class Tracer:
    """The graph being traced, and the NumPy arrays the function captured from outside it.

    A captured array (a closure's weight matrix, say) becomes an extra graph input, `c0`, `c1`, ...;
    its value is kept here and passed on every call. Zero-dimensional arrays and NumPy scalars
    become constants of their own dtype instead.
    """

    def __init__(self, graph: Graph, lift: bool = True):
        self.graph = graph
        self.lift_arrays = lift
        self.captured: dict[str, np.ndarray] = {}
        self._by_id: dict[int, str] = {}

    def operand(self, value: Any) -> str | bool | int | float:
        """A graph operand for a traced tensor, Python scalar (a weak literal) or NumPy value."""
        if isinstance(value, Tensor):
            if value.tracer is not self:
                raise FusecError("cannot mix tensors from two different traces", user_location())
            return value.name
        if isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, (np.ndarray, np.generic)) or isinstance(value, (list, tuple)):
            arr = np.asarray(value)
            if arr.ndim == 0:
                return self.graph.const(arr.item(), to_dtype(arr.dtype))
            if not self.lift_arrays:
                raise FusecError("the function uses a NumPy array that is not an argument; pass it as an argument "
                                 "(or trace with fusec.jit, which makes captured arrays inputs)", user_location())
            if id(value) in self._by_id and isinstance(value, np.ndarray):
                return self._by_id[id(value)]
            name = f"c{len(self.captured)}"
            while name in self.graph:
                name += "_"
            self.graph.add_input(name, to_dtype(arr.dtype), arr.shape)
            self.captured[name] = arr
            if isinstance(value, np.ndarray):
                self._by_id[id(value)] = name
            return name
        raise FusecError(f"{value!r} is neither a traced tensor, a number nor a NumPy array", user_location())

    def apply(self, op: str, *args: Any, **attrs: Any) -> Tensor:
        """Add `op(args, attrs)` to the graph; errors point at the user's line."""
        try:
            names = [self.operand(a) for a in args]
            return Tensor(self, self.graph.add(op, *names, **attrs))
        except FusecError as e:
            raise located(e) from None


ACTIVE: list[Tracer] = []  # the traces running now, innermost last (ops with no tensor operand use it)


def tracer_of(*values: Any) -> Tracer | None:
    for v in values:
        if isinstance(v, Tensor):
            return v.tracer
        if isinstance(v, (list, tuple)):
            found = tracer_of(*v)
            if found is not None:
                return found
    return ACTIVE[-1] if ACTIVE else None


def has_op(name: str) -> bool:
    return name in OPS


class Tensor:
    """A symbolic tensor: a name in the graph being traced. Arithmetic on it adds nodes."""

    __array_priority__ = 1000  # NumPy scalars on the left defer to our operators

    def __init__(self, tracer: Tracer, name: str):
        self.tracer = tracer
        self.name = name

    # -- what is known while tracing: the type
    @property
    def graph(self) -> Graph:
        return self.tracer.graph

    @property
    def type(self) -> TensorType:
        return self.graph.type_of(self.name)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> np.dtype:
        return self.type.dtype.numpy

    @property
    def ndim(self) -> int:
        return self.type.rank

    @property
    def size(self) -> int:
        return self.type.size

    def __repr__(self) -> str:
        return f"Tensor({self.name}: {self.type})"

    def _apply(self, op: str, *args: Any, **attrs: Any) -> Tensor:
        return self.tracer.apply(op, *args, **attrs)

    # -- operators
    def __add__(self, other): return self._apply("add", self, other)  # noqa: E704
    def __radd__(self, other): return self._apply("add", other, self)  # noqa: E704
    def __sub__(self, other): return self._apply("sub", self, other)  # noqa: E704
    def __rsub__(self, other): return self._apply("sub", other, self)  # noqa: E704
    def __mul__(self, other): return self._apply("mul", self, other)  # noqa: E704
    def __rmul__(self, other): return self._apply("mul", other, self)  # noqa: E704
    def __truediv__(self, other): return self._apply("div", self, other)  # noqa: E704
    def __rtruediv__(self, other): return self._apply("div", other, self)  # noqa: E704
    def __pow__(self, other): return self._apply("pow", self, other)  # noqa: E704
    def __rpow__(self, other): return self._apply("pow", other, self)  # noqa: E704
    def __matmul__(self, other): return self._apply("matmul", self, other)  # noqa: E704
    def __rmatmul__(self, other): return self._apply("matmul", other, self)  # noqa: E704
    def __neg__(self): return self._apply("neg", self)  # noqa: E704
    def __pos__(self): return self  # noqa: E704
    def __abs__(self): return self._apply("abs", self)  # noqa: E704
    def __lt__(self, other): return self._apply("lt", self, other)  # noqa: E704
    def __le__(self, other): return self._apply("le", self, other)  # noqa: E704
    def __gt__(self, other): return self._apply("gt", self, other)  # noqa: E704
    def __ge__(self, other): return self._apply("ge", self, other)  # noqa: E704
    def __eq__(self, other): return self._apply("eq", self, other)  # noqa: E704
    def __ne__(self, other): return self._apply("ne", self, other)  # noqa: E704
    def __and__(self, other): return self._logical("and", self, other)  # noqa: E704
    def __rand__(self, other): return self._logical("and", other, self)  # noqa: E704
    def __or__(self, other): return self._logical("or", self, other)  # noqa: E704
    def __ror__(self, other): return self._logical("or", other, self)  # noqa: E704
    def __xor__(self, other): return self._logical("xor", self, other)  # noqa: E704
    def __rxor__(self, other): return self._logical("xor", other, self)  # noqa: E704
    def __invert__(self): return self._logical("not", self)  # noqa: E704

    def __floordiv__(self, other):
        return self._floor_div(self, other)

    def __rfloordiv__(self, other):
        return self._floor_div(other, self)

    def _floor_div(self, a, b) -> Tensor:
        if not has_op("floor"):
            raise FusecError("// needs the op 'floor', which this fusec does not have", user_location())
        return self._apply("floor", self._apply("div", a, b))

    def _logical(self, kind: str, *args: Any) -> Tensor:
        """& | ^ ~ on bool tensors (NumPy's logical meaning for bool; integers have no bitwise ops here)."""
        for a in args:
            if isinstance(a, Tensor) and a.type.dtype.name != "bool":
                raise FusecError(f"the bitwise operator ({kind}) needs bool tensors, got {a.type}", user_location())
        if has_op(f"logical_{kind}"):
            return self._apply(f"logical_{kind}", *args)
        # bool arithmetic is logical: * is and, + is or, != is xor, == False is not
        spelled = {"and": "mul", "or": "add", "xor": "ne"}
        if kind == "not":
            return self._apply("eq", args[0], False)
        return self._apply(spelled[kind], *args)

    __hash__ = None  # == builds a node, so tensors cannot be dict keys

    # -- what is not known while tracing: the values
    def __bool__(self):
        raise not_traceable("a traced tensor has no truth value (it was used in if, while, and, or, not or bool())")

    def __float__(self):
        raise not_traceable("float() of a traced tensor")

    def __int__(self):
        raise not_traceable("int() of a traced tensor")

    def __index__(self):
        raise not_traceable("a traced tensor used as an index, size or Python int")

    def __complex__(self):
        raise not_traceable("complex() of a traced tensor")

    def __iter__(self):
        raise not_traceable("iterating over a traced tensor")

    def __len__(self) -> int:
        if self.ndim == 0:
            raise FusecError("len() of a 0-dimensional tensor", user_location())
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        raise not_traceable("converting a traced tensor to a NumPy array (np.asarray)")

    def item(self):
        raise not_traceable(".item() of a traced tensor")

    def tolist(self):
        raise not_traceable(".tolist() of a traced tensor")

    # -- NumPy protocols (fusec/frontend/numpy_api.py)
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return NUMPY_HANDLERS["ufunc"](ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return NUMPY_HANDLERS["function"](func, args, kwargs)

    # -- methods
    def _reduce(self, op: str, axis, keepdims: bool) -> Tensor:
        return self._apply(op, self, axis=axis, keepdims=keepdims)

    def sum(self, axis=None, keepdims=False): return self._reduce("sum", axis, keepdims)  # noqa: E704
    def mean(self, axis=None, keepdims=False): return self._reduce("mean", axis, keepdims)  # noqa: E704
    def max(self, axis=None, keepdims=False): return self._reduce("max", axis, keepdims)  # noqa: E704
    def min(self, axis=None, keepdims=False): return self._reduce("min", axis, keepdims)  # noqa: E704
    def prod(self, axis=None, keepdims=False): return self._reduce("prod", axis, keepdims)  # noqa: E704

    def var(self, axis=None, keepdims=False) -> Tensor:
        if has_op("var") and {a.name for a in OPS["var"].attrs} >= {"axis", "keepdims"}:
            return self._reduce("var", axis, keepdims)
        d = self - self.mean(axis=axis, keepdims=True)
        return (d * d).mean(axis=axis, keepdims=keepdims)

    def std(self, axis=None, keepdims=False) -> Tensor:
        return self._apply("sqrt", self.var(axis=axis, keepdims=keepdims))

    def argmax(self, axis=None, keepdims=False) -> Tensor:
        return self._arg("argmax", axis, keepdims)

    def argmin(self, axis=None, keepdims=False) -> Tensor:
        return self._arg("argmin", axis, keepdims)

    def _arg(self, op: str, axis, keepdims) -> Tensor:
        if not has_op(op):
            raise FusecError(f"{op} is not an op of this fusec", user_location())
        known = {a.name for a in OPS[op].attrs}
        attrs = {k: v for k, v in (("axis", axis), ("keepdims", keepdims)) if k in known}
        return self._apply(op, self, **attrs)

    @property
    def T(self) -> Tensor:
        return self._apply("transpose", self)

    def transpose(self, *axes) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)) or axes == (None,):
            axes = axes[0]
        return self._apply("transpose", self, perm=list(axes) if axes else None)

    def reshape(self, *shape: int) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return self._apply("reshape", self, shape=list(shape))

    def flatten(self) -> Tensor:
        return self.reshape(-1)

    ravel = flatten

    def squeeze(self, axis=None) -> Tensor:
        return self._apply("squeeze", self, axis=axis)

    def astype(self, dtype: Any) -> Tensor:
        return self._apply("cast", self, dtype=to_dtype(dtype))

    def __getitem__(self, key: Any) -> Tensor:
        return NUMPY_HANDLERS["index"](self, key)
