"""Blocked reductions: long float sums as accurate as NumPy's pairwise sum, and still vectorized.

A loop that folds n values into one f32 accumulator rounds every addition relative to the running
sum, so its error grows like n * eps: a mean of a million squares was off by 3e-4 (issue 10), where
NumPy, which sums pairwise (blocks of 128 values in 8 accumulators, then a tree), is off by 1e-7.
`Schedule.reduce_block` (B, default REDUCE_BLOCK) splits such a loop into blocks of B values. Each
block is summed in f32 by the vector loop, as before (every SIMD lane sums B / lanes values), and
the block's partial is added to a float64 total, whose rounding is negligible at any length:

    f64 acc_s_total = 0.0  # sum
    for r1_o in [0, 16):
      f32 acc_s_block = 0.0  # sum
      vector for r1_i in [0, 256):
        r1 = r1_o*256 + r1_i
        acc_s_block += exp(x[i0*4096 + r1] - acc_m)
      acc_s_total += f64(acc_s_block)
    acc_s = f32(acc_s_total)

So the error of the whole sum is that of one block (about B / lanes + log2(lanes) roundings, 35
for B = 256 and 8 lanes of AVX2), whatever n is; NumPy's is 16 + 3 + log2(n / 128) (32 at 1e6).
Products are blocked the same way (the f64 total never overflows where the f32 blocks did not).
An f64 accumulator keeps its dtype: its blocks are summed into an f64 total of the same name.
Integer and bool accumulators are exact (they wrap) and max/min never round: they are left alone.

`blocked_loop(nest, B)` says which reduced loop to split and by how much; `block_loops(nest, var,
factor)` does it (the schedule primitive `block_reduction` in schedule.py checks and calls it).
"""

from __future__ import annotations

import math
from dataclasses import replace

from fusec.ir.dtypes import F64, DType
from fusec.loops.ir import (
    AccInit,
    AccUpdate,
    Index,
    Let,
    LetIndex,
    Loop,
    LoopNest,
    Min,
    Op,
    Ref,
    SplitInfo,
    Stmt,
    walk,
)
from fusec.loops.visit import transform

# values per block. Measured (bench in docs/lowering.md): a block of 256 costs nothing against one
# accumulator, and its error is below NumPy's pairwise sum's (rms 0.93x over 40 sums of 1e6 normals;
# 512: 1.17x, 1024: 1.36x, because each SIMD lane then sums more values in f32)
REDUCE_BLOCK = 256
BLOCKED_OPS = ("sum", "prod")
# A column reduction (interchange.py) adds each accumulator element's values one after another, where
# a row reduction's vector loop spreads a block over its SIMD lanes (8 on AVX2): its blocks hold
# reduce_block // COLUMN_LANES values per element, so each f32 partial adds as many values as a
# lane of a row reduction's block does (32 for the default), and the error bound is the same.
COLUMN_LANES = 8


