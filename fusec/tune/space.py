"""The search space of one kernel: every distinct, valid Schedule worth measuring.

Knobs (fields of `fusec.loops.schedule.Schedule`), per backend:

    tiles      per kept dimension: 0 (whole), 1 (row by row, outer dimensions only), and the powers of
               two and divisors of the extent whose block fits half of L1, half of L2, and this
               core's share of L3 (sizes read from /sys, else 32 KiB / 512 KiB / 32 MiB); with two
               or more kept dimensions also 16 and 64 (square blocks for transposes). For a row
               reduction the innermost kept tile is the rows per block: 1, 4, 16 and 64 rows too.
    order      loop order of the kept dimensions (every permutation up to 3 dimensions)
    parallel   the outer tile loop runs on threads, or serially
    threads    with parallel: all cores (0), or 2, 4, ... fewer than all (OpenMP num_threads)
    vectorize  `omp simd` on the innermost loops, or instead
    simdlen    with vectorize: the compiler's width, half or twice the machine's lanes (simdlen)
    stream     with vectorize: non-temporal stores of the outputs (nontemporal), or cached stores
    unroll     split the innermost loops by 4 or 8 and unroll them
    reduce_block  values per f32 block of a long float sum or product (64, 256 = the default, 1024),
               whose partials join an f64 total (loops/blocked.py): every value is as accurate as
               NumPy's pairwise sum; values that would generate the same code are one option

The C backend uses all of them; the NumPy backend tiles (its knob is the block size: elements per
whole-array call, 8K to 128K), orders, runs tiles on a thread pool and takes reduce_block (where an
f32 sum that NumPy would add value by value goes to f64); a backend the tuner does not know only
tiles. The values each knob takes come from space_knobs.py. A C matmul group runs on BLAS: its knobs are `matmul_rows`, the output rows per
BLAS call (the default, all rows, halves and quarters: the epilogue runs after each call, so this is
also where the epilogue is split), and whether the epilogue runs in parallel.

A point is checked before anything runs: applied to the nest (`apply_schedule`; a ScheduleError is
illegal), and a hint that would change nothing is invalid (a thread count without a parallel loop,
a vector width or streaming stores without a vector loop that stores an output). Each dropped point
is counted under its reason (`Space.invalid`). Two points that give the same scheduled nest and the
same hints are one candidate. The default schedule is always the first candidate, so each run
measures what an untuned compile gets.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace

from fusec.codegen.base import Backend
from fusec.errors import FusecError
from fusec.loops.defaults import default_schedule
from fusec.loops.ir import Loop, LoopNest, Store, walk
from fusec.loops.matmul import matmul_tiles
from fusec.loops.printer import print_nest
from fusec.loops.schedule import Schedule, ScheduleError, apply_schedule
from fusec.tune.space_knobs import (  # noqa: F401  (schedule_to_dict, schedule_from_dict: re-exported)
    BLOCK_TILES,
    KNOBS,
    MAX_COMBINATIONS,
    MIN_PARALLEL_WORK,
    NUMPY_BLOCKS,
    ROW_BLOCKS,
    UNROLL_FACTORS,
    VECTOR_BYTES,
    _thin,
    numpy_block_tiles,
    reduce_block_options,
    schedule_from_dict,
    schedule_to_dict,
    tile_options,
)

# ----------------------------------------------------------------------------------------------
# the space


@dataclass
class Space:
    nest: LoopNest
    backend: str
    default: Schedule
    candidates: list[Schedule]  # valid and distinct; candidates[0] is the default
    options: dict[str, str] = field(default_factory=dict)  # knob -> the values it takes, as text
    note: str = ""  # why the space is what it is, when that is not obvious
    combinations: int = 0  # knob combinations considered
    invalid: Counter = field(default_factory=Counter)  # reason -> points dropped for it
    duplicates: int = 0  # gave the same scheduled nest as an earlier candidate

    def __len__(self) -> int:
        return len(self.candidates)

    @property
    def illegal(self) -> int:
        return sum(self.invalid.values())

    def describe(self) -> str:
        n = len(self.candidates)
        head = f"{n} candidate{'s' if n != 1 else ''}"
        if self.note:
            return f"{head}: {self.note}"
        return f"{head} ({self.combinations} combinations, {self.illegal} invalid, {self.duplicates} duplicates)"


def schedule_ignored(backend: Backend | None, nest: LoopNest) -> bool:
    """True when the backend runs this nest's loops as one library call (C matmul on BLAS): only
    the rows per call and the epilogue's schedule matter."""
    return (backend is not None and getattr(backend, "matmul", None) == "blas"
            and nest.kind == "matmul" and nest.matmul is not None)


