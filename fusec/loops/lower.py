"""Lowering: one fusion group -> one LoopNest.

The idea is to *pull points back*. A group's iteration space is a box of loop variables; to know a
member's value at a point, ask for its operands' values at the points they broadcast or re-index
from. Elementwise ops keep the point, broadcasting sets size-1 axes to 0, layout ops re-index
(transpose permutes, slice scales and shifts, reshape goes through the flat offset, concat picks a
piece), and a group input is finally a Load at the flat offset of its point. So a whole fused group
becomes scalar expressions of loads, and nothing in between is ever stored.

Then:
* reductions become accumulators, one pass over the reduced axes per level of dependence
  (softmax: max, then sum of exp(x - max), then the outputs), inside a loop over the kept axes;
* values that do not depend on the reduced axes move out of the inner loops (loop-invariant code);
* repeated subexpressions become named temporaries (Let);
* adjacent axes that every access walks contiguously merge into one (a 4096x4096 chain is one loop
  over 16,777,216 elements), and size-1 axes disappear.
"""

from __future__ import annotations

import keyword
import math
import re
from collections import Counter
from dataclasses import replace

import numpy as np

from fusec.errors import FusecError
from fusec.fusion.plan import Group
from fusec.ir.dtypes import BOOL, F64, DType, TensorType, broadcast_shapes, normalize_axis, promote
from fusec.ir.graph import Graph, Node
from fusec.ir.ops import reduce_axes, slice_bounds, squeeze_axes, transpose_perm
from fusec.loops.ir import (
    AccInit,
    AccUpdate,
    Buffer,
    Const,
    Dim,
    Expr,
    Index,
    IndexValue,
    Let,
    Load,
    Loop,
    LoopNest,
    MatmulInfo,
    Op,
    Piecewise,
    Ref,
    Stmt,
    Store,
    expr_refs,
    expr_variables,
    floordiv,
    mod,
    walk_expr,
)
from fusec.loops.visit import transform

REDUCE_OPS = ("sum", "mean", "max", "min", "prod")
ELEMENTWISE_KINDS = ("elementwise", "broadcast", "layout")
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


class _Names:
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


# ----------------------------------------------------------------------------------------------
# the lowering of one group


def lower_group(graph: Graph, group: Group, name: str | None = None, inplace: dict[str, str] | None = None) -> LoopNest:
    """Lower `group` to a LoopNest. `inplace` maps an output value to the input whose memory it reuses."""
    return _Lowering(graph, group, name, inplace or {}).run()


