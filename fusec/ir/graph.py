"""The op graph: a dataflow graph of typed values over `networkx.DiGraph`.

Every value is a node, named by a string: graph inputs (op `input`), constants (op `const`) and op
results. A node's operands are kept in order in `Node.args`; the DiGraph's edges (producer ->
consumer) mirror them so networkx can answer reachability, cycles and topological order.

Names that the user wrote (`y = ...`) are kept. Temporaries the compiler makes are named `%N`,
which the .fg printer turns into readable `tN` names.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx
import numpy as np

from fusec.errors import FusecError, FusecTypeError, SourceLocation
from fusec.ir.dtypes import DType, TensorType, literal_dtype
from fusec.ir.ops import OPS, OpDef, check_arity, check_attrs, literal_context_dtype, op_named

Scalar = (bool, int, float)


def check_literal_fits(value: bool | int | float, dtype: DType) -> None:
    """Refuse a literal its dtype cannot hold, rather than wrapping or overflowing silently."""
    if isinstance(value, bool):
        return
    if dtype.is_int:
        info = np.iinfo(dtype.numpy)
        if isinstance(value, float) and not value.is_integer():
            raise FusecTypeError(f"literal {value!r} is not an integer, but it is used as {dtype}")
        if not info.min <= int(value) <= info.max:
            raise FusecTypeError(f"literal {value} does not fit {dtype} (range {info.min}..{info.max})")
    elif dtype.is_float:
        try:
            f = float(value)
        except OverflowError:
            raise FusecTypeError(f"literal {value} overflows {dtype}") from None
        with np.errstate(over="ignore"):
            overflows = math.isfinite(f) and not math.isfinite(float(dtype.numpy.type(f)))
        if overflows:
            raise FusecTypeError(f"literal {value!r} overflows {dtype} (largest is {np.finfo(dtype.numpy).max})")


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    args: tuple[str, ...]
    attrs: dict[str, Any]
    type: TensorType
    loc: SourceLocation | None = field(default=None, compare=False)
    # attributes as written in source when they named a dimension (shape=[S, S]), for the printer
    written_attrs: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def opdef(self) -> OpDef:
        return OPS[self.op]

    @property
    def kind(self) -> str:
        return OPS[self.op].kind


@dataclass(frozen=True)
class Expectation:
    """`assert kernels <= 2` in source: a promise about the compiled graph, checked by the planner."""

    what: str
    cmp: str  # one of == <= < >= >
    value: int
    loc: SourceLocation | None = field(default=None, compare=False)

    def holds(self, actual: int) -> bool:
        return {
            "==": actual == self.value,
            "<=": actual <= self.value,
            "<": actual < self.value,
            ">=": actual >= self.value,
            ">": actual > self.value,
        }[self.cmp]


class Graph:
    def __init__(self, name: str = "main"):
        self.name = name
        self.nx = nx.DiGraph()
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.dims: dict[str, int] = {}  # named dimensions and their values
        self.input_dims: dict[str, tuple[str | int, ...]] = {}  # an input's shape as written
        self.expectations: list[Expectation] = []
        self.input_ranges: dict[str, tuple[float, float]] = {}  # where `fusec run` draws random inputs
        # the source's comments, by the statement they belong to: a value's name, "graph" (the header),
        # "assert K", "return", "}" (before the closing brace) or "end" (after it); `comments` are the lines above, `line_comments` the
        # comment after the statement on its line. The printer writes them back.
        self.comments: dict[str, list[str]] = {}
        self.line_comments: dict[str, str] = {}
        self.return_names: set[str] = set()  # outputs named in the return line: `return y = e / s`
        self.unnamed_outputs: set[str] = set()  # outputs the user wrote unnamed (`return exp(x)`), named after their op
        self._counter = itertools.count()
        self._insertion = itertools.count()

    # ----------------------------------------------------------------------------- building

    def fresh_name(self) -> str:
        while True:
            name = f"%{next(self._counter)}"
            if name not in self.nx:
                return name

    def _insert(self, node: Node) -> str:
        if node.name in self.nx:
            raise FusecError(f"'{node.name}' is already defined", node.loc)
        # "order" breaks ties in the topological sort, so printing and lowering are deterministic
        self.nx.add_node(node.name, node=node, order=next(self._insertion))
        for a in set(node.args):
            self.nx.add_edge(a, node.name)
        return node.name

    def add_input(self, name: str, dtype: DType, shape: tuple[int, ...], written=None, loc=None) -> str:
        self._insert(Node(name, "input", (), {}, TensorType(dtype, tuple(shape)), loc))
        self.inputs.append(name)
        if written is not None:
            self.input_dims[name] = tuple(written)
        return name

    def const(self, value: bool | int | float, dtype: DType, name: str | None = None, loc=None) -> str:
        attrs = check_attrs(OPS["const"], {"value": value, "dtype": dtype})
        check_literal_fits(value, dtype)
        if dtype.is_float:
            attrs["value"] = float(value)
        elif dtype.is_int:
            attrs["value"] = int(value)
        else:
            attrs["value"] = bool(value)
        return self._insert(Node(name or self.fresh_name(), "const", (), attrs, TensorType(dtype, ()), loc))

    def infer(self, op: str | OpDef, args: list[str], attrs: dict[str, Any]) -> tuple[dict, TensorType]:
        """Validate arity and attributes and compute the result type, without adding anything."""
        opdef = op if isinstance(op, OpDef) else op_named(op)
        check_arity(opdef, len(args))
        full = check_attrs(opdef, attrs)
        for a in args:
            if a not in self.nx:
                raise FusecError(f"'{a}' is not defined")
        return full, opdef.infer([self.type_of(a) for a in args], full)

    def add(self, op: str, *args: str | bool | int | float, name: str | None = None, loc=None, **attrs) -> str:
        """Add `op(args, attrs)` and return the name of its result.

        Python scalars among `args` become weak literals that take the dtype of the other operands.
        """
        opdef = op_named(op)
        if opdef.kind == "leaf":
            raise FusecTypeError(f"'{op}' is not an op that can be applied")
        tensor_dtypes = [None if isinstance(a, Scalar) else self.type_of(a).dtype for a in args]
        ctx = literal_context_dtype(opdef, tensor_dtypes)
        names = [self.const(a, literal_dtype(a, ctx), loc=loc) if isinstance(a, Scalar) else a for a in args]
        full, ty = self.infer(opdef, names, attrs)
        return self._insert(Node(name or self.fresh_name(), opdef.name, tuple(names), full, ty, loc))

    def expand_composite(self, name: str) -> str:
        """Replace a composite op (softmax, layernorm, ...) by its primitives, keeping `name` on the
        result. The values the expansion makes are named after it, so a reader can follow them:
        `y = softmax(x)` becomes y_max, y_sub, y_exp, y_sum and y (an unnamed composite's values
        are named after its op: softmax_max, ...)."""
        node = self.node(name)
        before = set(self.nx)
        result = node.opdef.expand(self, list(node.args), node.attrs)
        self.replace_uses(name, result)
        self.remove(name)
        if result not in before:
            self.rename(result, name)
            result = name
        base = node.op if name.startswith("%") else name
        for made in [n for n in self.topo_order() if n not in before and n != result]:
            self.rename(made, self.derived_name(base, self.node(made).op))
        return result

    def name_temporaries(self) -> None:
        """Give the compiler's temporaries (`%N`, such as `x - m` inside `e = exp(x - m)`) readable
        names after the value they feed: `e_sub`. Outputs and constants keep their names."""
        outputs = set(self.outputs)
        order = self.nodes()
        temporaries = [n for n in order if n.name.startswith("%") and n.name not in outputs and n.kind != "leaf"]
        owner = {n.name: n.op if n.name.startswith("%") else n.name for n in order}  # the value each one feeds
        for node in reversed(temporaries):  # consumers before producers, so a chain finds its owner
            consumers = self.consumers(node.name)
            owner[node.name] = owner[consumers[0]] if consumers else node.op
        counters: dict[str, int] = {}  # a stem's last number taken: a long chain of y_add's stays linear
        for node in temporaries:  # then name them in dataflow order: y_mul before y_mul_2
            self.rename(node.name, self.derived_name(owner[node.name], node.op, counters))

    def derived_name(self, base: str, suffix: str, counters: dict[str, int] | None = None) -> str:
        """A free name `base_suffix` (then `base_suffix_2`, ...) for a value made from `base`.

        `counters` (stem -> the last number found taken) lets a caller that only adds names start
        where its previous search for the same stem stopped, instead of at `base_suffix` again."""
        stem = f"{base}_{'c' if suffix == 'const' else suffix}"
        k = counters.get(stem, 1) if counters is not None else 1
        name = stem if k == 1 else f"{stem}_{k}"
        while name in self.nx:
            k += 1
            name = f"{stem}_{k}"
        if counters is not None:
            counters[stem] = k
        return name

    def set_outputs(self, names: Iterable[str]) -> None:
        names = list(names)
        for n in names:
            if n not in self.nx:
                raise FusecError(f"output '{n}' is not defined")
        self.outputs = names

    # ----------------------------------------------------------------------------- queries

    def node(self, name: str) -> Node:
        try:
            return self.nx.nodes[name]["node"]
        except KeyError:
            raise FusecError(f"'{name}' is not defined") from None

    def type_of(self, name: str) -> TensorType:
        return self.node(name).type

    def __contains__(self, name: str) -> bool:
        return name in self.nx

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def nodes(self) -> list[Node]:
        """All nodes in a deterministic topological order (ties broken by insertion order)."""
        order = nx.get_node_attributes(self.nx, "order")
        return [self.node(n) for n in nx.lexicographical_topological_sort(self.nx, key=lambda n: order[n])]

    def topo_order(self) -> list[str]:
        return [n.name for n in self.nodes()]

    def ops(self) -> list[Node]:
        """Nodes that compute something (not inputs or constants), in topological order."""
        return [n for n in self.nodes() if n.kind != "leaf"]

    def consumers(self, name: str) -> list[str]:
        nodes = self.nx.nodes
        return sorted(self.nx.successors(name), key=lambda n: nodes[n]["order"])

    def producers(self, name: str) -> list[str]:
        return list(dict.fromkeys(self.node(name).args))

    # ----------------------------------------------------------------------------- editing

    def replace_uses(self, old: str, new: str) -> None:
        """Make every consumer of `old` (and the outputs) use `new` instead."""
        if old == new:
            return
        for c in list(self.nx.successors(old)):
            node = self.node(c)
            args = tuple(new if a == old else a for a in node.args)
            self.nx.nodes[c]["node"] = replace(node, args=args)
            self.nx.remove_edge(old, c)
            self.nx.add_edge(new, c)
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove(self, name: str) -> None:
        if any(True for _ in self.nx.successors(name)):
            raise FusecError(f"cannot remove '{name}': it still has consumers")
        if name in self.inputs:
            raise FusecError(f"cannot remove the input '{name}'")
        self.nx.remove_node(name)

    def rename(self, old: str, new: str) -> None:
        if new in self.nx:
            raise FusecError(f"'{new}' is already defined")
        consumers = list(self.nx.successors(old))
        # what nx.relabel_nodes(copy=False) does, without its scan of every node (quadratic when
        # name_temporaries renames thousands): the same node data and edges, in the same order
        g = self.nx
        g.add_node(new, **g.nodes[old])
        edges = [(new, t, d) for _, t, d in g.out_edges(old, data=True)]
        edges += [(s, new, d) for s, _, d in g.in_edges(old, data=True)]
        g.remove_node(old)
        g.add_edges_from(edges)
        data = self.nx.nodes
        data[new]["node"] = replace(data[new]["node"], name=new)
        for c in consumers:  # only the renamed node and its consumers mention the old name
            node = data[c]["node"]
            data[c]["node"] = replace(node, args=tuple(new if a == old else a for a in node.args))
        self.inputs = [new if i == old else i for i in self.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]
        if old in self.input_dims:
            self.input_dims[new] = self.input_dims.pop(old)
        if old in self.input_ranges:
            self.input_ranges[new] = self.input_ranges.pop(old)
        for notes in (self.comments, self.line_comments):
            if old in notes:
                notes[new] = notes.pop(old)
        if old in self.return_names:
            self.return_names = (self.return_names - {old}) | {new}
        if old in self.unnamed_outputs:
            self.unnamed_outputs = (self.unnamed_outputs - {old}) | {new}

    def dead_code_elimination(self) -> int:
        """Remove nodes that no output depends on (inputs are kept). Returns how many were removed."""
        live = set(self.outputs)
        for o in self.outputs:
            live |= nx.ancestors(self.nx, o)
        dead = [n for n in self.nx.nodes if n not in live and n not in self.inputs]
        self.nx.remove_nodes_from(dead)
        return len(dead)

    def copy(self) -> Graph:
        g = Graph(self.name)
        g.nx = self.nx.copy()
        g.inputs = list(self.inputs)
        g.outputs = list(self.outputs)
        g.dims = dict(self.dims)
        g.input_dims = dict(self.input_dims)
        g.expectations = list(self.expectations)
        g.input_ranges = dict(self.input_ranges)
        g.comments = {k: list(v) for k, v in self.comments.items()}
        g.line_comments = dict(self.line_comments)
        g.return_names = set(self.return_names)
        g.unnamed_outputs = set(self.unnamed_outputs)
        temps = [int(n[1:]) for n in self.nx.nodes if n.startswith("%") and n[1:].isdigit()]
        g._counter = itertools.count(max(temps, default=-1) + 1)
        orders = [d["order"] for _, d in self.nx.nodes(data=True)]
        g._insertion = itertools.count(max(orders, default=-1) + 1)
        return g

    # ----------------------------------------------------------------------------- checking

    def verify(self) -> None:
        """Check the graph is well formed: acyclic, every operand defined, every type consistent."""
        if not nx.is_directed_acyclic_graph(self.nx):
            cycle = nx.find_cycle(self.nx)
            raise FusecError(f"graph '{self.name}' has a cycle through {' -> '.join(a for a, _ in cycle)}")
        for name in self.nx.nodes:
            data = self.nx.nodes[name]
            if "node" not in data:
                raise FusecError(f"'{name}' is used but never defined")
            node: Node = data["node"]
            if node.name != name:
                raise FusecError(f"node '{name}' carries the name '{node.name}'")
            if node.op == "input":
                if name not in self.inputs:
                    raise FusecError(f"'{name}' is an input node but not a graph input")
                continue
            for a in node.args:
                if a not in self.nx:
                    raise FusecError(f"'{name}' uses '{a}', which is not defined", node.loc)
            if set(self.nx.predecessors(name)) != set(node.args):
                raise FusecError(f"the edges into '{name}' do not match its operands", node.loc)
            _, ty = self.infer(node.op, list(node.args), node.attrs)
            if ty != node.type:
                raise FusecError(f"'{name}' is typed {node.type} but {node.op} gives {ty}", node.loc)
        for i in self.inputs:
            if i not in self.nx or self.node(i).op != "input":
                raise FusecError(f"input '{i}' is missing")
        if not self.outputs:
            raise FusecError(f"graph '{self.name}' has no outputs")
        for o in self.outputs:
            if o not in self.nx:
                raise FusecError(f"output '{o}' is not defined")

    # ----------------------------------------------------------------------------- display

    def __eq__(self, other: object) -> bool:
        """Two graphs are equal when they print to the same canonical .fg text (comments aside)."""
        if not isinstance(other, Graph):
            return NotImplemented
        from fusec.ir.printer import print_graph

        return print_graph(self, comments=False) == print_graph(other, comments=False)

    __hash__ = None  # mutable

    def __str__(self) -> str:
        from fusec.ir.printer import print_graph

        return print_graph(self)

    def __repr__(self) -> str:
        """What it is at a glance: <Graph softmax: 1 input, 5 ops -> y: f32[4096, 4096]>."""
        n_in, n_ops = len(self.inputs), len(self.ops())
        outs = ", ".join(f"{o}: {self.type_of(o)}" if o in self.nx else o for o in self.outputs)
        return f"<Graph {self.name}: {n_in} input{'s' * (n_in != 1)}, {n_ops} op{'s' * (n_ops != 1)} -> {outs or 'no outputs'}>"

    def _repr_svg_(self) -> str:
        """Jupyter draws a graph (Graphviz when installed, else a built-in layout; see fusec.ir.dot)."""
        from fusec.ir.dot import graph_svg

        return graph_svg(self)
