"""The lowering of one group, part 1: the state, and pulling points back to scalar expressions.

A `Lowering` holds what one group's lowering knows: its buffers, the loop variables and their
ranges, the names taken, and the results of its reductions and matmul. `value_at(name, point)` is
the heart of lowering: a member's value at a point of the iteration space is its op applied to its
operands' values at the points they broadcast or re-index from, and a group input's value is a Load
at the flat offset of its point. `block` then turns stored values into straight-line code, with
repeated subexpressions named once (Let).

The kinds of group build their loops from these (lower.py for elementwise, lower_reduce.py,
lower_matmul.py); this module knows nothing of loops over reduced axes.
"""

from __future__ import annotations

import keyword
import re
from collections import Counter
from dataclasses import replace

import numpy as np

from fusec.errors import FusecError
from fusec.fusion.plan import Group
from fusec.ir.dtypes import BOOL, DType, TensorType, normalize_axis, promote
from fusec.ir.graph import Graph, Node
from fusec.ir.ops import slice_bounds, squeeze_axes, transpose_perm
from fusec.loops.ir import (
    Buffer,
    Const,
    Dim,
    Expr,
    Index,
    IndexValue,
    Let,
    Load,
    Loop,
    Op,
    Piecewise,
    Ref,
    Stmt,
    floordiv,
    fold_digits,
    mod,
)

# names the generated code itself uses; no buffer or temporary may take them
RESERVED = {"np", "lo", "hi", "n", "out", "min", "max", "abs", "range", "float", "int", "bool"}


class LoweringError(Exception):
    """The group breaks the group contract: a bug in the planner (or in lowering), not a user mistake."""


Point = tuple[Index, ...]


def row_major_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides = []
    s = 1
    for d in reversed(shape):
        strides.append(s)
        s *= d
    return tuple(reversed(strides))


def flat_index(point: Point, shape: tuple[int, ...]) -> Index:
    out = Index()
    for p, s in zip(point, row_major_strides(shape)):
        out = out + p * s
    return out


def broadcast_point(point: Point, from_shape: tuple[int, ...], to_shape: tuple[int, ...]) -> Point:
    """The point of an operand of shape `from_shape` that broadcasts to `point` of `to_shape`."""
    lead = len(to_shape) - len(from_shape)
    return tuple(Index() if d == 1 else point[k + lead] for k, d in enumerate(from_shape))


class Names:
    """Unique identifiers for one nest: buffers, temporaries, accumulators and loop variables."""

    def __init__(self):
        self.used: set[str] = set(RESERVED)

    def take(self, wanted: str) -> str:
        base = re.sub(r"\W", "", wanted.replace("%", "t"))
        if not base or base[0].isdigit():
            base = "t" + base
        if keyword.iskeyword(base):
            base += "_"
        name, k = base, 1
        while name in self.used:
            name = f"{base}_{k}"
            k += 1
        self.used.add(name)
        return name


