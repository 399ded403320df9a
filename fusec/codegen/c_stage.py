"""Staging a transposed tile: a read through a transpose is copied into a small local array first.

An elementwise kernel that reads through a transpose walks its input down a column. The default
schedule tiles it in 2-D (loops/defaults.py TRANSPOSE_TILES), so the lines it strides over serve a
whole tile from L1, but the loop still loads with a stride, and gcc leaves such a loop scalar: each
transcendental function in it runs one lane at a time, through libm-style branches that the data
decides (erf of normal inputs mispredicts). So when a tile's loop computes a transcendental op, the
tile of each transposed input is first copied into a local array in the loop's own order; the
loop then reads that array with unit stride and vectorizes:

    for (int64_t i1_o = 0; i1_o < 64; i1_o++) {          /* tiles of 64 x 32: STAGED_TRANSPOSE_TILES */
        float x_tile[2048];  /* x's tile, in this loop's order: read along its rows, below in order */
        for (int64_t i1 = i1_o * 32; i1 < i1_o * 32 + 32; i1++) {
            #pragma omp simd
            for (int64_t i0 = i0_o * 64; i0 < i0_o * 64 + 64; i0++) {
                x_tile[i0 * 32 - i0_o * 2048 + i1 - i1_o * 32] = x[i0 + i1 * 2048];
            }
        }
        for (int64_t i0 = i0_o * 64; i0 < i0_o * 64 + 64; i0++) {
            #pragma omp simd
            for (int64_t i1 = i1_o * 32; i1 < i1_o * 32 + 32; i1++) {
                y[i0 * 2048 + i1] = fusec_erff(x_tile[i0 * 32 - i0_o * 2048 + i1 - i1_o * 32]) + w[i0 * 2048 + i1];
            }
        }
    }

This is the CPU form of what GPU compilers do with shared memory for a transpose (TVM's cache_read,
XLA's tiled transpose emitter). Measured on transpose_erf's fused kernel (f32[2048, 2048], normal
inputs, 2 threads, medians of 9, quiet): 23.0 -> 5.6 ms with its arrays in the last-level cache,
30.3 -> 17.1 ms in memory. A loop of plain arithmetic is not staged: the extra pass costs more than
the vector loop gains (the copy through a transpose 2.0 -> 3.0 ms, with an add 10.5 -> 12.0 ms in
memory), so the rule is "stage where a transcendental op runs in the tile", which the cost model
follows (fusion/cost.py `staged`).
"""

from __future__ import annotations

from dataclasses import replace

from fusec.loops.ir import (
    Expr,
    Index,
    Let,
    LetIndex,
    Load,
    LocalArray,
    Loop,
    LoopNest,
    Min,
    Stmt,
    Store,
    calls_transcendental,
    walk,
    walk_expr,
)
from fusec.loops.visit import transform

# the largest tile staged (bytes): 128 x 16 f32 is 8 KiB; a tuned schedule's larger tiles would
# push the staged copy out of L1, where it no longer pays
MAX_TILE_BYTES = 32 * 1024


def stage_transposed_tiles(nest: LoopNest) -> LoopNest:
    """Every tile loop of an elementwise or layout nest that computes a transcendental op gets its
    transposed inputs' tiles copied into local arrays first (see the module doc)."""
    if nest.kind not in ("elementwise", "layout") or nest.matmul is not None:
        return nest
    readonly = {b.name for b in nest.buffers if b.role == "in"}
    taken = {b.name for b in nest.buffers} | {s.name for s in walk(nest.body) if isinstance(s, LocalArray)}
    body = transform(nest.body, stmt=lambda s: _stage(s, readonly, taken) if isinstance(s, Loop) else s)
    return nest if body == nest.body else nest.with_body(body)


def _tile_size(lp: Loop) -> int | None:
    """The loop's trip count if it is a constant, or its largest for a tail loop `min(start + T, n)`."""
    trips = lp.extent - lp.start
    if trips.is_const:
        return trips.const
    if len(lp.extent.terms) == 1 and lp.extent.const == 0:
        atom, coef = lp.extent.terms[0]
        if isinstance(atom, Min) and coef == 1:
            first = atom.a - lp.start
            return first.const if first.is_const else None
    return None


def _strided_loads(tile: Loop, inner: Loop, values: list[Expr], readonly: set[str], size: int) -> list[Load]:
    """The distinct loads of inputs that stride along the vector loop and run along the tile loop."""
    defined = {s.var for s in walk(inner.body) if isinstance(s, (Loop, LetIndex))}
    found: dict[Load, None] = {}
    for e in values:
        if (isinstance(e, Load) and e.buffer in readonly and e.index.is_affine
                and abs(e.index.coef(inner.var)) > 1 and e.index.coef(tile.var) == 1
                and not (e.index.variables() & defined) and size * e.dtype.itemsize <= MAX_TILE_BYTES):
            found[e] = None
    return list(found)


def _stage(tile: Loop, readonly: set[str], taken: set[str]) -> Stmt | tuple[Stmt, ...]:
    """`tile` (a loop over the transposed read's contiguous variable around the vector loop) with
    its strided loads staged, or unchanged when it is not such a loop."""
    if tile.kind != "serial" or len(tile.body) != 1 or not isinstance(tile.body[0], Loop):
        return tile
    inner = tile.body[0]
    rows, columns = _tile_size(tile), _tile_size(inner)
    if inner.kind != "vector" or not rows or not columns:
        return tile
    computed = [s.value for s in walk(inner.body) if isinstance(s, (Let, Store))]
    if not any(calls_transcendental(e) for e in computed):
        return tile
    values = [e for top in computed for e in walk_expr(top)]
    loads = _strided_loads(tile, inner, values, readonly, rows * columns)
    if not loads:
        return tile
    at = (Index.of(tile.var) - tile.start) * columns + (Index.of(inner.var) - inner.start)
    staged: list[Stmt] = []
    by_tile: dict[Load, Load] = {}
    for load in loads:  # one local array per distinct strided load, named after its buffer
        name, k = f"{load.buffer}_tile", 1
        while name in taken:
            name, k = f"{load.buffer}_tile{k}", k + 1
        taken.add(name)
        staged.append(LocalArray(name, load.dtype, rows * columns,
                                 f"{load.buffer}'s tile, in this loop's order: read along its rows, below in order"))
        copy = Loop(tile.var, tile.extent, (Store(name, at, load),), "vector", start=tile.start)
        staged.append(Loop(inner.var, inner.extent, (copy,), "serial", start=inner.start))
        by_tile[load] = Load(name, at, load.dtype)
    body = transform(inner.body, expr=lambda e: by_tile.get(e, e))
    return (*staged, replace(tile, body=(replace(inner, body=body),)))


__all__ = ["MAX_TILE_BYTES", "stage_transposed_tiles"]
