"""Build a rule's replacement in the graph, and put it in the place of the matched node.

Two promises are kept here for every rule, whatever its text says:

* the replacement has exactly the matched node's dtype and shape. A replacement that is only
  smaller by broadcasting (`where(c, x, x) -> x`) gets a `broadcast_to`; any other difference
  means the rule does not apply at this node (nothing is changed);
* a graph output keeps its name: if `y` is an output and is replaced, the replacement is renamed
  `y`. Where that is impossible (the replacement is a graph input or another output), the rule
  does not fire there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import networkx as nx

from fusec.errors import FusecError
from fusec.ir.dtypes import broadcast_shapes, literal_dtype
from fusec.ir.graph import Graph
from fusec.ir.ops import OPS, literal_context_dtype
from fusec.rewrite.guards import Evaluator
from fusec.rewrite.rule import ConstVar, RAttr, RLit, ROp, Rule, RVar


class NotApplicable(Exception):
    """The replacement cannot stand in for the matched node (its type differs, an attribute is invalid)."""


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (bool, int, float))


class _Builder:
    def __init__(self, graph: Graph, rule: Rule, bindings: dict[str, Any]):
        self.g = graph
        self.bindings = bindings
        self.evaluator = Evaluator(graph, bindings, frozenset(rule.attr_vars))
        self.created: list[str] = []

    def build(self, r: Any) -> str | bool | int | float:
        """The node name for a replacement term; a bare literal stays a Python scalar for its parent."""
        if isinstance(r, RVar):
            return self.bindings[r.name]
        if isinstance(r, RLit):
            return r.value
        if isinstance(r, RAttr):
            value = self.bindings[r.name]
            if not _is_scalar(value):
                raise NotApplicable(f"attribute value {value!r} is not a number")
            return value
        assert isinstance(r, ROp)
        g = self.g
        args = [self.build(a) for a in r.args]
        attrs = {}
        for key, expr in r.attrs:
            if isinstance(expr, ConstVar):  # the constant as written (1e-05), not its f32 rounding
                attrs[key] = g.node(self.bindings[expr.name]).attrs["value"]
                continue
            value = self.evaluator.eval(expr)
            if hasattr(value, "item") and not isinstance(value, (tuple, list)):
                value = value.item()  # a $constant's NumPy scalar becomes a plain number
            attrs[key] = value
        opdef = OPS[r.op]
        # literals become constants of the dtype their operands give them, as in .fg source
        ctx = literal_context_dtype(opdef, [None if _is_scalar(a) else g.type_of(a).dtype for a in args])
        names = []
        for a in args:
            if _is_scalar(a):
                a = g.const(a, literal_dtype(a, ctx))
                self.created.append(a)
            names.append(a)
        name = g.add(r.op, *names, **attrs)
        self.created.append(name)
        return name

    def undo(self) -> None:
        for name in reversed(self.created):
            if name in self.g and not any(True for _ in self.g.nx.successors(name)):
                self.g.nx.remove_node(name)
        self.created.clear()


def instantiate(graph: Graph, rule: Rule, bindings: dict[str, Any], root: str) -> tuple[str, list[str]]:
    """Build the replacement for a match at `root`; returns its node and the nodes created.

    Raises NotApplicable (having removed anything it built) if the replacement's type cannot stand
    in for root's.
    """
    b = _Builder(graph, rule, bindings)
    want = graph.type_of(root)
    try:
        result = b.build(rule.replacement)
        if _is_scalar(result):  # the whole replacement is a literal: a constant of root's dtype
            result = graph.const(result, want.dtype)
            b.created.append(result)
        got = graph.type_of(result)
        if got != want:
            if got.dtype != want.dtype or broadcast_shapes(got.shape, want.shape) != want.shape:
                raise NotApplicable(f"{rule.name} would change {root} from {want} to {got}")
            result = graph.add("broadcast_to", result, shape=want.shape)
            b.created.append(result)
    except FusecError as err:
        b.undo()
        raise NotApplicable(str(err)) from None
    except NotApplicable:
        b.undo()
        raise
    return result, list(b.created)


def can_take_place(graph: Graph, old: str, new: str) -> bool:
    """Can `new` replace `old` while every output keeps its name?"""
    if old not in graph.outputs:
        return True
    return new not in graph.inputs and new not in graph.outputs


def _rename(graph: Graph, old: str, new: str) -> None:
    """Rename a node, touching only it and its consumers (Graph.rename visits every node)."""
    nx.relabel_nodes(graph.nx, {old: new}, copy=False)
    graph.nx.nodes[new]["node"] = replace(graph.nx.nodes[new]["node"], name=new)
    for c in graph.nx.successors(new):
        node = graph.nx.nodes[c]["node"]
        graph.nx.nodes[c]["node"] = replace(node, args=tuple(new if a == old else a for a in node.args))
    graph.outputs = [new if o == old else o for o in graph.outputs]


def take_place(graph: Graph, old: str, new: str, created: list[str] = ()) -> str:
    """Make every use of `old` use `new`; returns the surviving name.

    Names the user wrote survive: if `old` is an output, or a named value replaced by a node this
    rewrite just created, `new` takes `old`'s name (after `old` is removed). For an output the
    caller must have checked can_take_place. Dead nodes are not removed here.
    """
    keep_name = old in graph.outputs or (not old.startswith("%") and new in created)
    graph.replace_uses(old, new)
    if not keep_name:
        return new
    graph.remove(old)
    _rename(graph, new, old)
    return old