class Lowering:
    """What the lowering of one group knows, and how it pulls values back to points."""

    def __init__(self, graph: Graph, group: Group, name: str | None, inplace: dict[str, str]):
        self.g = graph
        self.group = group
        self.members = set(group.nodes)
        self.names = Names()
        self.kernel_name = self.names.take(name or f"{graph.name}_k{group.id}")
        self.inplace = inplace
        self.buffers: dict[str, Buffer] = {}  # graph value -> buffer
        self.memo: dict[tuple[str, Point], Expr] = {}
        self.expr_names: dict[Expr, str] = {}  # expression -> the node it computes (to name temporaries)
        self.ranges: dict[str, int] = {}
        self.results: dict[str, Expr] = {}  # reduction / matmul node -> the expression of its result
        self.result_points: dict[str, Point] = {}

    # -------------------------------------------------------------------------- checks and buffers
    def check_contract(self) -> None:
        grp = self.group
        if not grp.nodes:
            raise LoweringError(f"group {grp.id} has no members")
        for n in grp.nodes:
            node = self.g.node(n)
            if node.kind == "leaf":
                raise LoweringError(f"group {grp.id}: '{n}' is an input or constant, not an op")
            if node.opdef.is_composite:
                raise LoweringError(f"group {grp.id}: composite op {node.op} ('{n}') must be expanded before lowering")
        if grp.kind not in ("elementwise", "layout", "reduce", "matmul"):
            raise LoweringError(f"group {grp.id} of kind {grp.kind!r} cannot be lowered to a loop nest")
        if not grp.outputs:
            raise LoweringError(f"group {grp.id} has no outputs")

    def make_buffers(self) -> None:
        donated = {}
        for out, inp in self.inplace.items():
            if out not in self.group.outputs or inp not in self.group.inputs:
                continue
            if self.g.type_of(out) != self.g.type_of(inp):
                raise FusecError(f"cannot update '{inp}' in place with '{out}': {self.g.type_of(inp)} vs {self.g.type_of(out)}")
            donated[inp] = out
        for v in self.group.inputs:
            t = self.g.type_of(v)
            role = "inout" if v in donated else "in"
            self.buffers[v] = Buffer(self.names.take(v), v, t.dtype, t.shape, role, donated.get(v, ""))
        for v in self.group.outputs:
            if v in donated.values():
                inp = next(i for i, o in donated.items() if o == v)
                self.buffers[v] = self.buffers[inp]
                continue
            t = self.g.type_of(v)
            self.buffers[v] = Buffer(self.names.take(v), v, t.dtype, t.shape, "out")

    # -------------------------------------------------------------------------- pulling points back
    def value_at(self, name: str, point: Point) -> Expr:
        key = (name, point)
        if key not in self.memo:
            e = self._value_at(name, point)
            self.memo[key] = e
            if name in self.members:
                self.expr_names.setdefault(e, name)
        return self.memo[key]

    def _value_at(self, name: str, point: Point) -> Expr:
        node = self.g.node(name)
        if node.op == "const":
            return Const(node.attrs["value"], node.type.dtype)
        if name not in self.members:
            if name not in self.buffers:
                raise LoweringError(f"group {self.group.id} reads '{name}', which is neither a member nor one of its inputs")
            buf = self.buffers[name]
            return Load(buf.name, fold_digits(flat_index(point, buf.shape), self.ranges), buf.dtype)
        if name in self.results:  # a reduction or the matmul: its accumulator, read on its own row
            # along a size-1 axis every index is 0, however it is written
            same = all(p == q or d == 1 for p, q, d in zip(point, self.result_points[name], node.type.shape))
            if not same:
                raise LoweringError(
                    f"group {self.group.id}: '{name}' is read at [{', '.join(map(str, point))}], not on its own row "
                    f"[{', '.join(map(str, self.result_points[name]))}]"
                )
            return self.results[name]
        return self.apply(node, point)

    def apply(self, node: Node, point: Point) -> Expr:
        op, shape = node.op, node.type.shape
        args = node.args
        if node.kind == "elementwise":
            vals = [self.value_at(a, broadcast_point(point, self.g.type_of(a).shape, shape)) for a in args]
            return self.elementwise(node, vals)
        if op == "broadcast_to":
            return self.value_at(args[0], broadcast_point(point, self.g.type_of(args[0]).shape, shape))
        if op == "iota":
            return IndexValue(point[normalize_axis(node.attrs["axis"], len(shape))], node.type.dtype)
        src = self.g.type_of(args[0]) if args else None
        if op == "transpose":
            perm = transpose_perm(node.attrs, src.rank)
            inner = [Index()] * src.rank
            for k, p in enumerate(perm):
                inner[p] = point[k]
            return self.value_at(args[0], tuple(inner))
        if op == "expand_dims":
            axis = normalize_axis(node.attrs["axis"], src.rank + 1)
            return self.value_at(args[0], point[:axis] + point[axis + 1 :])
        if op == "squeeze":
            axes = squeeze_axes(node.attrs, src)
            it = iter(point)
            return self.value_at(args[0], tuple(Index() if k in axes else next(it) for k in range(src.rank)))
        if op == "slice":
            axis, start, _stop, step = slice_bounds(node.attrs, src)
            inner = list(point)
            inner[axis] = point[axis] * step + start
            return self.value_at(args[0], tuple(inner))
        if op == "reshape":
            if src.size == 0:  # nothing is ever read from an empty tensor
                return self.value_at(args[0], tuple(Index() for _ in src.shape))
            flat = flat_index(point, shape)
            in_shape = src.shape
            inner = []
            for d, s in zip(in_shape, row_major_strides(in_shape)):
                inner.append(mod(floordiv(flat, s, self.ranges), d, self.ranges))
            return self.value_at(args[0], tuple(inner))
        if op == "concat":
            axis = normalize_axis(node.attrs["axis"], len(shape))
            bounds, pieces, offset = [0], [], 0
            for a in args:
                t = self.g.type_of(a)
                inner = list(point)
                inner[axis] = point[axis] - offset
                v = self.value_at(a, tuple(inner))
                pieces.append(self.cast(v, node.type.dtype))
                offset += t.shape[axis]
                bounds.append(offset)
            return Piecewise(point[axis], tuple(bounds), tuple(pieces), node.type.dtype)
        raise LoweringError(f"group {self.group.id}: {op} ('{node.name}') cannot be fused into a {self.group.kind} loop nest")

    @staticmethod
    def cast(e: Expr, dtype: DType) -> Expr:
        if e.dtype == dtype:
            return e
        if isinstance(e, Const):  # fold: the interpreter would cast the constant the same way
            with np.errstate(all="ignore"):
                v = np.asarray(e.value, dtype=e.dtype.numpy).astype(dtype.numpy).item()
            return Const(v, dtype)
        return Op("cast", (e,), dtype)

    def elementwise(self, node: Node, vals: list[Expr]) -> Expr:
        op, dt = node.op, node.type.dtype
        if "comparison" in node.opdef.families:  # operands promoted to one dtype, the result is bool
            common = promote(vals[0].dtype, vals[1].dtype)
            args = tuple(self.cast(v, common) for v in vals)
        elif op == "where":
            args = (self.cast(vals[0], BOOL), self.cast(vals[1], dt), self.cast(vals[2], dt))
        elif op == "cast":
            return self.cast(vals[0], dt)
        else:
            args = tuple(self.cast(v, dt) for v in vals)
        attrs = tuple(sorted(node.attrs.items())) if node.opdef.attrs else ()  # as the op's row declares them
        return Op(op, args, dt, attrs)

    def new_vars(self, shape: tuple[int, ...], prefix: str = "i", reduced: tuple[int, ...] = ()) -> list[Dim]:
        dims = []
        for k, d in enumerate(shape):
            p = "r" if k in reduced else prefix
            dims.append(Dim(self.names.take(f"{p}{k}"), d, k in reduced))
        for d in dims:
            self.ranges[d.var] = d.extent
        return dims

    def output_type(self) -> TensorType:
        types = {self.g.type_of(o).shape for o in self.group.outputs}
        if len(types) != 1:
            raise LoweringError(f"group {self.group.id} ({self.group.kind}) has outputs of different shapes: {sorted(types)}")
        return self.g.type_of(self.group.outputs[0])

    def stores(self, outputs: list[str], point_of) -> list[tuple[str, Index, Expr]]:
        out = []
        for o in outputs:
            buf = self.buffers[o]
            point = point_of(o)
            value = self.cast(self.value_at(o, point), buf.dtype)
            out.append((buf.name, flat_index(point, buf.shape), value))
        return out

    # -------------------------------------------------------------------------- temporaries
    def block(self, sinks: list) -> tuple[Stmt, ...]:
        """Straight-line code for sinks (Store / AccUpdate): repeated subexpressions become Lets."""
        counts: Counter = Counter()
        for s in sinks:
            _count(s.value, counts)
        shared = {e for e, c in counts.items() if c > 1 and isinstance(e, (Op, Piecewise))}
        if any(b.role == "inout" for b in self.buffers.values()):
            # updating in place: compute every stored value before the first store overwrites an input
            shared |= {s.value for s in sinks if isinstance(s.value, (Op, Piecewise))}
        # a stored value that another sink also uses is computed once
        lets: dict[Expr, Let] = {}
        out: list[Stmt] = []

        def rewrite(e: Expr) -> Expr:
            if isinstance(e, Op):
                new = replace(e, args=tuple(rewrite(a) for a in e.args))
            elif isinstance(e, Piecewise):
                new = replace(e, pieces=tuple(rewrite(p) for p in e.pieces))
            else:
                return e
            if e in shared:
                if e not in lets:
                    lets[e] = Let(self.names.take(self.expr_names.get(e, "t")), new)
                    out.append(lets[e])
                return Ref(lets[e].name, e.dtype)
            return new

        rewritten = [replace(s, value=rewrite(s.value)) for s in sinks]
        return tuple(out + rewritten)


def _count(e: Expr, counts: Counter) -> None:
    counts[e] += 1
    if counts[e] > 1:
        return  # its operands are counted once per distinct use of the shared value
    if isinstance(e, Op):
        for a in e.args:
            _count(a, counts)
    elif isinstance(e, Piecewise):
        for p in e.pieces:
            _count(p, counts)


def nest_loops(dims: list[Dim], body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
    """`body` inside one loop per dim, the first dim outermost."""
    for d in reversed(dims):
        body = (Loop(d.var, Index.of(d.extent), tuple(body)),)
    return tuple(body)
