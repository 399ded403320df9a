"""A matmul nest as library calls on tiles of rows plus a generated epilogue: the BLAS schedule.

A matmul group's nest (lower.py) is a scalar reduction over k followed by the fused epilogue:

    for i in [0, 512):
      for j in [0, 768):
        f32 matmul0 = 0.0  # sum
        for k in [0, 768):
          matmul0 += h[i*768 + k] * wq[j + k*768]
        t0[i*768 + j] = matmul0 * 0.125

Scheduled for BLAS (`Schedule.matmul_rows`), the output's outermost variable is cut into tiles of
`rows` rows. For each tile a library call computes the matmul into the output buffer itself when an
output has the result's dtype and shape and is stored only at the result's element (`direct`), else
into a scratch tile `mm`; then the *epilogue nest* runs on the tile: the nest above without the
accumulator and the k loop, reading the result back (`matmul0 = t0[i*768 + j]`). The epilogue is
an ordinary elementwise nest, scheduled and simplified like any other; when the matmul result is
stored unchanged the simplifier leaves it empty and no epilogue runs at all.

An operand read through transposes and reshapes (`q @ transpose(k)`) has an affine index: BLAS
reads it in place through its strides. A reshape that merges a transposed axis pair gives `k / 64`
and `k % 64` terms instead; the backend copies that operand once per call into its matmul layout.

A causal mask makes part of the work unneeded (fusec/loops/masks.py): when the result is read only
inside a band of (i, j), or the left operand is zero outside a band of (i, k), each tile is cut into
blocks of `block` rows of i and each block's call computes only the columns j it needs and reads
only the columns k that can be nonzero: about half of a causal attention's two S x S matmuls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from fusec.loops.defaults import default_matmul_rows, default_schedule
from fusec.loops.ir import (
    AccInit,
    Buffer,
    Dim,
    Div,
    Index,
    IndexValue,
    Let,
    Load,
    Loop,
    LoopNest,
    MatmulInfo,
    Mod,
    Stmt,
    Store,
    bounds,
    floordiv,
    mod,
    stmt_exprs,
    walk,
    walk_expr,
)
from fusec.loops.masks import Band, MatmulMasks
from fusec.loops.schedule import Schedule, ScheduleError, schedule_or_fallback
from fusec.loops.simplify import simplify
from fusec.loops.visit import transform


@dataclass(frozen=True)
class MatmulTiles:
    """What the loops layer decided for a matmul on BLAS; a backend only makes the calls.

    rows:      output rows per call (the last tile has `tail` rows, 0 if none)
    direct:    the output buffer the call writes, which the epilogue updates in place (None: scratch `mm`)
    epilogues: rows -> the scheduled, simplified epilogue nest for a tile of that many rows, or None
               when there is nothing to do after the call (the result is stored unchanged)
    coefs:     elements each epilogue buffer's pointer advances per row of the tiled variable
    needed:    the result is read only inside this band of (i, j): other columns need no call
    support:   the left operand is zero outside this band of (i, k): other columns need not be read
    block:     rows of i per call when a band applies (0: one call per tile)
    """

    nest: LoopNest
    rows: int
    tail: int
    direct: str | None
    epilogues: dict[int, LoopNest | None]
    coefs: dict[str, int]
    needed: Band | None = None
    support: Band | None = None
    block: int = 0

    @property
    def info(self) -> MatmulInfo:
        assert self.nest.matmul is not None
        return self.nest.matmul

    @property
    def extents(self) -> dict[str, int]:
        return {d.var: d.extent for d in self.nest.dims}

    @property
    def out_vars(self) -> tuple[str, ...]:
        return tuple(self.info.batch) + (self.info.i, self.info.j)

    @property
    def row_elements(self) -> int:
        return math.prod(self.extents[v] for v in self.out_vars[1:])

    def describe(self) -> str:
        where = f"into {self.direct}" if self.direct else "into a scratch tile mm"
        after = "then the epilogue below on each tile" if any(self.epilogues.values()) else \
            "no epilogue: the result is stored unchanged"
        text = f"BLAS on tiles of {self.rows} x {self.row_elements} results, written {where}; {after}"
        for side, load in (("left", self.info.a), ("right", self.info.b)):
            if not split_quotients(load.index, self.extents).is_affine:
                text += f"\n  the {side} operand ({load.buffer}, through a reshape of transposed axes) is copied into its matmul layout"
        if self.block:
            ext = self.extents
            i, j, k = self.info.i, self.info.j, self.info.k
            work = 1.0
            if self.needed is not None:
                text += f"\n  blocks of {self.block} rows compute only the columns the mask keeps ({self.needed})"
                work *= self.needed.fraction(ext[i], ext[j], self.block)
            if self.support is not None:
                text += f"\n  blocks of {self.block} rows read only the left operand's nonzero columns ({self.support})"
                work *= self.support.fraction(ext[i], ext[k], self.block)
            text += f"\n  {work:.0%} of the multiply-adds are done"
        return text


def matmul_tiles(nest: LoopNest, schedule: Schedule, trace: list | None = None,
                 masks: MatmulMasks | None = None) -> MatmulTiles:
    """Split a matmul nest into BLAS calls on tiles of rows and a scheduled epilogue per tile size.

    trace: receives (step, nest) for the split and for every schedule primitive and simplifier pass
    applied to the epilogue of a full tile.
    masks: what the graph says the matmul may skip (fusec.loops.masks.matmul_masks)
    """
    info = nest.matmul
    if info is None:
        raise ScheduleError(f"{nest.name} is not a matmul nest")
    extents = {d.var: d.extent for d in nest.dims}
    outer = (tuple(info.batch) + (info.i,))[0]
    rows = max(1, min(schedule.matmul_rows or default_matmul_rows(nest), extents[outer]))
    if _reads_index(nest, outer):
        rows = extents[outer]  # an epilogue computing from the tiled index (a mask) runs on one whole tile
    tail = extents[outer] % rows
    direct = _direct_output(nest)
    epilogues: dict[int, LoopNest | None] = {}
    for r in sorted({rows, tail} - {0}, reverse=True):
        epi = epilogue_nest(nest, r, direct)
        steps = trace if r == rows else None
        if steps is not None:
            steps.append((f"matmul_tiles(rows={rows})", epi))
        epi_schedule = replace(default_schedule(epi, backend="c"), parallel=schedule.parallel,
                               vectorize=schedule.vectorize, unroll=schedule.unroll)
        scheduled = simplify(schedule_or_fallback(epi, epi_schedule, steps), steps)
        epilogues[r] = scheduled if scheduled.body else None
    coefs = {b.name: _tile_coef(nest, b.name, outer, direct) for b in epilogue_nest(nest, rows, direct).buffers}
    needed, support = (masks.needed, masks.support) if masks else (None, None)
    block = mask_block(extents[info.i]) if needed is not None or support is not None else 0
    return MatmulTiles(nest, rows, tail, direct, epilogues, coefs, needed, support, block)


def mask_block(rows: int) -> int:
    """Rows of i per BLAS call under a band: about 8 blocks (a causal matmul then does 56% of the
    work; 16 blocks would do 53% with twice the calls), a multiple of 16, between 32 and 256."""
    eighth = -(-rows // 8)
    return max(32, min(256, -(-eighth // 16) * 16))


def result_index(nest: LoopNest) -> Index:
    """Row-major flat index of the matmul result over (batch..., i, j)."""
    info = nest.matmul
    assert info is not None
    extents = {d.var: d.extent for d in nest.dims}
    index, stride = Index(), 1
    for v in reversed(tuple(info.batch) + (info.i, info.j)):
        index = index + Index.of(v) * stride
        stride *= extents[v]
    return index


def split_quotients(x: Index, ranges: dict[str, int]) -> Index:
    """x with every quotient and remainder reduced to its smallest argument: (768i + k) / 64 is
    12i + k / 64, and (12i + k / 64) % 12 is k / 64 when k < 768; an operand read through a reshape
    of transposed axes then splits into one strided axis per quotient (fusec.codegen.c_backend)."""
    out = Index((), x.const)
    for a, c in x.terms:
        if isinstance(a, (Div, Mod)):
            arg = split_quotients(a.arg, ranges)
            divisible = Index._make({t: k for t, k in arg.terms if k % a.divisor == 0}, arg.const - arg.const % a.divisor)
            rest = arg - divisible
            if bounds(rest, ranges)[0] < 0 or bounds(divisible, ranges)[0] < 0:
                out = out + Index(((type(a)(arg, a.divisor), 1),)) * c
            elif isinstance(a, Div):
                out = out + (Index._make({t: k // a.divisor for t, k in divisible.terms}, divisible.const // a.divisor)
                             + floordiv(rest, a.divisor, ranges)) * c
            else:
                out = out + mod(rest, a.divisor, ranges) * c
        else:
            out = out + Index(((a, 1),)) * c
    return out


def _reads_index(nest: LoopNest, var: str) -> bool:
    """True when a value is computed from loop variable `var` itself (iota), not only addressed by it."""
    return any(isinstance(sub, IndexValue) and var in sub.index.variables()
               for s in walk(nest.body) for e in stmt_exprs(s) for sub in walk_expr(e))


def _acc_dtype(nest: LoopNest):
    assert nest.matmul is not None
    return next(s.dtype for s in walk(nest.body) if isinstance(s, AccInit) and s.name == nest.matmul.acc)


def _direct_output(nest: LoopNest) -> str | None:
    """An output buffer BLAS can write the result into: the result's dtype and size, stored only at
    the result's own element."""
    target = result_index(nest)
    size = math.prod(d.extent for d in nest.dims if not d.reduced)
    for b in nest.buffers:
        if b.role != "out" or b.dtype != _acc_dtype(nest) or b.size != size:
            continue
        stores = [st for st in walk(nest.body) if isinstance(st, Store) and st.buffer == b.name]
        if stores and all(st.index == target for st in stores):
            return b.name
    return None


