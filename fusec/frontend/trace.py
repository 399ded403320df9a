"""Build a Graph by running ordinary Python on symbolic tensors (tracing).

    def softmax(x):
        e = fn.exp(x - fn.max(x, axis=-1, keepdims=True))
        return e / fn.sum(e, axis=-1, keepdims=True)

    g = fusec.trace(softmax, x=("f32", (64, 128)))

Each argument becomes a graph input; each operator or `fn.<op>(...)` call on a traced `Tensor`
(fusec/frontend/tensor.py) adds one node, with the same checks as the .fg parser. The function
returns one tensor or a tuple of them: the graph's outputs. `fusec.jit` (fusec/frontend/jit.py)
traces from example arrays instead, and caches what it compiled.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from fusec.errors import FusecError, SourceLocation
from fusec.frontend.expr import NAMED_LITERALS
from fusec.frontend.tensor import Tensor, Tracer, to_dtype, tracer_of, user_location
from fusec.ir.graph import Graph
from fusec.ir.ops import OPS, REQUIRED, OpDef

Traced = Tensor  # the name this module used before tensors became NumPy-like


def op_doc(row: OpDef) -> str:
    """The docstring of `fusec.ops.<op>`: the row's own doc, or what the row says about itself."""
    operands = "x, ..." if row.arity is None else ", ".join(f"x{i}" for i in range(row.arity)) or ""
    attrs = ", ".join(f"{a.name}" if a.default is REQUIRED else f"{a.name}={a.default!r}" for a in row.attrs)
    head = f"{row.name}({', '.join(p for p in (operands, attrs) if p)})"
    body = row.doc or f"The fusec op '{row.name}' ({row.kind}{', composite' if row.is_composite else ''})."
    return f"{head}\n\n{body}\n\nAdds one '{row.name}' node to the graph being traced; see docs/language.md."


def op_function(name: str) -> Callable[..., Tensor]:
    """The tracing function of one row of the op table: `exp(x)`, `sum(x, axis=-1, keepdims=True)`."""
    if name.startswith("_") or name not in OPS or OPS[name].kind == "leaf":
        raise AttributeError(f"fusec has no op '{name}'")

    def call(*args: Any, **attrs: Any) -> Tensor:
        tracer = tracer_of(*args)
        if tracer is None:
            raise FusecError(f"{name}: needs a traced tensor operand (call it inside a function that fusec.jit "
                             "or fusec.trace traces)", user_location())
        return tracer.apply(name, *args, **attrs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = op_doc(OPS[name])
    return call


class _OpNamespace:
    """`fn.exp(x)`, `fn.sum(x, axis=-1)`, ...: one function per row of the op table."""

    def __getattr__(self, op: str) -> Callable[..., Tensor]:
        return op_function(op)

    def __dir__(self) -> list[str]:
        return sorted(n for n, o in OPS.items() if o.kind != "leaf")


fn = _OpNamespace()


def refuse_literal_name(function: Callable, name: str, what: str) -> None:
    """`inf`, `nan`, `true` and `false` read as literals wherever a graph is printed or parsed, so a
    traced input or output may not take them (as `let inf = ...` may not in a .fg file). The error
    points at the name in the function's source when it is there, else at the `def` line."""
    if name not in NAMED_LITERALS:
        return
    message = f"'{name}' is a literal and cannot name {what}; choose another name"
    raise FusecError(message, definition_location(function, name))


def definition_location(function: Callable, name: str) -> SourceLocation | None:
    """Where `name` first appears in the source of `function` (its `def` line if it does not)."""
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    try:
        lines, first = inspect.getsourcelines(function)
    except (OSError, TypeError):
        return SourceLocation(code.co_filename, code.co_firstlineno, 1)
    for offset, text in enumerate(lines):
        found = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text)
        if found:
            return SourceLocation(code.co_filename, first + offset, found.start() + 1, text)
    return SourceLocation(code.co_filename, first, 1, lines[0] if lines else "")


def outputs_of(function: Callable, result: Any) -> list[Tensor]:
    outputs = list(result) if isinstance(result, tuple) else [result]
    if not all(isinstance(o, Tensor) for o in outputs):
        raise FusecError(f"trace: {function.__name__} must return traced tensors, got {result!r}")
    return outputs


def trace(function: Callable[..., Any], name: str | None = None, **inputs: tuple[str, tuple[int, ...]]) -> Graph:
    """Trace `function` on symbolic inputs given as name=(dtype, shape); returns a verified Graph."""
    params = list(inspect.signature(function).parameters)
    missing = [p for p in params if p not in inputs]
    extra = [k for k in inputs if k not in params]
    if missing or extra:
        raise FusecError(f"trace: {function.__name__} takes ({', '.join(params)}); missing {missing}, unexpected {extra}")
    for p in params:
        refuse_literal_name(function, p, f"an input of {function.__name__}")
    tracer = Tracer(Graph(name or function.__name__), lift=False)
    args = []
    for p in params:
        dtype, shape = inputs[p]
        args.append(Tensor(tracer, tracer.graph.add_input(p, to_dtype(dtype), tuple(shape))))
    outputs = outputs_of(function, function(*args))
    graph = tracer.graph
    graph.set_outputs([o.name for o in outputs])
    graph.dead_code_elimination()
    graph.verify()
    return graph
