"""Software prefetch in row kernels: the next row's inputs and this row's outputs, while a pass computes.

A reduce kernel walks each row several times. Softmax takes the row's max (loading x from memory),
then exp and sum into a row buffer, then the quotient (storing y); layernorm takes the mean, the
variance, then the output. Only the first pass loads from memory and only the last one stores; while
the passes in between compute, memory sits idle, and the hardware prefetcher does not help across
rows: it stops at a 4 KiB page, which is one row of layernorm's 1024 floats. So one blocked pass
over each row (fusec/loops/blocked.py: a serial loop over blocks of 256 values of the reduced axis)
starts each block with a scalar loop of one prefetch per cache line: that block of the next row of
every input the row loads, and that block of this row of every output the row stores (fetched for
writing, so the store finds its line owned):

    for (int64_t r1_o = 0; r1_o < 16; r1_o++) {
        /* prefetch this block of the next row of x and this row of y */
        for (int64_t r1 = r1_o * 256; r1 < r1_o * 256 + 256; r1 += 16) {
            __builtin_prefetch(&x[r1 + fusec_min_i64(i0 + 1, 4095) * 4096], 0, 2);
            __builtin_prefetch(&y[i0 * 4096 + r1], 1, 2);
        }
        float acc_s_block = 0.0f;
        #pragma omp simd reduction(+:acc_s_block)
        for (int64_t r1 = r1_o * 256; r1 < r1_o * 256 + 256; r1++) {
            ...

The pass is the first blocked one that does not open the row: the pass that opens it streams the
row from memory already, while a later one computes on the row in cache and leaves memory idle
(layernorm: the variance pass, 0.92-0.95x against prefetching in the mean pass; softmax: the exp
pass; rmsnorm has one blocked pass, which gets them). gcc does not vectorize a loop that contains
__builtin_prefetch, hence the loop of its own. The next row is clamped to the last one, so every
address is inside its buffer (FUSEC_AT checks them in sanitize mode). Only accesses that run along the reduced axis with unit stride are prefetched; a
kernel without a blocked pass (rows of at most 256 values) gets none.

Measured on softmax f32[4096, 4096] with a hand-written kernel (2 threads, minimum CPU time of the
master thread over 30 alternating runs, load 6-8): 11.2-11.5 ms -> 8.0-8.4 ms (prefetch and a
multiply by the reciprocal); the prefetch alone 0.79-0.83x.
"""

from __future__ import annotations

from dataclasses import dataclass

from fusec.loops.ir import Index, Load, Loop, LoopNest, Min, Stmt, Store, stmt_exprs, substitute, walk, walk_expr

LINE_BYTES = 64


@dataclass(frozen=True)
class Prefetch:
    """One address per cache line over the vector loop's range: buffer[index], index in its variable."""

    buffer: str
    index: Index
    write: bool


@dataclass(frozen=True)
class BlockPrefetch:
    """The prefetch loop at the top of one blocked pass: it runs over `vector`'s range with `step`."""

    vector: Loop
    step: int
    items: tuple[Prefetch, ...]


def plan_prefetches(nest: LoopNest) -> dict[int, BlockPrefetch]:
    """id(block loop) -> its prefetches, for one blocked pass inside every row loop of a reduce nest."""
    if nest.kind != "reduce":
        return {}
    extents = {d.var: d.extent for d in nest.dims if not d.reduced}
    found: dict[int, BlockPrefetch] = {}

    def visit(stmts: tuple[Stmt, ...], outer: tuple[str, ...]) -> None:
        for s in stmts:
            if not isinstance(s, Loop):
                continue
            first = _prefetching_block(s.body) if s.var in extents else None
            plan = _plan(nest, s, first, outer + (s.var,), extents[s.var]) if first is not None else None
            if plan is not None:
                found[id(first)] = plan
            visit(s.body, outer + (s.var,))

    visit(nest.body, ())
    return found


def _prefetching_block(stmts: tuple[Stmt, ...]) -> Loop | None:
    """The blocked pass of a row's body that prefetches: the first one that does not open the row,
    or the only one."""
    blocks = [s for s in stmts if isinstance(s, Loop) and s.split is not None and s.split.part == "outer"
              and s.kind == "serial" and any(isinstance(v, Loop) and v.kind == "vector" for v in s.body)]
    if not blocks:
        return None
    opening = next(s for s in stmts if isinstance(s, Loop))
    return blocks[1] if blocks[0] is opening and len(blocks) > 1 else blocks[0]


def _plan(nest: LoopNest, row: Loop, block: Loop, outer: tuple[str, ...], rows: int) -> BlockPrefetch | None:
    vector = next(v for v in block.body if isinstance(v, Loop) and v.kind == "vector")
    known = set(outer) | {block.var, vector.var}
    loads: dict[tuple[str, Index], None] = {}
    stores: dict[tuple[str, Index], None] = {}
    for s in walk(row.body):
        if isinstance(s, Store):
            stores[(s.buffer, s.index)] = None
        for e in (x for top in stmt_exprs(s) for x in walk_expr(top)):
            if isinstance(e, Load):
                loads[(e.buffer, e.index)] = None
    buffers = {b.name: b for b in nest.buffers}

    def along_row(name: str, idx: Index) -> bool:
        return (name in buffers and idx.is_affine and idx.coef(vector.var) == 1 and idx.coef(row.var) != 0
                and idx.variables() <= known)

    following = {row.var: Index(((Min(Index.of(row.var) + 1, Index.of(rows - 1)), 1),))}
    items: dict[tuple[str, Index, bool], None] = {}
    for name, idx in loads:
        if along_row(name, idx) and buffers[name].role in ("in", "inout"):
            items[(name, substitute(idx, following), False)] = None
    for name, idx in stores:
        if along_row(name, idx):
            items[(name, idx, True)] = None
    if not items:
        return None
    widest = max(buffers[name].dtype.itemsize for name, _, _ in items)
    prefetches = tuple(Prefetch(name, idx, write) for name, idx, write in items)
    return BlockPrefetch(vector, max(1, LINE_BYTES // widest), prefetches)
