"""Match a rule's pattern at one node of a graph.

The matcher walks the pattern and the graph together from the root, backtracking over the two
operand orders of commutative ops. It yields every binding (variable -> node name, or attribute
value) under which the pattern fits; the driver takes the first whose guard holds.

Commutativity is what makes `x * 1` also match `1 * x`. Only ops whose IEEE results do not depend
on operand order count: add and mul (and the comparisons eq, ne). maximum and minimum are *not*
bitwise commutative: NumPy's maximum(0.0, -0.0) and maximum(-0.0, 0.0) return different zeros.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fusec.ir.graph import Graph
from fusec.ir.ops import OPS
from fusec.rewrite.guards import Evaluator, GuardError
from fusec.rewrite.rule import AttrLit, AttrVar, PConst, PLit, PNamed, POp, PVar, Rule, same_literal

BITWISE_COMMUTATIVE = frozenset(
    name for name, op in OPS.items() if op.commutative and name not in ("maximum", "minimum")
)


def _same_attr(a: Any, b: Any) -> bool:
    if isinstance(a, list):
        a = tuple(a)
    if isinstance(b, list):
        b = tuple(b)
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and same_literal(a, b)
    return type(a) is type(b) and a == b


def _operand_op(p: Any) -> str | None:
    """The op an operand pattern requires of its node, if any."""
    while isinstance(p, PNamed):
        p = p.pattern
    if isinstance(p, POp):
        return p.op
    if isinstance(p, (PConst, PLit)):
        return "const"
    return None


def could_match(rule: Rule, op: str, operand_ops: tuple[str, ...]) -> bool:
    """A cheap first look: does a node of this op, whose operands have these ops, fit the pattern's top?"""
    want = tuple(_operand_op(a) for a in rule.pattern.args)
    if op != rule.pattern.op or len(operand_ops) != len(want):
        return False
    if all(w is None or w == got for w, got in zip(want, operand_ops)):
        return True
    if op in BITWISE_COMMUTATIVE and len(want) == 2:
        return all(w is None or w == got for w, got in zip(want, reversed(operand_ops)))
    return False


class Matcher:
    """Matches patterns against one graph. Holds no state between calls but the graph."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._nodes = graph.nx._node  # networkx's node dict: the public view costs a call per lookup

    def operand_ops(self, root: str) -> tuple[str, ...]:
        nodes = self._nodes
        return tuple(nodes[a]["node"].op for a in nodes[root]["node"].args)

    def matches(self, rule: Rule, root: str) -> Iterator[dict[str, Any]]:
        """Every binding under which `rule`'s pattern fits at `root` and its guard holds."""
        for bindings in self._match(rule.pattern, root, {}):
            if rule.guard is None:
                yield bindings
                continue
            try:
                ok = Evaluator(self.graph, bindings, frozenset(rule.attr_vars)).truth(rule.guard)
            except GuardError:
                ok = False
            if ok:
                yield bindings

    def first(self, rule: Rule, root: str) -> dict[str, Any] | None:
        return next(self.matches(rule, root), None)

    def _match(self, p: Any, name: str, b: dict[str, Any]) -> Iterator[dict[str, Any]]:
        node = self._nodes[name]["node"]
        if isinstance(p, POp):
            if node.op != p.op or len(node.args) != len(p.args):
                return
            b = self._match_attrs(p, node.attrs, b)
            if b is None:
                return
            yield from self._match_args(p.args, node.args, b)
            if p.op in BITWISE_COMMUTATIVE and len(p.args) == 2 and p.args[0] != p.args[1]:
                yield from self._match_args(p.args, (node.args[1], node.args[0]), b)
        elif isinstance(p, PVar):
            bound = b.get(p.name)
            if bound is None:
                yield {**b, p.name: name}
            elif bound == name:
                yield b
        elif isinstance(p, PConst):
            if node.op != "const":
                return
            bound = b.get(p.name)
            if bound is None:
                yield {**b, p.name: name}
            elif bound == name or same_literal(self._nodes[bound]["node"].attrs["value"], node.attrs["value"]):
                yield b
        elif isinstance(p, PLit):
            if node.op == "const" and same_literal(node.attrs["value"], p.value):
                yield b
        elif isinstance(p, PNamed):
            bound = b.get(p.name)
            if bound is not None:
                if bound == name:
                    yield b
                return
            for b2 in self._match(p.pattern, name, b):
                yield {**b2, p.name: name}
        else:  # pragma: no cover
            raise AssertionError(p)

    def _match_args(self, pats: tuple, names: tuple, b: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if not pats:
            yield b
            return
        for b2 in self._match(pats[0], names[0], b):
            yield from self._match_args(pats[1:], names[1:], b2)

    @staticmethod
    def _match_attrs(p: POp, attrs: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
        for key, ap in p.attrs:
            value = attrs[key]
            if isinstance(ap, AttrLit):
                if not _same_attr(ap.value, value):
                    return None
            elif isinstance(ap, AttrVar):
                if ap.name in b:
                    if not _same_attr(b[ap.name], value):
                        return None
                else:
                    b = {**b, ap.name: value}
        return b