class _Lowering:
    def __init__(self, graph: Graph, group: Group, name: str | None, inplace: dict[str, str]):
        self.g = graph
        self.group = group
        self.members = set(group.nodes)
        self.names = _Names()
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
            return Load(buf.name, flat_index(point, buf.shape), buf.dtype)
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

    # -------------------------------------------------------------------------- the nest
    def run(self) -> LoopNest:
        self.check_contract()
        self.make_buffers()
        kind = self.group.kind
        if kind == "matmul":
            dims, body, mm = self.lower_matmul()
        elif kind == "reduce":
            dims, body, mm = self.lower_reduce()
        else:
            dims, body, mm = self.lower_elementwise()
        buffers = []
        for b in self.buffers.values():
            if b not in buffers:
                buffers.append(b)
        comment = f"group {self.group.id} ({kind}):\n" + "\n".join(member_line(self.g, n) for n in self.group.nodes)
        nest = LoopNest(self.kernel_name, kind, tuple(buffers), tuple(dims), tuple(body), mm, comment)
        if kind != "matmul":
            nest = simplify_dims(nest)
        check_inplace(nest)
        return nest

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

    def lower_elementwise(self):
        shape = self.output_type().shape
        dims = self.new_vars(shape)
        point = tuple(Index.of(d.var) for d in dims)
        sinks = self.stores(list(self.group.outputs), lambda o: point)
        body = self.block([Store(b, i, v) for b, i, v in sinks])
        return dims, _nest_loops(dims, body), None

    def lower_reduce(self):
        reds = [n for n in self.group.nodes if self.g.node(n).kind == "reduce"]
        if not reds:
            raise LoweringError(f"reduce group {self.group.id} holds no reduction")
        first = self.g.node(reds[0])
        S = self.g.type_of(first.args[0]).shape
        axes = reduce_axes(first.attrs["axis"], len(S))
        for r in reds:
            node = self.g.node(r)
            if node.op not in REDUCE_OPS:
                raise LoweringError(f"group {self.group.id}: unknown reduction {node.op}")
            if self.g.type_of(node.args[0]).shape != S or reduce_axes(node.attrs["axis"], len(S)) != axes:
                raise LoweringError(f"group {self.group.id}: reductions over different shapes or axes ('{reds[0]}' and '{r}')")
        dims = self.new_vars(S, reduced=axes)
        kept = [d for d in dims if not d.reduced]
        red = [d for d in dims if d.reduced]
        full = tuple(Index.of(d.var) for d in dims)
        keep_point = tuple(Index() if d.reduced else Index.of(d.var) for d in dims)
        nokeep_point = tuple(Index.of(d.var) for d in kept)
        red_vars = {d.var for d in red}
        n_reduced = math.prod(d.extent for d in red)

        # one accumulator per reduction; a reduction's level is 1 + the deepest level it reads
        level: dict[str, int] = {}
        passes: dict[int, list] = {}
        row_lets: dict[int, list[Let]] = {}
        acc_of: dict[str, str] = {}
        for r in reds:
            node = self.g.node(r)
            value = self.value_at(node.args[0], full)
            refs = expr_refs(value)
            lv = 1 + max((level[q] for q in level if {acc_of[q], self.results[q].name} & refs), default=0)
            # accumulator dtype: the result's, except an integer mean, which sums in f64 as NumPy does
            if node.op == "mean":
                acc_dt = value.dtype if value.dtype.is_float else F64
            else:
                acc_dt = node.type.dtype
            # name the accumulator after its value, or after its op for a compiler temporary (%3 -> sum3)
            acc = self.names.take(f"{node.op}{r[1:]}" if r.startswith("%") else f"acc_{r}")
            acc_of[r] = acc
            op = "sum" if node.op == "mean" else node.op
            passes.setdefault(lv, []).append((AccInit(acc, op, acc_dt), value, r))
            result: Expr = Ref(acc, acc_dt)
            if node.op == "mean":
                result = Op("div", (result, Const(float(n_reduced), acc_dt)), acc_dt)
            result = self.cast(result, node.type.dtype)
            if not isinstance(result, Ref):
                let = Let(self.names.take(r), result)
                row_lets.setdefault(lv, []).append(let)
                result = Ref(let.name, node.type.dtype)
            self.results[r] = result
            self.result_points[r] = keep_point if node.attrs["keepdims"] else nokeep_point
            level[r] = lv
        S_outputs = [o for o in self.group.outputs if self.g.type_of(o).shape == S]
        row_outputs = [o for o in self.group.outputs if o not in S_outputs]

        def row_point(o: str) -> Point:
            shp = self.g.type_of(o).shape
            keep_shape = tuple(1 if d.reduced else d.extent for d in dims)
            if shp == keep_shape:
                return keep_point
            if shp == tuple(d.extent for d in kept):
                return nokeep_point
            raise LoweringError(f"group {self.group.id}: output '{o}' of shape {list(shp)} is neither the iteration shape nor a reduced shape")

        # build every pass's values first (they fill self.memo), then hoist and name temporaries
        pass_updates = {
            lv: [(init, AccUpdate(init.name, init.op, self.cast(v, init.dtype))) for init, v, _ in items]
            for lv, items in passes.items()
        }
        row_sinks = [Store(b, i, v) for b, i, v in self.stores(row_outputs, row_point)]
        final_sinks = [Store(b, i, v) for b, i, v in self.stores(S_outputs, lambda o: full)]

        # hoist row-invariant work (no reduced variable) out of the inner passes
        hoisted: dict[Expr, Let] = {}
        ready_after = {Ref(acc_of[r], self.results[r].dtype).name: level[r] for r in reds}
        for lets in row_lets.values():
            for let in lets:
                ready_after[let.name] = max(ready_after[r] for r in expr_refs(let.value) if r in ready_after)

        def hoist(e: Expr) -> Expr:
            return self.hoist_invariant(e, red_vars, hoisted)

        for lv in pass_updates:
            pass_updates[lv] = [(i, replace(u, value=hoist(u.value))) for i, u in pass_updates[lv]]
        row_sinks = [replace(s, value=hoist(s.value)) for s in row_sinks]
        final_sinks = [replace(s, value=hoist(s.value)) for s in final_sinks]
        hoisted_by_level: dict[int, list[Let]] = {}
        for let in hoisted.values():
            lv = max((ready_after.get(r, 0) for r in expr_refs(let.value)), default=0)
            ready_after[let.name] = lv
            hoisted_by_level.setdefault(lv, []).append(let)

        row_body: list[Stmt] = []
        red_dims = red
        for lv in sorted(set(pass_updates) | set(hoisted_by_level) | set(row_lets)):
            if lv in pass_updates:
                row_body += [init for init, _ in pass_updates[lv]]
                inner = self.block([u for _, u in pass_updates[lv]])
                row_body += list(_nest_loops(red_dims, inner))
            lets = row_lets.get(lv, []) + hoisted_by_level.get(lv, [])
            row_body += self.order_lets(lets)
        row_body += self.block(row_sinks)
        if final_sinks:
            row_body += list(_nest_loops(red_dims, self.block(final_sinks)))
        return dims, _nest_loops(kept, tuple(row_body)), None

    def hoist_invariant(self, e: Expr, red_vars: set[str], hoisted: dict[Expr, Let]) -> Expr:
        """Replace the largest subexpressions that do not depend on the reduced variables by Refs."""
        if isinstance(e, (Const, Ref, Load, IndexValue)):
            return e
        if not (expr_variables(e) & red_vars) and expr_refs(e):
            if e not in hoisted:
                hoisted[e] = Let(self.names.take(self.expr_names.get(e, "row")), e)
            return Ref(hoisted[e].name, e.dtype)
        if isinstance(e, Op):
            return replace(e, args=tuple(self.hoist_invariant(a, red_vars, hoisted) for a in e.args))
        if isinstance(e, Piecewise):
            return replace(e, pieces=tuple(self.hoist_invariant(p, red_vars, hoisted) for p in e.pieces))
        return e

    @staticmethod
    def order_lets(lets: list[Let]) -> list[Let]:
        """Lets in an order where each comes after the Lets it reads."""
        done: list[Let] = []
        names = {let.name for let in lets}
        pending = list(lets)
        while pending:
            defined = {d.name for d in done}
            for let in pending:
                if not (expr_refs(let.value) & names) - defined:
                    done.append(let)
                    pending.remove(let)
                    break
            else:  # pragma: no cover - Lets come from a DAG
                raise LoweringError("cyclic temporaries")
        return done

    def lower_matmul(self):
        mms = [n for n in self.group.nodes if self.g.node(n).op == "matmul"]
        if len(mms) != 1:
            raise LoweringError(f"matmul group {self.group.id} holds {len(mms)} matmuls, not one")
        node = self.g.node(mms[0])
        at, bt = (self.g.type_of(a) for a in node.args)
        a2 = (1,) + at.shape if at.rank == 1 else at.shape
        b2 = bt.shape + (1,) if bt.rank == 1 else bt.shape
        batch = broadcast_shapes(a2[:-2], b2[:-2])
        M, K, N = a2[-2], a2[-1], b2[-1]
        dims = self.new_vars(batch, prefix="b")
        di = Dim(self.names.take("i"), M)
        dj = Dim(self.names.take("j"), N)
        dk = Dim(self.names.take("k"), K, True)
        for d in (di, dj, dk):
            self.ranges[d.var] = d.extent
        dims = dims + [di, dj, dk]
        bvars = tuple(Index.of(d.var) for d in dims[: len(batch)])
        iv, jv, kv = Index.of(di.var), Index.of(dj.var), Index.of(dk.var)
        a_point = broadcast_point(bvars + (iv, kv), a2, batch + (M, K))
        b_point = broadcast_point(bvars + (kv, jv), b2, batch + (K, N))
        if at.rank == 1:
            a_point = a_point[-1:]
        if bt.rank == 1:
            b_point = b_point[:-1]
        for a in node.args:
            if a in self.members and self.g.node(a).kind != "layout":
                raise LoweringError(f"matmul group {self.group.id} has a prologue ('{a}'); the contract allows none")
        dt = node.type.dtype
        la = self.value_at(node.args[0], a_point)
        lb = self.value_at(node.args[1], b_point)
        if not (isinstance(la, Load) and isinstance(lb, Load)):
            raise LoweringError(f"matmul group {self.group.id}: operands must be read from memory")
        acc = self.names.take(f"matmul{mms[0][1:]}" if mms[0].startswith("%") else f"acc_{mms[0]}")
        out_point = bvars + ((iv,) if at.rank > 1 else ()) + ((jv,) if bt.rank > 1 else ())
        self.results[mms[0]] = Ref(acc, dt)
        self.result_points[mms[0]] = out_point
        init = AccInit(acc, "sum", dt)
        update = AccUpdate(acc, "sum", Op("mul", (self.cast(la, dt), self.cast(lb, dt)), dt))
        shape = node.type.shape
        for o in self.group.outputs:
            if self.g.type_of(o).shape != shape:
                raise LoweringError(f"matmul group {self.group.id}: output '{o}' is not of the matmul's shape {list(shape)}")
        sinks = [Store(b, i, v) for b, i, v in self.stores(list(self.group.outputs), lambda o: out_point)]
        row = (init, Loop(dk.var, Index.of(K), (update,))) + self.block(sinks)
        info = MatmulInfo(acc, la, lb, tuple(d.var for d in dims[: len(batch)]), di.var, dj.var, dk.var)
        return dims, _nest_loops(dims[:-1], row), info

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


