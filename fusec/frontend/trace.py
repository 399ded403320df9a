"""Build a Graph by running ordinary Python on symbolic tensors (tracing).

    def softmax(x):
        e = fn.exp(x - fn.max(x, axis=-1, keepdims=True))
        return e / fn.sum(e, axis=-1, keepdims=True)

    g = fusec.trace(softmax, x=("f32", (64, 128)))

Each argument becomes a graph input; each operator or `fn.<op>(...)` call on a `Traced` value adds
one node, with the same checks as the .fg parser. The function returns one Traced value or a
tuple of them: the graph's outputs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fusec.errors import FusecError
from fusec.ir.dtypes import DType, TensorType, dtype_named
from fusec.ir.graph import Graph
from fusec.ir.ops import OPS

Operand = "Traced | bool | int | float"


class Traced:
    """A symbolic tensor: a name in the graph being traced. Arithmetic on it adds nodes."""

    __array_priority__ = 1000  # NumPy scalars on the left defer to our operators

    def __init__(self, graph: Graph, name: str):
        self.graph = graph
        self.name = name

    @property
    def type(self) -> TensorType:
        return self.graph.type_of(self.name)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> DType:
        return self.type.dtype

    def __repr__(self) -> str:
        return f"Traced({self.name}: {self.type})"

    def _apply(self, op: str, *args: Any, **attrs: Any) -> Traced:
        return _apply(self.graph, op, *args, **attrs)

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
    def __abs__(self): return self._apply("abs", self)  # noqa: E704
    def __lt__(self, other): return self._apply("lt", self, other)  # noqa: E704
    def __le__(self, other): return self._apply("le", self, other)  # noqa: E704
    def __gt__(self, other): return self._apply("gt", self, other)  # noqa: E704
    def __ge__(self, other): return self._apply("ge", self, other)  # noqa: E704
    def __eq__(self, other): return self._apply("eq", self, other)  # noqa: E704
    def __ne__(self, other): return self._apply("ne", self, other)  # noqa: E704

    __hash__ = None  # == builds a node, so Traced values cannot be dict keys

    def __bool__(self) -> bool:
        raise FusecError("a traced tensor has no truth value: use where(cond, a, b) instead of if/else")

    @property
    def T(self) -> Traced:
        return self._apply("transpose", self)

    def reshape(self, *shape: int) -> Traced:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return self._apply("reshape", self, shape=list(shape))

    def astype(self, dtype: str | DType) -> Traced:
        return self._apply("cast", self, dtype=dtype)


def _apply(graph: Graph, op: str, *args: Any, **attrs: Any) -> Traced:
    names = []
    for a in args:
        if isinstance(a, Traced):
            if a.graph is not graph:
                raise FusecError("cannot mix tensors from two different traces")
            names.append(a.name)
        elif isinstance(a, (bool, int, float)):
            names.append(a)
        else:
            raise FusecError(f"{op}: operand {a!r} is neither a traced tensor nor a Python scalar")
    return Traced(graph, graph.add(op, *names, **attrs))


class _OpNamespace:
    """`fn.exp(x)`, `fn.sum(x, axis=-1)`, ...: one function per row of the op table."""

    def __getattr__(self, op: str) -> Callable[..., Traced]:
        if op.startswith("_") or op not in OPS or OPS[op].kind == "leaf":
            raise AttributeError(f"fusec has no op '{op}'")

        def call(*args: Any, **attrs: Any) -> Traced:
            graph = next((a.graph for a in args if isinstance(a, Traced)), None)
            if graph is None:
                raise FusecError(f"{op}: needs at least one traced tensor operand")
            return _apply(graph, op, *args, **attrs)

        call.__name__ = op
        return call

    def __dir__(self) -> list[str]:
        return sorted(n for n, o in OPS.items() if o.kind != "leaf")


fn = _OpNamespace()


def trace(function: Callable[..., Any], name: str | None = None, **inputs: tuple[str, tuple[int, ...]]) -> Graph:
    """Trace `function` on symbolic inputs given as name=(dtype, shape); returns a verified Graph."""
    params = list(inspect.signature(function).parameters)
    missing = [p for p in params if p not in inputs]
    extra = [k for k in inputs if k not in params]
    if missing or extra:
        raise FusecError(f"trace: {function.__name__} takes ({', '.join(params)}); missing {missing}, unexpected {extra}")
    graph = Graph(name or function.__name__)
    args = []
    for p in params:
        dtype, shape = inputs[p]
        dtype = dtype if isinstance(dtype, DType) else dtype_named(dtype)
        args.append(Traced(graph, graph.add_input(p, dtype, tuple(shape))))
    result = function(*args)
    outputs = result if isinstance(result, tuple) else (result,)
    if not all(isinstance(o, Traced) for o in outputs):
        raise FusecError(f"trace: {function.__name__} must return traced tensors, got {result!r}")
    graph.set_outputs([o.name for o in outputs])
    graph.dead_code_elimination()
    graph.verify()
    return graph
