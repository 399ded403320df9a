"""Nest rewrites the C backend applies after scheduling, before emitting C.

`reuse_row_values`: one transcendental per element in multi-pass row kernels.
`tabulate_invariants`: an expensive value that depends on a few loop variables only is computed once
into a table (rotary embeddings' 10000 ** (-2i/D) over i alone, recomputed for every head and
position otherwise; a scalar powf call also keeps the whole loop from vectorizing).

Softmax lowers to three passes over each row: max, then sum(exp(x - max)), then exp(x - max) / sum.
The second and third passes both compute exp(x - max), and exp is what a softmax kernel spends its
time on. This pass finds such a repeated expensive expression (an op whose row in the op table is
`transcendental`) in two sibling loops over the same row (a sum split into blocks by
`Schedule.reduce_block` counts as one loop over its row: `row_of`), computes it once in the first loop into a
small per-thread row array (`RowArray`, a stack array of at most ROW_ARRAY_BYTES, so it stays in
L1/L2), and makes the second loop read it back.
"""

from __future__ import annotations

import math
from dataclasses import replace

from fusec.ir.ops import OPS
from fusec.loops.ir import (
    AccUpdate,
    Expr,
    Index,
    IndexValue,
    Let,
    LetIndex,
    Load,
    LocalArray,
    Loop,
    LoopNest,
    Op,
    Piecewise,
    Ref,
    Stmt,
    Store,
    calls_transcendental,
    expr_str,
    substitute,
    walk,
    walk_expr,
)
from fusec.loops.visit import map_expr, transform

ROW_ARRAY_BYTES = 64 * 1024


# a local array `name[size]` (C: on the stack of the thread that runs this block); the IR's LocalArray
RowArray = LocalArray
ROW_COMMENT = "a row of values computed once, reused below"


def _rename_var(e: Expr, old: str, new: str) -> Expr:
    """e with loop variable `old` renamed to `new` in every index."""
    return map_expr(e, index=lambda ix: substitute(ix, {old: Index.of(new)}))


def _replace_in_stmts(stmts: tuple[Stmt, ...], target: Expr, by: Expr) -> tuple[Stmt, ...]:
    return transform(stmts, expr=lambda e: by if e == target else e)


def _exprs(stmts: tuple[Stmt, ...]):
    for s in walk(stmts):
        if isinstance(s, (Let, Store, AccUpdate)):
            yield from walk_expr(s.value)


def _defined_inside(stmts: tuple[Stmt, ...]) -> set[str]:
    names = set()
    for s in walk(stmts):
        if isinstance(s, (Let, AccUpdate)):
            names.add(s.name)
        elif isinstance(s, (LetIndex, Loop)):
            names.add(s.var)
    return names


def row_of(lp: Loop) -> tuple[str, int] | None:
    """(row variable, row length) of a loop over a whole row: a plain loop over [0, n), or one split
    into blocks (a reduction in blocks, blocked.py, or an unrolled loop), whose inner loop defines the
    row variable as outer*factor + inner. None for any other loop."""
    if not lp.extent.is_const or lp.start != Index():
        return None
    if lp.split is None or lp.split.part != "outer":
        return lp.var, lp.extent.const
    var, factor = lp.split.of, lp.split.factor
    inner = [s for s in lp.body if isinstance(s, Loop) and s.split == replace(lp.split, part="inner")]
    if len(inner) != 1:
        return None
    extent = inner[0].extent
    if extent.is_const:
        return var, lp.extent.const * factor
    (atom, _), = extent.terms  # the tail form min(factor, n - outer*factor)
    return var, atom.b.const


def _candidate(first: Loop, second: Loop) -> Expr | None:
    """An expensive expression of `first` that `second` recomputes (with its own row variable)."""
    row1, row2 = row_of(first), row_of(second)
    if row1 is None or row2 is None or row1[1] != row2[1]:
        return None
    local = _defined_inside((first,)) | _defined_inside((second,))
    second_exprs = set(_exprs(second.body))
    for e in _exprs(first.body):
        if not (isinstance(e, Op) and OPS[e.op].transcendental):
            continue
        refs = {s.name for s in walk_expr(e) if isinstance(s, Ref)}
        indices = [s.index for s in walk_expr(e) if isinstance(s, (Load, Piecewise))]
        if refs & local or any(v in local - {row1[0]} for ix in indices for v in ix.variables()):
            continue  # depends on something computed inside the loops: not safe to move
        if _rename_var(e, row1[0], row2[0]) in second_exprs:
            return e
    return None


def _store_row(lp: Loop, row: str, e: Expr, name: str) -> Loop:
    """lp with e computed once per element into the row array `name` (in the loop that defines the
    row variable, right after its definition) and read from a temporary where it was computed."""
    value = Ref(f"{name}_value", e.dtype)
    defines = lp.var == row or any(isinstance(s, LetIndex) and s.var == row for s in lp.body)
    if not defines:
        return replace(lp, body=tuple(_store_row(s, row, e, name) if isinstance(s, Loop) else s for s in lp.body))
    lead = tuple(s for s in lp.body if isinstance(s, LetIndex))
    rest = _replace_in_stmts(tuple(s for s in lp.body if not isinstance(s, LetIndex)), e, value)
    return replace(lp, body=lead + (Let(value.name, e), Store(name, Index.of(row), value)) + rest)