def column_block(block: int) -> int:
    """Values per block for each accumulator element of a column reduction (0: no blocks)."""
    return max(1, block // COLUMN_LANES) if block > 0 else 0


def wide_dtype(dtype: DType) -> DType:
    """The dtype block partials of `dtype` are added up in."""
    return F64


def is_blocked(init: AccInit) -> bool:
    """An accumulator that rounds (a float sum or product), so blocking makes it more accurate."""
    return init.op in BLOCKED_OPS and init.dtype.is_float


def blocked_loop(nest: LoopNest, block: int) -> tuple[str, int] | None:
    """(reduced loop variable, values per block) for a nest whose float sums or products run longer
    than `block` values; None when none does (or block < 1).

    The reduced loops nest in the order of the nest's reduced dims, the innermost last. The loop
    split is the innermost one at which the values reduced inside it exceed `block`: a long last
    axis is split into blocks of `block` values; short inner axes are kept whole and the loop around
    them is split into blocks of `block // inner` of their runs.
    """
    if block < 1 or not any(is_blocked(s) for s in walk(nest.body) if isinstance(s, AccInit)):
        return None
    inner = 1
    for d in reversed([d for d in nest.dims if d.reduced]):
        if inner * d.extent > block:
            return d.var, max(1, block // inner)
        inner *= d.extent
    return None


def block_loops(nest: LoopNest, var: str, factor: int) -> LoopNest | None:
    """Every loop over `var` that carries a float sum or product, split into blocks of `factor`
    iterations with a partial accumulator per block; None if no loop over `var` carries one."""
    inits = {s.name: s for s in walk(nest.body) if isinstance(s, AccInit)}
    names = _taken(nest)
    totals: dict[str, str] = {}  # accumulator -> its wide total, where the dtype widens

    def take(base: str) -> str:
        name, k = base, 1
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.add(name)
        return name

    def block(lp: Loop) -> Loop | None:
        declared = {s.name for s in walk(lp.body) if isinstance(s, AccInit)}
        carried = list(dict.fromkeys(s.name for s in walk(lp.body) if isinstance(s, AccUpdate)
                                     and s.name not in declared and is_blocked(inits[s.name])))
        if not carried or not lp.extent.is_const or lp.start != Index():
            return None
        n = lp.extent.const
        outer, inner = f"{var}_o", f"{var}_i"
        partial = {acc: take(f"{acc}_block") for acc in carried}
        for acc in carried:
            if wide_dtype(inits[acc].dtype) != inits[acc].dtype:
                totals[acc] = take(f"{acc}_total")
        body = transform(lp.body, stmt=lambda s: replace(s, name=partial[s.name]) if isinstance(s, AccUpdate) and s.name in partial else s)
        if n % factor == 0:
            extent = Index.of(factor)
        else:  # the last block is shorter, as in schedule.split
            extent = Index(((Min(Index.of(factor), Index.of(n) - Index.of(outer) * factor), 1),))
        define = LetIndex(var, Index.of(outer) * factor + Index.of(inner))
        inner_loop = Loop(inner, extent, (define,) + body, lp.kind, SplitInfo(var, factor, "inner"))
        before = tuple(AccInit(partial[acc], inits[acc].op, inits[acc].dtype) for acc in carried)
        after = []
        for acc in carried:
            dt = inits[acc].dtype
            wide = wide_dtype(dt)
            value = Ref(partial[acc], dt) if wide == dt else Op("cast", (Ref(partial[acc], dt),), wide)
            after.append(AccUpdate(totals.get(acc, acc), inits[acc].op, value))
        return Loop(outer, Index.of(math.ceil(n / factor)), before + (inner_loop,) + tuple(after), "serial",
                    SplitInfo(var, factor, "outer"))

    def rebuild(stmts: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
        out: list[Stmt] = []
        for s in stmts:
            if isinstance(s, Loop):
                blocked = block(s) if s.var == var else None
                s = blocked if blocked is not None else replace(s, body=rebuild(s.body))
            out.append(s)
        # an accumulator that widened: its init declares the total, and after the statement that
        # holds its pass, the accumulator comes back in its own dtype, so every reader is unchanged
        result: list[Stmt] = []
        pending: dict[str, AccInit] = {}
        for s in out:
            if isinstance(s, AccInit) and s.name in totals:
                pending[s.name] = s
                s = AccInit(totals[s.name], s.op, wide_dtype(s.dtype))
            result.append(s)
            for acc, init in list(pending.items()):
                if any(isinstance(u, AccUpdate) and u.name == totals[acc] for u in walk((s,))):
                    wide = wide_dtype(init.dtype)
                    result.append(Let(acc, Op("cast", (Ref(totals[acc], wide),), init.dtype)))
                    del pending[acc]
        return tuple(result)

    body = rebuild(nest.body)
    return nest.with_body(body) if body != nest.body else None


def _taken(nest: LoopNest) -> set[str]:
    """Every name of the nest: buffers, loop variables, temporaries and accumulators."""
    names = {b.name for b in nest.buffers} | {d.var for d in nest.dims}
    for s in walk(nest.body):
        if isinstance(s, (Loop, LetIndex)):
            names.add(s.var)
        elif isinstance(s, (Let, AccInit, AccUpdate)):
            names.add(s.name)
    return names
