"""Print a Graph as canonical .fg text.

The output parses back to an equal graph, and printing is a fixpoint: print(parse(print(g))) ==
print(g). Canonical means: one binding per op, in topological order; infix operators where the op
has one; attributes only where they differ from their defaults; literals inline where re-parsing
would give them the same dtype; compiler temporaries (`%N`) renamed to free `tN` names.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from fusec.ir.dtypes import DType, literal_dtype
from fusec.ir.ops import OPS, literal_context_dtype

if TYPE_CHECKING:  # Graph prints itself through this module, so the printer imports it only for types
    from fusec.ir.graph import Graph, Node


def format_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return str(value)


def format_attr(value: Any) -> str:
    if isinstance(value, DType):
        return value.name
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_attr(v) for v in value) + "]"
    return format_scalar(value)


def _display_names(g: Graph, inline: set[str]) -> dict[str, str]:
    """User names stay; temporaries `%N` that get a line of their own take the first free `tK`."""
    taken = {n for n in g.nx.nodes if not n.startswith("%")}
    names = {n: n for n in taken}
    k = 0
    for node in g.nodes():
        if node.name.startswith("%") and node.name not in inline:
            while f"t{k}" in taken:
                k += 1
            names[node.name] = f"t{k}"
            taken.add(f"t{k}")
    return names


def _inline_consts(g: Graph) -> set[str]:
    """Constants printed as literals at their single use, where the literal re-infers their dtype."""
    outputs = set(g.outputs)
    inline: set[str] = set()
    for node in g.ops():
        if node.op == "neg":  # the parser folds -<literal> into one literal, so keep neg's operand bound
            continue
        candidates = [
            a
            for a in node.args
            if g.node(a).op == "const" and node.args.count(a) == 1 and len(g.consumers(a)) == 1 and a not in outputs
        ]
        if not candidates:
            continue
        tensor_dtypes = [None if a in candidates else g.type_of(a).dtype for a in node.args]
        ctx = literal_context_dtype(OPS[node.op], tensor_dtypes)
        if all(literal_dtype(g.node(a).attrs["value"], ctx) == g.node(a).type.dtype for a in candidates):
            inline.update(candidates)
    return inline


def _expr(g: Graph, node: Node, names: dict[str, str], inline: set[str]) -> str:
    def arg(a: str) -> str:
        if a in inline:
            return format_scalar(g.node(a).attrs["value"])
        return names[a]

    op = OPS[node.op]
    if node.op == "const":
        return f"{node.type.dtype.name}({format_scalar(node.attrs['value'])})"
    if node.op == "neg":
        return f"-{arg(node.args[0])}"
    if op.infix and op.arity == 2:
        left = arg(node.args[0])
        if op.infix == "**" and left.startswith("-"):
            left = f"({left})"  # unary minus binds looser than **: -2.0 ** x would parse as -(2.0 ** x)
        return f"{left} {op.infix} {arg(node.args[1])}"
    parts = [arg(a) for a in node.args]
    written = node.written_attrs or {}
    for spec in op.attrs:
        value = node.attrs[spec.name]
        if spec.name in written:
            parts.append(f"{spec.name}={written[spec.name]}")
        elif value != spec.default:
            parts.append(f"{spec.name}={format_attr(value)}")
    return f"{node.op}({', '.join(parts)})"


def _shape_text(g: Graph, name: str) -> str:
    shape = g.type_of(name).shape
    written = g.input_dims.get(name)
    if written is not None and len(written) == len(shape):
        dims = [w if isinstance(w, int) or g.dims.get(w) == d else d for w, d in zip(written, shape)]
    else:
        dims = list(shape)
    return ", ".join(str(d) for d in dims)


def _range_text(g: Graph, name: str) -> str:
    if name not in g.input_ranges:
        return ""
    low, high = g.input_ranges[name]
    return f" in [{format_scalar(low)}, {format_scalar(high)}]"


def print_graph(g: Graph) -> str:
    inline = _inline_consts(g)
    names = _display_names(g, inline)
    dims = ""
    if g.dims:
        dims = "<" + ", ".join(f"{k}={v}" for k, v in g.dims.items()) + ">"
    params = ", ".join(f"{names[i]}: {g.type_of(i).dtype.name}[{_shape_text(g, i)}]{_range_text(g, i)}" for i in g.inputs)
    lines = [f"graph {g.name}{dims}({params}) {{"]
    for node in g.nodes():
        if node.op == "input" or node.name in inline:
            continue
        lines.append(f"  {names[node.name]} = {_expr(g, node, names, inline)}")
    for e in g.expectations:
        lines.append(f"  assert {e.what} {e.cmp} {e.value}")
    lines.append("  return " + ", ".join(names[o] for o in g.outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"