def _fg_name(name: str) -> str:
    """A value's name as the .fg printer spells it (compiler temporaries %3 print as t3)."""
    return "t" + name[1:] if name.startswith("%") else name


def member_line(g: Graph, name: str) -> str:
    """One member of a group in .fg-like form, for the comments of generated code: `t2 = exp(t1)`."""
    node = g.node(name)
    args = []
    for a in node.args:
        arg = g.node(a)
        args.append(repr(arg.attrs["value"]) if arg.op == "const" else _fg_name(a))
    attrs = [f"{k}={v!r}" for k, v in node.attrs.items() if v is not None]
    return f"{_fg_name(name)} = {node.op}({', '.join(args + attrs)})"


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


def _nest_loops(dims: list[Dim], body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
    for d in reversed(dims):
        body = (Loop(d.var, Index.of(d.extent), tuple(body)),)
    return tuple(body)


# ----------------------------------------------------------------------------------------------
# rewriting indices: dropping size-1 axes, merging contiguous ones


def map_indices(stmts: tuple[Stmt, ...], fn) -> tuple[Stmt, ...]:
    """Apply fn to every Index in loads, stores, iota values and concat selectors."""
    return transform(stmts, index=fn)


def all_indices(stmts: tuple[Stmt, ...]) -> list[Index]:
    from fusec.loops.ir import walk as walk_stmts

    out = []
    for s in walk_stmts(stmts):
        if isinstance(s, Store):
            out.append(s.index)
        if isinstance(s, (Store, Let, AccUpdate)):
            for e in walk_expr(s.value):
                if isinstance(e, (Load, IndexValue, Piecewise)):
                    out.append(e.index)
    return out


def _remove_loop(stmts: tuple[Stmt, ...], var: str) -> tuple[Stmt, ...]:
    """The loops over `var` replaced by their bodies."""
    return transform(stmts, stmt=lambda s: s.body if isinstance(s, Loop) and s.var == var else s)


def _set_extent(stmts: tuple[Stmt, ...], var: str, extent: int) -> tuple[Stmt, ...]:
    """The loops over `var` given a constant extent."""
    return transform(stmts, stmt=lambda s: replace(s, extent=Index.of(extent)) if isinstance(s, Loop) and s.var == var else s)


def _affine_in(ix: Index, var: str) -> bool:
    """var appears only as a plain term of ix (not inside a Div, Mod or Min)."""
    for a, _ in ix.terms:
        if not isinstance(a, str) and var in Index(((a, 1),)).variables():
            return False
    return True


def simplify_dims(nest: LoopNest) -> LoopNest:
    """Drop size-1 axes, then merge adjacent axes that every index walks as one contiguous axis."""
    from fusec.loops.ir import substitute

    body, dims = nest.body, list(nest.dims)
    for d in list(dims):
        if d.extent == 1:
            body = _remove_loop(map_indices(body, lambda ix, v=d.var: substitute(ix, {v: Index()})), d.var)
            dims.remove(d)
    merged_any = True
    while merged_any:
        merged_any = False
        for k in range(len(dims) - 1):
            a, b = dims[k], dims[k + 1]
            if a.reduced != b.reduced:
                continue
            ok = True
            for ix in all_indices(body):
                if not (_affine_in(ix, a.var) and _affine_in(ix, b.var)) or ix.coef(a.var) != ix.coef(b.var) * b.extent:
                    ok = False
                    break
            if not ok:
                continue
            # a*B + b becomes one variable (named a) running over A*B
            def merge(ix: Index, a=a, b=b) -> Index:
                cb = ix.coef(b.var)
                rest = Index(tuple((t, c) for t, c in ix.terms if t not in (a.var, b.var)), ix.const)
                return rest + Index.of(a.var) * cb

            body = _set_extent(_remove_loop(map_indices(body, merge), b.var), a.var, a.extent * b.extent)
            dims[k : k + 2] = [Dim(a.var, a.extent * b.extent, a.reduced)]
            merged_any = True
            break
    return replace(nest, dims=tuple(dims), body=body)


def check_inplace(nest: LoopNest) -> None:
    """An inout buffer may only be read at the element being written (so an update in place is safe)."""
    for b in nest.buffers:
        if b.role != "inout":
            continue
        stores = {ix for ix in _store_indices(nest.body, b.name)}
        loads = set()
        from fusec.loops.ir import walk as walk_stmts

        for s in walk_stmts(nest.body):
            if isinstance(s, (Store, Let, AccUpdate)):
                for e in walk_expr(s.value):
                    if isinstance(e, Load) and e.buffer == b.name:
                        loads.add(e.index)
                    if isinstance(e, Piecewise):
                        raise FusecError(f"cannot update '{b.value}' in place: the kernel reads it through a concat")
        if len(stores) != 1 or not loads <= stores:
            raise FusecError(
                f"cannot update '{b.value}' in place with '{b.out_value}': the kernel reads '{b.value}' at other elements than it writes"
            )
        if nest.kind != "elementwise":
            raise FusecError(f"cannot update '{b.value}' in place: only elementwise kernels update in place")


def _store_indices(stmts, buffer: str):
    from fusec.loops.ir import walk as walk_stmts

    return [s.index for s in walk_stmts(stmts) if isinstance(s, Store) and s.buffer == buffer]
