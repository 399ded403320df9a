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

The C backend uses all of them; the NumPy backend tiles (its knob is the block size: elements per
whole-array call, 8K to 128K), orders and runs tiles on a thread pool; a backend the tuner does not
know only tiles. A C matmul group runs on BLAS: its knobs are `matmul_rows`, the output rows per
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
from pathlib import Path

from fusec.codegen.base import Backend
from fusec.errors import FusecError
from fusec.loops.ir import Loop, LoopNest, Store, walk
from fusec.loops.matmul import matmul_tiles
from fusec.loops.printer import print_nest
from fusec.loops.schedule import Schedule, ScheduleError, apply_schedule, default_schedule

KNOBS = {
    "c": ("tiles", "order", "parallel", "threads", "vectorize", "simdlen", "stream", "unroll"),
    "numpy": ("blocks", "order", "parallel"),  # whole-array calls: no vectorize, unroll or pragmas
}
UNROLL_FACTORS = (4, 8)
BLOCK_TILES = (16, 64)
ROW_BLOCKS = (1, 4, 16, 64)  # rows per block of a row reduction
NUMPY_BLOCKS = (8192, 16384, 32768, 65536, 131072)  # elements per NumPy block
VECTOR_BYTES = 32  # AVX2; simdlen options are half and twice the lanes of this width
MAX_COMBINATIONS = 1200  # above this, tile options are thinned (enumeration applies each one, ~0.5 ms)
DEFAULT_CACHES = (32 * 1024, 512 * 1024, 32 * 1024 * 1024)
MIN_PARALLEL_WORK = 32768  # as c_emit: a smaller nest runs its parallel loop serially


# ----------------------------------------------------------------------------------------------
# schedules as plain data (the database and the worker process exchange them)


def schedule_to_dict(s: Schedule) -> dict:
    return {"tiles": list(s.tiles), "parallel": s.parallel, "vectorize": s.vectorize, "unroll": s.unroll,
            "order": list(s.order), "matmul_rows": s.matmul_rows, "threads": s.threads, "simdlen": s.simdlen,
            "stream": s.stream}


def schedule_from_dict(d: dict) -> Schedule:
    """The Schedule a record holds; FusecError if the record is malformed."""
    try:
        tiles = tuple(int(t) for t in d.get("tiles", ()))
        order = tuple(int(o) for o in d.get("order", ()))
        unroll = int(d.get("unroll", 1))
        matmul_rows = int(d.get("matmul_rows", 0))
        threads, simdlen = int(d.get("threads", 0)), int(d.get("simdlen", 0))
        par, vec, stream = d.get("parallel", False), d.get("vectorize", False), d.get("stream", False)
    except (TypeError, ValueError, AttributeError) as err:
        raise FusecError(f"malformed schedule {d!r}: {err}") from None
    if (not all(isinstance(b, bool) for b in (par, vec, stream)) or unroll < 1 or any(t < 0 for t in tiles)
            or min(matmul_rows, threads, simdlen) < 0):
        raise FusecError(f"malformed schedule {d!r}")
    return Schedule(tiles, par, vec, unroll, order, matmul_rows, threads, simdlen, stream)


# ----------------------------------------------------------------------------------------------
# cache sizes


def cache_sizes() -> tuple[int, int, int]:
    """(L1d, L2, L3) bytes of cpu0, from sysfs; defaults where it cannot be read."""
    found: dict[int, int] = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in sorted(base.glob("index*")) if base.exists() else []:
        try:
            level = int((idx / "level").read_text())
            kind = (idx / "type").read_text().strip()
            size = (idx / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        if kind == "Instruction":
            continue
        mult = {"K": 1024, "M": 1024 * 1024}.get(size[-1:], 1)
        try:
            found[level] = int(size.rstrip("KM")) * mult
        except ValueError:
            continue
    return tuple(found.get(level, DEFAULT_CACHES[level - 1]) for level in (1, 2, 3))  # type: ignore[return-value]


def _nearest_divisor(n: int, target: int) -> int:
    best = 1
    for d in range(1, int(math.isqrt(n)) + 1):
        if n % d == 0:
            for c in (d, n // d):
                if abs(c - target) < abs(best - target):
                    best = c
    return best


def tile_options(extent: int, step_bytes: float, innermost: bool, caches: tuple[int, int, int] | None = None) -> list[int]:
    """Tile sizes for one dimension whose index step touches `step_bytes` bytes."""
    if extent <= 1:
        return [0]
    l1, l2, l3 = caches or cache_sizes()
    cores = os.cpu_count() or 1
    opts = {0}
    if not innermost:
        opts.add(1)
    for target in (l1 // 2, l2 // 2, l3 // (2 * cores)):
        t = int(target // max(step_bytes, 1.0))
        if t < 1 or t >= extent:
            continue
        opts.add(1 << (t.bit_length() - 1))  # the power of two below the cache fit
        d = _nearest_divisor(extent, t)  # no tail loop
        if 1 <= d < extent:
            opts.add(d)
    return sorted(opts)


def _thin(options: list[int]) -> list[int]:
    """Drop one middle option (keeps 0, 1 and the extremes longest)."""
    if len(options) <= 2:
        return options
    mid = len(options) // 2
    return options[:mid] + options[mid + 1:]


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


def _numpy_block_tiles(extents: list[int], pos: int, row: int) -> set[int]:
    """Tiles of kept dimension `pos` whose block holds about each of NUMPY_BLOCKS elements."""
    inner = row * math.prod(extents[pos + 1:])
    return {max(1, b // inner) for b in NUMPY_BLOCKS if 1 <= b // inner < extents[pos]}


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
            opts |= _numpy_block_tiles(extents, pos, max(row, 1)) | ({1} if pos < len(extents) - 1 else set())
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

    def count() -> int:
        return math.prod(len(t) for t in tiles) * len(orders) * len(parallel) * len(inner)

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

    seen = {first}
    for combo in itertools.product(*tiles):
        for order in orders:
            for par, threads in parallel:
                for vec, unroll, width, stream in inner:
                    space.combinations += 1
                    s = Schedule(tuple(combo), par, vec, unroll, order, default.matmul_rows, threads, width, stream)
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
                    key = (print_nest(scheduled), tuple(s.hints.items()))
                    if key in seen:
                        space.duplicates += 1
                        continue
                    seen.add(key)
                    space.candidates.append(s)
    return space
