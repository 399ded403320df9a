"""The default schedule of each kernel kind, and the sizes measured for it.

A schedule (fusec/loops/schedule.py) says how to restructure a nest; this module says which one a
kernel gets when nothing else (a tuned record, an explicit override) does: tiles sized for the
NumPy backend's per-call cost or the C backend's parallel loop, BLAS row tiles for a matmul, and a
row of accumulators for a reduction that keeps its innermost axis (loops/interchange.py).
Separate from schedule.py because these are measured choices, not transformations.
"""

from __future__ import annotations

import math

from fusec.loops.expr import Load, calls_transcendental, walk_expr
from fusec.loops.interchange import column_var, default_acc_row
from fusec.loops.ir import AccInit, LoopNest, stmt_exprs, walk
from fusec.loops.schedule import Schedule

# elements per block the NumPy backend aims for: big enough to amortise Python's per-call cost,
# small enough that a block's temporaries stay in the L2 cache
NUMPY_BLOCK_ELEMENTS = 32768  # measured on the 2-core machine: 8K-128K blocks, 32K best overall
NUMPY_MATMUL_TILE_ELEMENTS = 1 << 18
NUMPY_MIN_PARALLEL_TILES = 4  # fewer tiles than this run on the calling thread
# the C backend's parallel tile loop: 16K elements (64 KiB of f32) per iteration of the parallel loop
C_BLOCK_ELEMENTS = 16384
# bytes of matmul result per BLAS call. Measured on 2 cores: tiles of 4 MiB (BLAS, then the epilogue on the
# hot tile) were 1.5-2x slower than one BLAS call followed by one epilogue pass while OpenMP's idle
# threads spun; with them asleep (runtime/threads.py), 1-16 MiB tiles measured 1.09-1.12x NumPy's
# matmul alone, one call 1.12x (examples/06_mlp.fg, quiet, 2026-11-30). So tiles are large: typical
# outputs run as one BLAS call and one epilogue, in place in the output.
MATMUL_TILE_BYTES = 64 << 20
# a read through a transpose walks its input down a column: tiles of 128 x 16 points (the
# transposed read's contiguous variable x the innermost one) let the 16 columns' cache lines
# serve all 128 rows of a tile from L1. Measured on transpose_erf (f32[2048, 2048], 2 threads,
# medians of 9, quiet): the copy through a transpose 14.6 -> 1.9 ms, with the add 15.0 -> 4.8 ms,
# with erf computed in the strided loop 56.5 -> 16.0 ms; 64x32 and 256x16 within 15%, 16x16 slower
TRANSPOSE_TILES = (128, 16)
# a tile the C backend stages (one that computes a transcendental op: codegen/c_stage.py) is copied
# in a loop of its own, whose short runs wait for memory with nothing else to do, while the loop
# that computes reads the other arrays: squarer tiles give those longer runs. Measured on
# transpose_erf's staged kernel (normal inputs, 2 threads, medians of 9): 128 x 16 4.5 ms, 64 x 32
# 3.55, 32 x 64 3.65, 16 x 128 4.9 with its arrays in the last-level cache; 10.75, 9.6, 9.6 and
# 10.3 ms in memory
STAGED_TRANSPOSE_TILES = (64, 32)


def transposed_var(nest: LoopNest) -> str | None:
    """The kept variable along which an elementwise or layout nest's read through a transpose is
    contiguous: a load that strides along the innermost kept variable and runs along this one with
    unit stride. None when every load streams along the innermost variable, and for reductions and
    matmuls."""
    kept = [d.var for d in nest.dims if not d.reduced]
    if nest.kind not in ("elementwise", "layout") or nest.matmul is not None or len(kept) < 2:
        return None
    inner = kept[-1]
    for st in walk(nest.body):
        for top in stmt_exprs(st):
            for e in walk_expr(top):
                if isinstance(e, Load) and abs(e.index.coef(inner)) > 1:
                    along = [v for v in kept[:-1] if e.index.coef(v) == 1]
                    if along:
                        return along[-1]
    return None


