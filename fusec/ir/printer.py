"""Print a Graph as canonical .fg text.

The output parses back to an equal graph, and printing is a fixpoint: print(parse(print(g))) ==
print(g). It keeps what the user wrote: names, comments (above a statement, or after it on its
line) and nested expressions: an unnamed value used once is printed inside its user's expression
(`e = exp(x - m)`), with the fewest parentheses the grammar needs. Otherwise canonical: one statement
a line, in topological order, assertions before the return; infix operators where the op has one;
attributes only where they differ from their defaults; literals inline where re-parsing gives them
the same dtype; other compiler temporaries (`%N`) named by the first free `tN`.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from fusec.ir.dim_expr import dim_text, dim_value
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
        return re.sub(r"e([+-])0+(\d)", r"e\1\2", repr(value))  # 1e-05 as 1e-5
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


def _literal_consts(g: Graph) -> dict[str, str]:
    """Constants printed as literals at their single use, where the literal re-infers their dtype,
    with their text: `2` rather than `2.0` where the integer literal gives the same value and dtype."""
    outputs = set(g.outputs)
    inline: dict[str, str] = {}
    for node in g.ops():
        if node.op == "neg":  # the parser folds -<literal> into one literal: neg's constant prints typed
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
            for a in candidates:  # a dimension used as a value is printed as written: sum(x) / D
                inline[a] = (g.node(a).written_attrs or {}).get("value") or _literal_text(g.node(a).attrs["value"], g.node(a).type.dtype, ctx)
    return inline


def _literal_text(value: Any, dtype: DType, ctx: DType | None) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15 and "e" not in repr(value):
        if not (value == 0 and math.copysign(1.0, value) < 0) and literal_dtype(int(value), ctx) == dtype:
            return str(int(value))
    return format_scalar(value)


def _inlined(g: Graph, literals: set[str]) -> set[str]:
    """Unnamed values printed inside the one expression that uses them, as the user wrote them:
    `e = exp(x - m)` keeps `x - m` inline. An unnamed output used by nothing else (named after its op
    by the parser, see Graph.unnamed_outputs) is printed in the return line. Nesting stops at MAX_INLINE_DEPTH, past which a value gets a line of its own."""
    inline = set(literals)
    depth: dict[str, int] = {}
    uses = {o: g.outputs.count(o) for o in g.outputs}
    for node in g.nodes():
        if node.op == "input" or node.name in literals:
            continue
        d = 1 + max((depth[a] for a in node.args if a in inline and a in depth), default=0)
        users = g.consumers(node.name)
        single = (len(users) == 1 and g.node(users[0]).args.count(node.name) == 1 and node.name not in uses) or (
            not users and uses.get(node.name) == 1
        )
        unnamed = node.name.startswith("%") or node.name in g.unnamed_outputs
        if unnamed and single and d <= MAX_INLINE_DEPTH:
            inline.add(node.name)
            depth[node.name] = d
    return inline


MAX_INLINE_DEPTH = 8
LINE_WIDTH = 100  # a graph header longer than this puts its parameters on lines of their own
_ATOM, _UNARY, _POWER = 6, 4, 5
_INFIX_PREC = {"==": 1, "!=": 1, "<": 1, "<=": 1, ">": 1, ">=": 1, "+": 2, "-": 2, "*": 3, "/": 3, "@": 3, "**": 5}


class _Exprs:
    """Prints a value as an expression, inlining the values in `inline` with the fewest parentheses."""

    def __init__(self, g: Graph, names: dict[str, str], inline: set[str], literals: set[str]):
        self.g, self.names, self.inline, self.literals = g, names, inline, literals

    def value(self, name: str) -> tuple[str, int]:
        if name in self.literals:
            text = self.literals[name]
            return text, _UNARY if text.startswith("-") else _ATOM
        if name in self.inline:
            return self.node(self.g.node(name))
        return self.names[name], _ATOM

    def node(self, node: Node) -> tuple[str, int]:
        """The expression computing `node` (its text and its precedence)."""
        op = OPS[node.op]
        if node.op == "const":
            return f"{node.type.dtype.name}({format_scalar(node.attrs['value'])})", _ATOM
        if node.op == "neg":
            text, prec = self.value(node.args[0])
            return "-" + (text if prec >= _UNARY else f"({text})"), _UNARY
        if op.infix and op.arity == 2:
            p = _INFIX_PREC[op.infix]
            (left, lp), (right, rp) = self.value(node.args[0]), self.value(node.args[1])
            if op.infix == "**":  # atom ** factor: the base is an atom, the exponent may be negated
                left_ok, right_ok = lp >= _ATOM, rp >= _UNARY
            elif p == 1:  # comparisons do not chain
                left_ok, right_ok = lp > p, rp > p
            else:  # left-associative
                left_ok, right_ok = lp >= p, rp > p
            left = left if left_ok else f"({left})"
            right = right if right_ok else f"({right})"
            return f"{left} {op.infix} {right}", p
        parts = [self.value(a)[0] for a in node.args]
        written = node.written_attrs or {}
        for spec in op.attrs:
            value = node.attrs[spec.name]
            if spec.name in written:
                parts.append(f"{spec.name}={written[spec.name]}")
            elif value != spec.default:
                parts.append(f"{spec.name}={format_attr(value)}")
        return f"{node.op}({', '.join(parts)})", _ATOM


def _shape_text(g: Graph, name: str) -> str:
    shape = g.type_of(name).shape
    written = g.input_dims.get(name)
    if written is not None and len(written) == len(shape):
        dims = [w if dim_value(w, g.dims) == d else d for w, d in zip(written, shape)]
    else:
        dims = list(shape)
    return ", ".join(dim_text(d) for d in dims)


def _range_text(g: Graph, name: str) -> str:
    if name not in g.input_ranges:
        return ""
    low, high = g.input_ranges[name]
    return f" in [{format_scalar(low)}, {format_scalar(high)}]"


def _with_comments(g: Graph, key: str, line: str, indent: str = "  ") -> list[str]:
    """`line`, preceded by the comments written above its statement and followed by the one after it."""
    out = [indent + c for c in g.comments.get(key, ())]
    trailing = g.line_comments.get(key)
    return out + [line + (f"  {trailing}" if trailing else "")]


def _header(g: Graph, names: dict[str, str]) -> list[str]:
    dims = "<" + ", ".join(f"{k}={v}" for k, v in g.dims.items()) + ">" if g.dims else ""
    params = [f"{names[i]}: {g.type_of(i).dtype.name}[{_shape_text(g, i)}]{_range_text(g, i)}" for i in g.inputs]
    one_line = f"graph {g.name}{dims}({', '.join(params)}) {{"
    commented = any(i in g.comments or i in g.line_comments for i in g.inputs)
    if not commented and len(one_line) <= LINE_WIDTH:
        return _with_comments(g, "graph", one_line, "")
    if not commented:  # a long header: parameters filled into lines of at most LINE_WIDTH
        lines = _with_comments(g, "graph", f"graph {g.name}{dims}(", "")
        row = ""
        for k, text in enumerate(params):
            text += ") {" if k == len(params) - 1 else ","
            if row and len(row) + 1 + len(text) > LINE_WIDTH:
                lines.append(row)
                row = ""
            row = f"{row} {text}" if row else f"    {text}"
        return lines + [row]
    # a commented parameter gets a line of its own; the header's own comment stays on its first line
    lines = _with_comments(g, "graph", f"graph {g.name}{dims}(", "")
    for k, (i, text) in enumerate(zip(g.inputs, params)):
        lines += _with_comments(g, i, f"    {text}{') {' if k == len(params) - 1 else ','}", "    ")
    return lines


def print_graph(g: Graph, comments: bool = True) -> str:
    """The graph as .fg text: the user's names, expressions and comments; one statement a line.
    comments=False leaves the comments out (graph equality ignores them)."""
    if not comments:
        g = g.copy()
        g.comments, g.line_comments = {}, {}
    literals = _literal_consts(g)
    inline = _inlined(g, literals)
    names = _display_names(g, inline)
    exprs = _Exprs(g, names, inline, literals)
    in_return = {o for o in g.outputs if o in g.return_names and g.outputs.count(o) == 1 and not g.consumers(o)}
    in_return = {o for o in in_return if g.node(o).kind != "leaf" or g.node(o).op == "const"}
    lines = _header(g, names)
    for node in g.nodes():
        if node.op == "input" or node.name in inline or node.name in in_return:
            continue
        lines += _with_comments(g, node.name, f"  {names[node.name]} = {exprs.node(node)[0]}")
    for k, e in enumerate(g.expectations):
        lines += _with_comments(g, f"assert {k}", f"  assert {e.what} {e.cmp} {e.value}")
    returned = []
    for o in g.outputs:
        if o in in_return:
            returned.append(f"{o} = {exprs.node(g.node(o))[0]}")
        else:
            returned.append(exprs.value(o)[0] if o in inline else names[o])
    lines += _with_comments(g, "return", "  return " + ", ".join(returned))
    lines += ["  " + c for c in g.comments.get("}", ())]
    lines.append("}")
    lines += g.comments.get("end", [])
    return "\n".join(lines) + "\n"