def epilogue_body(nest: LoopNest, direct: str | None) -> tuple[Stmt, ...]:
    """The nest without the accumulator and the k loop, reading the result from memory instead."""
    info = nest.matmul
    assert info is not None
    value = Load(direct or "mm", result_index(nest), _acc_dtype(nest))

    def visit(s: Stmt) -> Stmt | tuple[Stmt, ...]:
        if isinstance(s, AccInit) and s.name == info.acc:
            return Let(info.acc, value)
        if isinstance(s, Loop) and s.var == info.k:
            return ()
        return s

    return transform(nest.body, stmt=visit)


def epilogue_nest(nest: LoopNest, rows: int, direct: str | None) -> LoopNest:
    """The epilogue over `rows` steps of the outer variable (addresses relative to the tile's start)."""
    info = nest.matmul
    assert info is not None
    outer = (tuple(info.batch) + (info.i,))[0]
    body = transform(epilogue_body(nest, direct),
                     stmt=lambda s: replace(s, extent=Index.of(rows)) if isinstance(s, Loop) and s.var == outer else s)
    used = {name for s in walk(body) for name, _ in _accesses(s)}
    kept = tuple(replace(b, role="inout") if b.name == direct else b
                 for b in nest.buffers if b.name not in (info.a.buffer, info.b.buffer) or b.name in used)
    if direct is None:
        extents = {d.var: d.extent for d in nest.dims}
        shape = (rows,) + tuple(extents[v] for v in (tuple(info.batch) + (info.i, info.j))[1:])
        kept = (Buffer("mm", "matmul result tile", _acc_dtype(nest), shape, "in"),) + kept
    dims = tuple(Dim(d.var, rows if d.var == outer else d.extent) for d in nest.dims if d.var != info.k)
    return LoopNest(f"{nest.name}_epilogue_{rows}", "elementwise", kept, dims, body,
                    comment=f"epilogue of {nest.name} on a tile of {rows} rows of the matmul result")


def _tile_coef(nest: LoopNest, buffer: str, outer: str, direct: str | None) -> int:
    """Elements a buffer's pointer advances per step of the outer variable (0: not tiled)."""
    coefs = set()
    for s in walk(epilogue_body(nest, direct)):
        for name, index in _accesses(s):
            if name == buffer:
                if any(not isinstance(a, str) and outer in Index(((a, 1),)).variables() for a, _ in index.terms):
                    raise ScheduleError("the epilogue indexes the tiled axis non-affinely")
                coefs.add(index.coef(outer))
    if len(coefs) > 1:
        raise ScheduleError(f"buffer {buffer} is read with different strides along the tiled axis")
    return coefs.pop() if coefs else 0


def _accesses(s: Stmt) -> list[tuple[str, Index]]:
    """(buffer, index) of every load and store directly in statement s."""
    found: list[tuple[str, Index]] = [(s.buffer, s.index)] if isinstance(s, Store) else []
    for e in stmt_exprs(s):
        found += [(sub.buffer, sub.index) for sub in walk_expr(e) if isinstance(sub, Load)]
    return found