def computes_transcendental(nest: LoopNest) -> bool:
    """Whether the nest computes a transcendental op (exp, erf, tanh, ...: its row in the op table)."""
    return any(calls_transcendental(top) for st in walk(nest.body) for top in stmt_exprs(st))


def transposed_tiles(nest: LoopNest, var: str) -> tuple[int, ...]:
    """TRANSPOSE_TILES (STAGED_TRANSPOSE_TILES if the nest computes a transcendental op, which the
    C backend stages) over `var` and the innermost kept variable; a point wide on every other kept
    variable, so each tile is one 2-D block."""
    kept = [d for d in nest.dims if not d.reduced]
    rows, columns = STAGED_TRANSPOSE_TILES if computes_transcendental(nest) else TRANSPOSE_TILES
    tiles = [min(rows, d.extent) if d.var == var else 1 for d in kept]
    tiles[-1] = min(columns, kept[-1].extent)
    return tuple(tiles)


def default_matmul_rows(nest: LoopNest) -> int:
    """Output rows per BLAS call: as many as fit MATMUL_TILE_BYTES of result (at least one)."""
    assert nest.matmul is not None
    info = nest.matmul
    extents = {d.var: d.extent for d in nest.dims}
    out_vars = tuple(info.batch) + (info.i, info.j)
    acc = next(s for s in walk(nest.body) if isinstance(s, AccInit) and s.name == info.acc)
    row_bytes = max(math.prod(extents[v] for v in out_vars[1:]) * acc.dtype.itemsize, 1)
    return max(1, min(extents[out_vars[0]], MATMUL_TILE_BYTES // row_bytes))


def default_schedule(nest: LoopNest, backend: str = "numpy") -> Schedule:
    """A sensible schedule for each group kind.

    NumPy: tile the kept dimensions so that one block holds about NUMPY_BLOCK_ELEMENTS elements
    (reductions: whole rows, as many rows as fit; matmul: row tiles of the output). C: tiles of
    C_BLOCK_ELEMENTS as a parallel outer loop, with the innermost loops vectorized.
    """
    kept = [d for d in nest.dims if not d.reduced]
    row = math.prod(d.extent for d in nest.dims if d.reduced)
    block = C_BLOCK_ELEMENTS if backend == "c" else NUMPY_BLOCK_ELEMENTS
    target = NUMPY_MATMUL_TILE_ELEMENTS if nest.kind == "matmul" else block
    if nest.kind == "matmul":
        row = 1  # the k dimension is not part of the output tile
    tiles = [0] * len(kept)
    inner = max(row, 1)
    # walk from the innermost kept dim outwards; the first dim whose rows overflow the target is tiled
    for pos in range(len(kept) - 1, -1, -1):
        ext = kept[pos].extent
        if inner * ext > target or pos == 0:
            tiles[pos] = max(1, min(ext, target // max(inner, 1)))
            for outer in range(pos):
                tiles[outer] = 1
            break
        inner *= ext
    if backend == "c" and column_var(nest) is not None:
        return Schedule((), parallel=True, vectorize=True, acc_row=default_acc_row(nest))
    if backend == "c" and (var := transposed_var(nest)) is not None:
        return Schedule(transposed_tiles(nest, var), parallel=True, vectorize=True)
    if backend == "c":
        rows = default_matmul_rows(nest) if nest.matmul is not None else 0
        return Schedule(tuple(tiles), parallel=bool(kept), vectorize=True, matmul_rows=rows)
    # NumPy: tiles on a thread pool when there are enough of them (not for matmul: BLAS has its own threads)
    first = next((k for k, t in enumerate(tiles) if t > 0), None)
    trips = -(-kept[first].extent // tiles[first]) if first is not None else 0
    return Schedule(tuple(tiles), parallel=nest.kind != "matmul" and trips >= NUMPY_MIN_PARALLEL_TILES)
