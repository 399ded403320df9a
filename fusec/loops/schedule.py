"""Schedules: pure functions that restructure a loop nest without changing what it computes.

Primitives (each returns a new LoopNest and raises ScheduleError when the change would be illegal):

    split(nest, var, factor)        var -> var_o, var_i with var = var_o*factor + var_i; a tail loop
                                    runs min(factor, extent - var_o*factor) iterations
    reorder(nest, [v1, v2, ...])    permute a band of perfectly nested loops (outermost first)
    tile(nest, v1, v2, f1, f2)      split both, then order v1_o, v2_o, v1_i, v2_i
    vectorize(nest, var)            mark an innermost loop `vector`
    unroll(nest, var)               mark a loop with a small constant trip count `unrolled`
    parallel(nest, var)             mark a loop whose iterations are independent `parallel`
    block_reduction(nest, var, f)   split a loop that carries a float sum or product into blocks of
                                    f iterations, each summed into a partial added to an f64 total
                                    (blocked.py: as accurate as NumPy's pairwise sum)
    interchange_reduction(nest, var, w)
                                    a column reduction in tiles of w kept points with an accumulator
                                    row each, the reduced loops outside, `var` inside and vector
                                    (interchange.py: the inner loop walks memory contiguously)

A `Schedule` is a small frozen record of parameters (what the tuner searches over);
`apply_schedule(nest, schedule)` turns it into primitive calls. `default_schedule` (defaults.py)
picks one per group kind and backend.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fusec.loops import interchange
from fusec.loops.blocked import REDUCE_BLOCK, block_loops, blocked_loop, column_block
from fusec.loops.interchange import column_var
from fusec.loops.ir import (
    AccInit,
    AccUpdate,
    Index,
    LetIndex,
    LocalArray,
    Loop,
    LoopNest,
    Min,
    SplitInfo,
    Stmt,
    Store,
    bounds,
    walk,
)
from fusec.loops.visit import transform


class ScheduleError(Exception):
    """A schedule primitive was asked for something illegal (a bug in the caller, or a bad tuner knob)."""


# ----------------------------------------------------------------------------------------------
# rewriting helpers


def _update_loop(nest: LoopNest, var: str, fn) -> LoopNest:
    """Replace every loop over `var` by fn(loop) (which returns a statement)."""
    found = []

    def visit(s: Stmt) -> Stmt:
        if isinstance(s, Loop) and s.var == var:
            found.append(s)
            return fn(s)
        return s

    body = transform(nest.body, stmt=visit)
    if not found:
        raise ScheduleError(f"{nest.name}: no loop over '{var}'")
    return nest.with_body(body)


def _ranges(nest: LoopNest) -> dict[str, int]:
    """Upper bounds of every loop variable (for simplifying and bounding extents)."""
    r = {d.var: d.extent for d in nest.dims}
    for s in walk(nest.body):
        if isinstance(s, Loop):
            r[s.var] = bounds(s.extent, r)[1]
    return r


def _all_vars(nest: LoopNest) -> set[str]:
    return {s.var for s in walk(nest.body) if isinstance(s, (Loop, LetIndex))}


# ----------------------------------------------------------------------------------------------
# primitives


def split(nest: LoopNest, var: str, factor: int) -> LoopNest:
    if factor < 1:
        raise ScheduleError(f"split factor must be >= 1, got {factor}")
    outer, inner = f"{var}_o", f"{var}_i"
    taken = _all_vars(nest)
    if outer in taken or inner in taken:
        raise ScheduleError(f"{nest.name}: '{var}' is already split")

    def fn(lp: Loop) -> Loop:
        if not lp.extent.is_const:
            raise ScheduleError(f"split of '{var}' needs a loop with a constant extent, not {lp.extent}")
        n = lp.extent.const
        trips = -(-n // factor)
        if n % factor == 0:
            inner_extent = Index.of(factor)
        else:  # the last outer iteration runs a shorter tail
            inner_extent = Index(((Min(Index.of(factor), Index.of(n) - Index.of(outer) * factor), 1),))
        define = LetIndex(var, Index.of(outer) * factor + Index.of(inner))
        inner_loop = Loop(inner, inner_extent, (define,) + lp.body, "serial", SplitInfo(var, factor, "inner"))
        return Loop(outer, Index.of(trips), (inner_loop,), lp.kind if lp.kind == "parallel" else "serial",
                    SplitInfo(var, factor, "outer"))

    return _update_loop(nest, var, fn)


def _band(stmts: tuple[Stmt, ...], first: str) -> list[Loop]:
    """The perfectly nested loops starting at `first` (a body may hold LetIndex besides the loop)."""
    for s in walk(stmts):
        if isinstance(s, Loop) and s.var == first:
            band = [s]
            while True:
                inner = [b for b in band[-1].body if not isinstance(b, LetIndex)]
                if len(inner) == 1 and isinstance(inner[0], Loop):
                    band.append(inner[0])
                else:
                    return band
    return []


def reorder(nest: LoopNest, order: list[str]) -> LoopNest:
    """Permute perfectly nested loops; `order` lists them outermost first (any band order)."""
    order = list(order)
    if len(set(order)) != len(order):
        raise ScheduleError(f"reorder lists a loop twice: {order}")
    if not order:
        return nest
    # find the band: the outermost of the named loops starts it
    all_loops = [s for s in walk(nest.body) if isinstance(s, Loop)]
    named = list({lp.var: lp for lp in reversed(all_loops) if lp.var in order}.values())[::-1]
    if len(named) != len(order):
        missing = set(order) - {lp.var for lp in named}
        raise ScheduleError(f"{nest.name}: no loop over {sorted(missing)}")
    band = _band(nest.body, named[0].var)
    band_vars = [lp.var for lp in band]
    if set(order) - set(band_vars):
        raise ScheduleError(f"{nest.name}: loops {order} are not perfectly nested (band: {band_vars})")
    band = band[: max(band_vars.index(v) for v in order) + 1]
    if {lp.var for lp in band} != set(order):
        raise ScheduleError(f"{nest.name}: reorder must name every loop of the band {[lp.var for lp in band]}")
    by_var = {lp.var: lp for lp in band}
    lets = [s for lp in band for s in lp.body if isinstance(s, LetIndex)]
    innermost_body = tuple(s for s in band[-1].body if not isinstance(s, LetIndex))
    # an extent may only use variables of loops outside it
    for pos, v in enumerate(order):
        if by_var[v].extent.variables() & set(order[pos:]):
            raise ScheduleError(f"reorder would put '{v}' outside the loop its extent {by_var[v].extent} uses")
    body: tuple[Stmt, ...] = tuple(lets) + innermost_body
    for v in reversed(order):
        body = (replace(by_var[v], body=body),)

    def fn(_: Loop) -> Stmt:
        return body[0]

    return _update_loop(nest, band[0].var, fn)


def tile(nest: LoopNest, v1: str, v2: str, f1: int, f2: int) -> LoopNest:
    nest = split(split(nest, v1, f1), v2, f2)
    return reorder(nest, [f"{v1}_o", f"{v2}_o", f"{v1}_i", f"{v2}_i"])


def _is_reduction_loop(lp: Loop) -> bool:
    """True if the loop updates an accumulator declared outside it."""
    declared = {s.name for s in walk(lp.body) if isinstance(s, AccInit)}
    return any(isinstance(s, AccUpdate) and s.name not in declared for s in walk(lp.body))


def vectorize(nest: LoopNest, var: str) -> LoopNest:
    def fn(lp: Loop) -> Loop:
        if any(isinstance(s, Loop) for s in lp.body):
            raise ScheduleError(f"only an innermost loop can be vectorized, and '{var}' holds loops")
        if lp.kind == "parallel":
            raise ScheduleError(f"'{var}' is already parallel")
        return replace(lp, kind="vector")

    return _update_loop(nest, var, fn)


MAX_UNROLL = 64


def unroll(nest: LoopNest, var: str) -> LoopNest:
    ranges = _ranges(nest)

    def fn(lp: Loop) -> Loop:
        hi = bounds(lp.extent, ranges)[1]
        if hi > MAX_UNROLL:
            raise ScheduleError(f"'{var}' runs up to {hi} iterations; unroll needs at most {MAX_UNROLL} (split it first)")
        if lp.kind == "parallel":
            raise ScheduleError(f"'{var}' is parallel and cannot also be unrolled")
        return replace(lp, kind="unrolled")

    return _update_loop(nest, var, fn)


def parallel(nest: LoopNest, var: str) -> LoopNest:
    for s in walk(nest.body):
        if isinstance(s, Loop) and s.kind == "parallel" and s.var != var:
            raise ScheduleError(f"'{s.var}' is already parallel; nested parallel loops are not supported")

    def fn(lp: Loop) -> Loop:
        if _is_reduction_loop(lp):
            raise ScheduleError(f"'{var}' carries a reduction and cannot run in parallel")
        derived = {var} | {s.var for s in walk(lp.body) if isinstance(s, LetIndex) and var in s.value.variables()}
        local = {s.name for s in walk(lp.body) if isinstance(s, LocalArray)}  # each iteration has its own
        for s in walk(lp.body):
            if isinstance(s, Store) and s.buffer not in local and not (s.index.variables() & derived):
                raise ScheduleError(f"iterations of '{var}' all write {s.buffer}[{s.index}]; they are not independent")
        if lp.kind in ("vector", "unrolled"):
            raise ScheduleError(f"'{var}' is already {lp.kind}")
        return replace(lp, kind="parallel")

    return _update_loop(nest, var, fn)


def block_reduction(nest: LoopNest, var: str, factor: int) -> LoopNest:
    """Each loop over `var` that carries a float sum or product, in blocks of `factor` iterations."""
    if factor < 1:
        raise ScheduleError(f"a reduction block must hold at least 1 iteration, got {factor}")
    if f"{var}_o" in _all_vars(nest) or f"{var}_i" in _all_vars(nest):
        raise ScheduleError(f"{nest.name}: '{var}' is already split")
    blocked = block_loops(nest, var, factor)
    if blocked is None:
        raise ScheduleError(f"{nest.name}: no loop over '{var}' carries a float sum or product")
    return blocked


def interchange_reduction(nest: LoopNest, var: str, width: int) -> LoopNest:
    """The reduce nest's innermost kept loop `var` in tiles of `width` points, each with an
    accumulator row, the reduced loops outside and `var` inside as vector loops (interchange.py)."""
    if width < 1:
        raise ScheduleError(f"an accumulator row must hold at least 1 point, got {width}")
    if column_var(nest) != var:
        raise ScheduleError(f"{nest.name}: '{var}' is not the innermost kept loop of a column reduction")
    return interchange.interchange_reduction(nest, var, width)


# ----------------------------------------------------------------------------------------------
# the schedule record


@dataclass(frozen=True)
class Schedule:
    """The knobs of one kernel.

    tiles:     a tile size for each kept (not reduced) dimension, outermost first; 0 leaves the
               dimension whole. The tiled dimensions' outer loops walk tile by tile; everything
               inside is one block (the NumPy backend computes a block with whole-array operations).
    parallel:  run the outermost tile loop in parallel (threads), or the outermost loop where that is legal
    vectorize: mark the innermost loops vector
    unroll:    split each innermost loop by this factor and unroll it (1: no unrolling)
    order:     the loop order of the kept dimensions, outermost first, as positions in the kept
               list (a permutation); () keeps the lowering's order. Tile loops follow it too.
               Any order of kept loops is legal (each point writes its own elements); the kept
               loops must be perfectly nested to be reordered, else ScheduleError.
    matmul_rows: a matmul computed by a library call (the C backend's BLAS, see matmul.py): the
               output rows (steps of the outermost output variable) per call, each followed by the
               fused epilogue on that tile, scheduled with the knobs above; 0: as many rows as fit
               MATMUL_TILE_BYTES (defaults.py). A backend that runs the scalar loop form ignores it.
    threads:   threads of the parallel loop (0: all cores; OpenMP `num_threads`)
    simdlen:   the vector width in elements asked of vector loops (0: the compiler's choice; `simdlen`)
    stream:    non-temporal (streaming) stores of the output buffers in vector loops (`nontemporal`)
               These three are code-generation hints: apply_schedule records them in the nest's
               `meta` ("threads", "simdlen", "stream") and the C backend turns them into pragma
               clauses; a backend without such pragmas ignores them.
    reduce_block: values of a float sum or product added up in the accumulator's dtype before the
               block's partial joins an f64 total (blocked.py): long reductions stay as accurate as
               NumPy's pairwise sum. The C backend splits the reduced loop (`block_reduction`); the
               NumPy backend, whose np.sum is already pairwise along a contiguous axis, accumulates
               in f64 where NumPy would otherwise add more than this many values one by one.
               0 keeps every accumulator whole (one value after another: inaccurate beyond ~1e4 values).
    acc_row:   a column reduction (a reduce kernel that keeps its innermost axis, interchange.py): the
               kept points per tile of the innermost kept loop, each tile with one accumulator per point,
               the reduced loops outside and the kept loop inside, vectorized; `tiles`, `unroll` and
               `vectorize` do not apply then (its inner loops are vector loops). 0: the reduced loops
               inside, one accumulator at a time. The C backend's default sets it; the NumPy backend
               ignores it (its reductions are whole-array calls).
    """

    tiles: tuple[int, ...] = ()
    parallel: bool = False
    vectorize: bool = False
    unroll: int = 1
    order: tuple[int, ...] = ()
    matmul_rows: int = 0
    threads: int = 0
    simdlen: int = 0
    stream: bool = False
    reduce_block: int = REDUCE_BLOCK
    acc_row: int = 0

    def __str__(self) -> str:
        text = (f"tiles={list(self.tiles)} parallel={self.parallel} vectorize={self.vectorize} "
                f"unroll={self.unroll}")
        text += f" order={list(self.order)}" if self.order else ""
        text += f" matmul_rows={self.matmul_rows}" if self.matmul_rows else ""
        text += f" threads={self.threads}" if self.threads else ""
        text += f" simdlen={self.simdlen}" if self.simdlen else ""
        text += " stream=True" if self.stream else ""
        text += f" acc_row={self.acc_row}" if self.acc_row else ""
        return text + (f" reduce_block={self.reduce_block}" if self.reduce_block != REDUCE_BLOCK else "")

    @property
    def hints(self) -> dict:
        """The code-generation hints that are set (what apply_schedule puts in the nest's meta)."""
        found = {"threads": self.threads, "simdlen": self.simdlen, "stream": self.stream}
        return {k: v for k, v in found.items() if v}


def kept_dims(nest: LoopNest) -> list[str]:
    return [d.var for d in nest.dims if not d.reduced]


def apply_schedule(nest: LoopNest, schedule: Schedule, trace: list | None = None) -> LoopNest:
    """The nest with the schedule's primitives applied in order.

    trace: a list that receives (step, nest after it) for each primitive applied, where step names
    the primitive and its arguments, e.g. "split(i0, 64)" (`fusec compile F --show schedule`).
    """

    def step(primitive, *args) -> LoopNest:
        result = primitive(nest, *args)
        if trace is not None:
            shown = ", ".join(f"[{', '.join(a)}]" if isinstance(a, list) else str(a) for a in args)
            trace.append((f"{primitive.__name__}({shown})", result))
        return result

    kept = kept_dims(nest)
    if len(schedule.tiles) > len(kept):
        raise ScheduleError(f"{nest.name} has {len(kept)} kept dimensions, the schedule tiles {len(schedule.tiles)}")
    loop_order = kept
    if schedule.order:
        if sorted(schedule.order) != list(range(len(kept))):
            raise ScheduleError(f"{nest.name}: order {list(schedule.order)} is not a permutation of {len(kept)} kept dimensions")
        loop_order = [kept[i] for i in schedule.order]
        if loop_order != kept:
            nest = step(reorder, loop_order)
    if schedule.acc_row:
        # a column reduction: blocks for long float sums first (the partial and the total become rows
        # too), then the interchange; the band's outermost loop (the tile loop, if alone) is parallel
        var = column_var(nest)
        if var is None:
            raise ScheduleError(f"{nest.name}: acc_row applies to a reduction that keeps its innermost axis only")
        blocking = blocked_loop(nest, column_block(schedule.reduce_block))
        if blocking is not None:
            nest = step(block_reduction, *blocking)
        nest = step(interchange_reduction, var, schedule.acc_row)
        if schedule.parallel and len(nest.body) == 1 and isinstance(nest.body[0], Loop):  # else one tile, alone
            nest = step(parallel, nest.body[0].var)
        return replace(nest, meta={**nest.meta, **schedule.hints}) if schedule.hints else nest
    tiled = [(v, t) for v, t in zip(kept, schedule.tiles) if t > 0]
    tiled.sort(key=lambda vt: loop_order.index(vt[0]))  # tile loops in the chosen loop order
    for v, t in tiled:
        nest = step(split, v, t)
    if tiled:
        outers = [f"{v}_o" for v, _ in tiled]
        band = [lp.var for lp in _band(nest.body, outers[0])]
        rest = [v for v in band if v not in outers]
        if outers + rest != band:
            nest = step(reorder, outers + rest)
    if schedule.parallel:
        # the outermost loop whose iterations are independent (a 1-iteration axis that every
        # iteration writes, as in a matrix-vector product, is not); none at all leaves the nest serial
        for v in [f"{v}_o" for v, _ in tiled] or loop_order:
            try:
                nest = step(parallel, v)
                break
            except ScheduleError:
                continue
    blocking = blocked_loop(nest, schedule.reduce_block)
    if blocking is not None:
        nest = step(block_reduction, *blocking)
    # dict.fromkeys: a reduce nest has several sweeps over the same variable, and a primitive
    # applies to every loop of that name at once, so each name is handled once
    innermost = list(dict.fromkeys(lp.var for lp in (s for s in walk(nest.body) if isinstance(s, Loop))
                                   if not any(isinstance(b, Loop) for b in lp.body) and lp.kind == "serial"))
    if schedule.unroll > 1:  # loops with a constant trip count (a tail loop is left rolled)
        extents = {lp.var: lp.extent for lp in (s for s in walk(nest.body) if isinstance(s, Loop))}
        for v in [v for v in innermost if extents[v].is_const]:
            nest = step(split, v, schedule.unroll)
            nest = step(unroll, f"{v}_i")
        innermost = [f"{v}_o" if extents[v].is_const else v for v in innermost]
    if schedule.vectorize and schedule.unroll <= 1:
        for v in innermost:
            nest = step(vectorize, v)
    if schedule.hints:
        nest = replace(nest, meta={**nest.meta, **schedule.hints})
    return nest


def loop_schedule(schedule: Schedule, backend: str) -> Schedule:
    """The part of `schedule` a backend applies to the nest as primitives.

    The NumPy backend computes a block with whole-array calls: vectorizing and unrolling mean nothing
    to it, and it splits no reduction into blocks (np.sum is pairwise along a contiguous axis; the
    backend reads `reduce_block` itself to accumulate in f64 where NumPy would add one by one).
    """
    if backend == "numpy":
        return replace(schedule, vectorize=False, unroll=1, reduce_block=0, acc_row=0)
    return schedule


def schedule_or_fallback(nest: LoopNest, schedule: Schedule, trace: list | None = None) -> LoopNest:
    """Apply the schedule; if its legality checks reject it, drop parallelism, then everything.

    A rejected schedule is a planning mistake, not a user error: the kernel still runs correctly,
    only slower (serial, or unscheduled). `trace` receives the steps of the attempt that applied.
    """
    for attempt in (schedule, replace(schedule, parallel=False), Schedule()):
        steps: list = []
        try:
            result = apply_schedule(nest, attempt, steps)
        except ScheduleError:
            continue
        if trace is not None:
            trace.extend(steps)
        return result
    return nest