def _reason(nest: LoopNest, err: ScheduleError) -> str:
    """A ScheduleError's message without names and numbers, so points dropped for one reason count together."""
    text = str(err).removeprefix(f"{nest.name}: ")
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'|\[[^\]]*\]", "...", text))[:100]


def hint_problem(scheduled: LoopNest, s: Schedule) -> str | None:
    """Why the schedule's code-generation hints would change nothing on this scheduled nest, or None."""
    kinds = {lp.kind for lp in walk(scheduled.body) if isinstance(lp, Loop)}
    if s.threads:
        if "parallel" not in kinds:
            return "a thread count needs a parallel loop"
        work = math.prod(d.extent for d in scheduled.dims)
        if work < MIN_PARALLEL_WORK:
            return "a thread count needs a parallel loop with enough work to run on threads"
    if s.simdlen and "vector" not in kinds:
        return "a vector width needs a vector loop"
    if s.stream:
        outputs = {b.name for b in scheduled.buffers if b.role in ("out", "inout")}
        if not any(isinstance(x, Store) and x.buffer in outputs
                   for lp in walk(scheduled.body) if isinstance(lp, Loop) and lp.kind == "vector" for x in walk(lp.body)):
            return "streaming stores need a vector loop that stores an output"
    return None


def _blas_space(space: Space, nest: LoopNest, default: Schedule) -> Space:
    """A matmul on BLAS: rows per call (where the epilogue is split) x the epilogue in parallel or not."""
    outer = nest.dims[0].extent
    rows = [default.matmul_rows] + sorted({outer, -(-outer // 2), -(-outer // 4)} - {0, default.matmul_rows}, reverse=True)
    # an identity epilogue is simplified away: then there is no epilogue to schedule
    epilogue = any(matmul_tiles(nest, default).epilogues.values())
    for r in rows:
        for par in (default.parallel, not default.parallel) if epilogue else (default.parallel,):
            s = replace(default, matmul_rows=r, parallel=par)
            space.combinations += 1
            if s != default:
                space.candidates.append(s)
    space.options["matmul rows"] = ", ".join(map(str, rows))
    if epilogue:
        space.options["epilogue"] = "parallel, serial"
    return space


def search_space(nest: LoopNest, backend: str, default: Schedule | None = None, ignored: bool = False,
                 caches: tuple[int, int, int] | None = None) -> Space:
    """Every valid, distinct schedule of `nest` for the backend called `backend`."""
    default = default or default_schedule(nest, backend=backend)
    try:
        first = (print_nest(apply_schedule(nest, default)), tuple(default.hints.items()))
    except ScheduleError as err:
        raise FusecError(f"{nest.name}: the default schedule is illegal ({err})") from None
    space = Space(nest, backend, default, [default])
    if ignored:
        return _blas_space(space, nest, default)
    knobs = KNOBS.get(backend, ("tiles",))
    kept = [d for d in nest.dims if not d.reduced]
    extents = [d.extent for d in kept]
    points = math.prod(extents) if extents else 1
    total_bytes = sum(b.size * b.dtype.itemsize for b in nest.buffers)
    per_point = total_bytes / max(points, 1)
    row = math.prod(d.extent for d in nest.dims if d.reduced)
    rows_knob = nest.kind == "reduce" and row > 1

    tiles: list[list[int]] = []
    for pos, ext in enumerate(extents):
        opts = {0}
        if "tiles" in knobs:
            opts = set(tile_options(ext, per_point * math.prod(extents[pos + 1:]), pos == len(extents) - 1, caches))
            if len(extents) >= 2:  # square-ish blocks, for a transpose that reads across rows
                opts |= {t for t in BLOCK_TILES if t < ext}
            if rows_knob and pos == len(extents) - 1:
                opts |= {r for r in ROW_BLOCKS if r < ext}
        elif "blocks" in knobs:
            opts |= numpy_block_tiles(extents, pos, max(row, 1)) | ({1} if pos < len(extents) - 1 else set())
        if pos < len(default.tiles):
            opts.add(default.tiles[pos])
        tiles.append(sorted(opts))

    orders: list[tuple[int, ...]] = [()]
    if "order" in knobs and 2 <= len(kept) <= 3:
        for perm in itertools.permutations(range(len(kept))):
            if list(perm) == list(range(len(kept))):
                continue
            try:  # an order that cannot apply (loops not perfectly nested) is dropped once, here
                apply_schedule(nest, Schedule(order=perm))
                orders.append(perm)
            except ScheduleError as err:
                space.invalid[_reason(nest, err)] += 1
    cores = os.cpu_count() or 1
    parallel: list[tuple[bool, int]] = [(default.parallel, 0)]
    if "parallel" in knobs and kept:
        parallel = [(True, 0), (False, 0)]
        if "threads" in knobs:
            parallel += [(True, t) for t in sorted({2, 4, cores // 2}) if 2 <= t < cores]  # fewer than all
    itemsize = max((b.dtype.itemsize for b in nest.buffers), default=4)
    lanes = max(1, VECTOR_BYTES // itemsize)
    widths = [0] + ([w for w in (lanes // 2, lanes * 2) if w >= 2] if "simdlen" in knobs else [])
    streams = [False, True] if "stream" in knobs else [False]
    inner: list[tuple[bool, int, int, bool]] = [(default.vectorize, default.unroll, 0, False)]
    if "vectorize" in knobs:
        inner = [(True, 1, w, st) for w in widths for st in streams] + [(False, 1, 0, False)]
    if "unroll" in knobs:
        inner += [(False, u, 0, False) for u in UNROLL_FACTORS]

    blocks = [default.reduce_block]
    if "reduce_block" in knobs:
        blocks, dropped = reduce_block_options(nest, backend, default)
        for why in dropped.values():  # each dropped value, counted once per point it would have made
            points = math.prod(len(t) for t in tiles) * len(orders) * len(parallel) * len(inner)
            space.invalid[why] += points
            space.combinations += points

    def count() -> int:
        return math.prod(len(t) for t in tiles) * len(orders) * len(parallel) * len(inner) * len(blocks)

    while count() > MAX_COMBINATIONS and any(len(t) > 2 for t in tiles):
        widest = max(range(len(tiles)), key=lambda i: len(tiles[i]))
        tiles[widest] = _thin(tiles[widest])

    for pos, (d, opts) in enumerate(zip(kept, tiles)):
        if len(opts) > 1:
            label = "rows/block" if rows_knob and pos == len(kept) - 1 else f"tile {d.var}"
            space.options[label] = ", ".join(map(str, opts))
    if "blocks" in knobs:
        space.options["block elements"] = ", ".join(f"{b // 1024}K" for b in NUMPY_BLOCKS)
    if len(orders) > 1:
        space.options["order"] = ", ".join(str(list(o) or "as lowered") for o in orders)
    if len(parallel) > 1:
        space.options["parallel"] = ", ".join(("on" + (f" ({t} threads)" if t else "")) if p else "off" for p, t in parallel)
    if len(inner) > 1:
        space.options["inner loops"] = ", ".join(
            "vector" + (f" x{w}" if w else "") + (" stream" if st else "") if v else f"unroll {u}" if u > 1 else "scalar"
            for v, u, w, st in inner)
    if len(blocks) > 1:
        space.options["reduce block"] = ", ".join(map(str, sorted(blocks)))

    # the key holds the block option's position too: the NumPy backend reads reduce_block itself,
    # so two values can make one printed nest and still two kernels
    seen = {(*first, 0)}
    for combo, order, (par, threads), (vec, unroll, width, stream), (b, block) in itertools.product(
            itertools.product(*tiles), orders, parallel, inner, enumerate(blocks)):
        space.combinations += 1
        s = Schedule(tuple(combo), par, vec, unroll, order, default.matmul_rows, threads, width, stream, block)
        if s == default:
            continue
        try:
            scheduled = apply_schedule(nest, s)
        except ScheduleError as err:
            space.invalid[_reason(nest, err)] += 1
            continue
        problem = hint_problem(scheduled, s)
        if problem:
            space.invalid[problem] += 1
            continue
        key = (print_nest(scheduled), tuple(s.hints.items()), b)
        if key in seen:
            space.duplicates += 1
            continue
        seen.add(key)
        space.candidates.append(s)
    return space