def _reuse_in_block(stmts: tuple[Stmt, ...], counter: list[int]) -> tuple[Stmt, ...]:
    stmts = tuple(replace(s, body=_reuse_in_block(s.body, counter)) if isinstance(s, Loop) else s for s in stmts)
    out = list(stmts)
    for a in range(len(out)):
        for b in range(a + 1, len(out)):
            first, second = out[a], out[b]
            if not (isinstance(first, Loop) and isinstance(second, Loop)):
                continue
            e = _candidate(first, second)
            (row1, length), (row2, _) = row_of(first) or ("", 0), row_of(second) or ("", 0)
            if e is None or e.dtype.itemsize * length > ROW_ARRAY_BYTES:
                continue
            name = f"row{counter[0]}"
            counter[0] += 1
            first = _store_row(first, row1, e, name)
            renamed = _rename_var(e, row1, row2)
            second = replace(second, body=_replace_in_stmts(second.body, renamed, Load(name, Index.of(row2), e.dtype)))
            out[a], out[b] = first, second
            out.insert(a, RowArray(name, e.dtype, length, ROW_COMMENT))
            return _reuse_in_block(tuple(out), counter)  # look for more in the rewritten block
    return tuple(out)


def reuse_row_values(nest: LoopNest) -> LoopNest:
    """Compute each repeated expensive row expression once (see the module docstring)."""
    if nest.kind != "reduce":
        return nest
    return nest.with_body(_reuse_in_block(nest.body, [0]))


# ----------------------------------------------------------------------------------------------
# tables of loop-invariant values

TABLE_ELEMENTS = 8192  # at most 32 KiB of f32 per table: computed before the loops, read from L1/L2


def _tabulable(e: Expr, nest: LoopNest, extents: dict[str, int]) -> tuple[str, ...] | None:
    """The iteration variables `e` depends on, if it can be tabulated over them, else None.

    Only values that depend on nothing but those variables qualify: constants, iota, loads of
    buffers the kernel does not write, and ops of them (no temporaries, no accumulators)."""
    if not isinstance(e, Op) or not calls_transcendental(e):
        return None
    readonly = {b.name for b in nest.buffers if b.role == "in"}
    for s in walk_expr(e):
        if isinstance(s, Ref) or (isinstance(s, Load) and s.buffer not in readonly):
            return None
    used = {v for s in walk_expr(e) if isinstance(s, (Load, IndexValue, Piecewise)) for v in s.index.variables()}
    if not used <= set(extents):
        return None  # depends on a loop variable that is not an axis of the iteration space
    order = tuple(d.var for d in nest.dims if d.var in used)
    size = math.prod(extents[v] for v in order)
    if size > TABLE_ELEMENTS or math.prod(extents.values()) < 2 * size:
        return None  # too big to stay in cache, or not recomputed often enough to pay
    return order


def _flat(order: tuple[str, ...], extents: dict[str, int]) -> Index:
    """Row-major offset of (order[0], order[1], ...) in a table of those axes."""
    offset, stride = Index(), 1
    for v in reversed(order):
        offset = offset + Index.of(v) * stride
        stride *= extents[v]
    return offset


def _table_loops(name: str, e: Expr, order: tuple[str, ...], extents: dict[str, int]) -> Stmt:
    body: tuple[Stmt, ...] = (Store(name, _flat(order, extents), e),)
    for depth, v in enumerate(reversed(order)):
        body = (Loop(v, Index.of(extents[v]), body, "vector" if depth == 0 else "serial"),)
    return body[0]


TABLE_SUFFIX = "_table"  # a table's name: the op, this, its number (tanh_table0)


def is_table(name: str) -> bool:
    """Whether a local array is one tabulate_invariants made."""
    head, _, number = name.rpartition(TABLE_SUFFIX)
    return bool(head) and number.isdigit()


def tabulate_invariants(nest: LoopNest) -> LoopNest:
    """Each expensive value that depends on a few iteration variables only (see TABLE_ELEMENTS) is
    computed once, before the loops, into a table indexed by those variables, and read from it."""
    if nest.matmul is not None:
        return nest
    extents = {d.var: d.extent for d in nest.dims}
    tables: dict[Expr, tuple[str, tuple[str, ...]]] = {}

    def visit(e: Expr) -> Expr:
        if e in tables:
            name, order = tables[e]
            return Load(name, _flat(order, extents), e.dtype)
        order = _tabulable(e, nest, extents) if isinstance(e, Op) else None
        if order is None:
            if isinstance(e, Op):
                return replace(e, args=tuple(visit(a) for a in e.args))
            return e
        tables[e] = (f"{e.op}{TABLE_SUFFIX}{len(tables)}", order)
        return visit(e)

    body = transform(nest.body, stmt=lambda st: replace(st, value=visit(st.value)) if isinstance(st, (Let, Store, AccUpdate)) else st)
    if not tables:
        return nest
    prologue: list[Stmt] = []
    for e, (name, order) in tables.items():
        size = math.prod(extents[v] for v in order)
        others = ", ".join(d.var for d in nest.dims if d.var not in order)
        what = expr_str(e)
        what = what if len(what) <= 48 else f"{e.op}(...)"
        prologue.append(RowArray(name, e.dtype, size, f"{what} for every {', '.join(order)}, computed once: "
                                                      f"it does not depend on {others}"))
        prologue.append(_table_loops(name, e, order, extents))
    return nest.with_body(tuple(prologue) + body)
