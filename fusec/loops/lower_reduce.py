"""The lowering of one group, part 2: a reduce group's loops.

One loop over the kept axes; inside it, one pass over the reduced axes per level of dependence
(softmax: max, then the sum of exp(x - max), then the outputs), each reduction an accumulator
(AccInit before its pass, AccUpdate inside). Values that do not depend on the reduced axes are
hoisted out of the passes into row temporaries, placed after the pass whose accumulators they read.

Separate from lower.py because only reduce groups have passes, levels and hoisting.
"""

from __future__ import annotations

import math
from dataclasses import replace

from fusec.ir.dtypes import F64
from fusec.ir.ops import reduce_axes
from fusec.loops.ir import (
    AccInit,
    AccUpdate,
    Const,
    Dim,
    Expr,
    Index,
    IndexValue,
    Let,
    Load,
    Op,
    Piecewise,
    Ref,
    Stmt,
    Store,
    expr_refs,
    expr_variables,
)
from fusec.loops.lower_points import Lowering, LoweringError, Point, nest_loops

REDUCE_OPS = ("sum", "mean", "max", "min", "prod")


def lower_reduce(lw: Lowering) -> tuple[list[Dim], tuple[Stmt, ...], None]:
    reds = [n for n in lw.group.nodes if lw.g.node(n).kind == "reduce"]
    if not reds:
        raise LoweringError(f"reduce group {lw.group.id} holds no reduction")
    first = lw.g.node(reds[0])
    S = lw.g.type_of(first.args[0]).shape
    axes = reduce_axes(first.attrs["axis"], len(S))
    for r in reds:
        node = lw.g.node(r)
        if node.op not in REDUCE_OPS:
            raise LoweringError(f"group {lw.group.id}: unknown reduction {node.op}")
        if lw.g.type_of(node.args[0]).shape != S or reduce_axes(node.attrs["axis"], len(S)) != axes:
            raise LoweringError(f"group {lw.group.id}: reductions over different shapes or axes ('{reds[0]}' and '{r}')")
    dims = lw.new_vars(S, reduced=axes)
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
        node = lw.g.node(r)
        value = lw.value_at(node.args[0], full)
        refs = expr_refs(value)
        lv = 1 + max((level[q] for q in level if {acc_of[q], lw.results[q].name} & refs), default=0)
        # accumulator dtype: the result's, except an integer mean, which sums in f64 as NumPy does
        if node.op == "mean":
            acc_dt = value.dtype if value.dtype.is_float else F64
        else:
            acc_dt = node.type.dtype
        # name the accumulator after its value, or after its op for a compiler temporary (%3 -> sum3)
        acc = lw.names.take(f"{node.op}{r[1:]}" if r.startswith("%") else f"acc_{r}")
        acc_of[r] = acc
        op = "sum" if node.op == "mean" else node.op
        passes.setdefault(lv, []).append((AccInit(acc, op, acc_dt), value, r))
        result: Expr = Ref(acc, acc_dt)
        if node.op == "mean":
            result = Op("div", (result, Const(float(n_reduced), acc_dt)), acc_dt)
        result = lw.cast(result, node.type.dtype)
        if not isinstance(result, Ref):
            let = Let(lw.names.take(r), result)
            row_lets.setdefault(lv, []).append(let)
            result = Ref(let.name, node.type.dtype)
        lw.results[r] = result
        lw.result_points[r] = keep_point if node.attrs["keepdims"] else nokeep_point
        level[r] = lv
    S_outputs = [o for o in lw.group.outputs if lw.g.type_of(o).shape == S]
    row_outputs = [o for o in lw.group.outputs if o not in S_outputs]

    def row_point(o: str) -> Point:
        shp = lw.g.type_of(o).shape
        keep_shape = tuple(1 if d.reduced else d.extent for d in dims)
        if shp == keep_shape:
            return keep_point
        if shp == tuple(d.extent for d in kept):
            return nokeep_point
        raise LoweringError(f"group {lw.group.id}: output '{o}' of shape {list(shp)} is neither the iteration shape nor a reduced shape")

    # build every pass's values first (they fill lw.memo), then hoist and name temporaries
    pass_updates = {
        lv: [(init, AccUpdate(init.name, init.op, lw.cast(v, init.dtype))) for init, v, _ in items]
        for lv, items in passes.items()
    }
    row_sinks = [Store(b, i, v) for b, i, v in lw.stores(row_outputs, row_point)]
    final_sinks = [Store(b, i, v) for b, i, v in lw.stores(S_outputs, lambda o: full)]

    # hoist row-invariant work (no reduced variable) out of the inner passes
    hoisted: dict[Expr, Let] = {}
    ready_after = {Ref(acc_of[r], lw.results[r].dtype).name: level[r] for r in reds}
    for lets in row_lets.values():
        for let in lets:
            ready_after[let.name] = max(ready_after[r] for r in expr_refs(let.value) if r in ready_after)

    def hoist(e: Expr) -> Expr:
        return _hoist_invariant(lw, e, red_vars, hoisted)

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
            inner = lw.block([u for _, u in pass_updates[lv]])
            row_body += list(nest_loops(red_dims, inner))
        lets = row_lets.get(lv, []) + hoisted_by_level.get(lv, [])
        row_body += order_lets(lets)
    row_body += lw.block(row_sinks)
    if final_sinks:
        row_body += list(nest_loops(red_dims, lw.block(final_sinks)))
    return dims, nest_loops(kept, tuple(row_body)), None


def _hoist_invariant(lw: Lowering, e: Expr, red_vars: set[str], hoisted: dict[Expr, Let]) -> Expr:
    """Replace the largest subexpressions that do not depend on the reduced variables by Refs."""
    if isinstance(e, (Const, Ref, Load, IndexValue)):
        return e
    if not (expr_variables(e) & red_vars) and expr_refs(e):
        if e not in hoisted:
            hoisted[e] = Let(lw.names.take(lw.expr_names.get(e, "row")), e)
        return Ref(hoisted[e].name, e.dtype)
    if isinstance(e, Op):
        return replace(e, args=tuple(_hoist_invariant(lw, a, red_vars, hoisted) for a in e.args))
    if isinstance(e, Piecewise):
        return replace(e, pieces=tuple(_hoist_invariant(lw, p, red_vars, hoisted) for p in e.pieces))
    return e


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
