"""The search space of one kernel: every distinct, legal Schedule worth measuring.

Knobs (fields of `fusec.loops.schedule.Schedule`), per backend:

    tiles      per kept dimension: 0 (whole), 1 (row by row, outer dimensions only), and the powers of
               two and divisors of the extent whose block fits half of L1, half of L2, and this
               core's share of L3 (sizes read from /sys, else 32 KiB / 512 KiB / 32 MiB); with two
               or more kept dimensions also 16 and 64 (square blocks for transposes)
    order      loop order of the kept dimensions (every permutation up to 3 dimensions)
    parallel   the outer tile loop runs on all cores (on/off = threads 1 or all)
    vectorize  `omp simd` on the innermost loops, or instead
    unroll     split the innermost loops by 4 or 8 and unroll them

The C backend uses all of them; the NumPy backend tiles and orders (its blocks are whole-array
calls); a backend the tuner does not know only tiles. A C matmul group runs on BLAS: its one knob is
`matmul_rows`, the output rows per BLAS call (the default, all rows, and halves and quarters of them).

Every combination is applied to the nest (`apply_schedule`); one that raises ScheduleError is
illegal and dropped, and two that give the same scheduled nest are one candidate. The default
schedule is always the first candidate, so each run measures what an untuned compile gets.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from fusec.codegen.base import Backend
from fusec.errors import FusecError
from fusec.loops.ir import LoopNest
from fusec.loops.printer import print_nest
from fusec.loops.schedule import Schedule, ScheduleError, apply_schedule, default_schedule

KNOBS = {
    "c": ("tiles", "order", "parallel", "vectorize", "unroll"),
    "numpy": ("tiles", "order"),  # it ignores vectorize, unroll and parallel (whole-array calls)
}
UNROLL_FACTORS = (4, 8)
BLOCK_TILES = (16, 64)
MAX_COMBINATIONS = 1200  # above this, tile options are thinned (enumeration applies each one, ~0.5 ms)
DEFAULT_CACHES = (32 * 1024, 512 * 1024, 32 * 1024 * 1024)


# ----------------------------------------------------------------------------------------------
# schedules as plain data (the database and the worker process exchange them)


def schedule_to_dict(s: Schedule) -> dict:
    return {"tiles": list(s.tiles), "parallel": s.parallel, "vectorize": s.vectorize, "unroll": s.unroll,
            "order": list(s.order), "matmul_rows": s.matmul_rows}


def schedule_from_dict(d: dict) -> Schedule:
    """The Schedule a record holds; FusecError if the record is malformed."""
    try:
        tiles = tuple(int(t) for t in d.get("tiles", ()))
        order = tuple(int(o) for o in d.get("order", ()))
        unroll = int(d.get("unroll", 1))
        matmul_rows = int(d.get("matmul_rows", 0))
        par, vec = d.get("parallel", False), d.get("vectorize", False)
    except (TypeError, ValueError, AttributeError) as err:
        raise FusecError(f"malformed schedule {d!r}: {err}") from None
    if not isinstance(par, bool) or not isinstance(vec, bool) or unroll < 1 or any(t < 0 for t in tiles) or matmul_rows < 0:
        raise FusecError(f"malformed schedule {d!r}")
    return Schedule(tiles, par, vec, unroll, order, matmul_rows)


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
    candidates: list[Schedule]  # legal and distinct; candidates[0] is the default
    options: dict[str, str] = field(default_factory=dict)  # knob -> the values it takes, as text
    note: str = ""  # why the space is what it is, when that is not obvious
    combinations: int = 0  # knob combinations considered
    illegal: int = 0  # rejected by apply_schedule
    duplicates: int = 0  # gave the same scheduled nest as an earlier candidate

    def __len__(self) -> int:
        return len(self.candidates)

    def describe(self) -> str:
        n = len(self.candidates)
        head = f"{n} candidate{'s' if n != 1 else ''}"
        if self.note:
            return f"{head}: {self.note}"
        return f"{head} ({self.combinations} combinations, {self.illegal} illegal, {self.duplicates} duplicates)"


def schedule_ignored(backend: Backend | None, nest: LoopNest) -> bool:
    """True when the backend builds this nest without looking at the schedule (C matmul on BLAS)."""
    return (backend is not None and getattr(backend, "matmul", None) == "blas"
            and nest.kind == "matmul" and nest.matmul is not None)


def search_space(nest: LoopNest, backend: str, default: Schedule | None = None, ignored: bool = False,
                 caches: tuple[int, int, int] | None = None) -> Space:
    """Every legal, distinct schedule of `nest` for the backend called `backend`."""
    default = default or default_schedule(nest, backend=backend)
    try:
        first = print_nest(apply_schedule(nest, default))
    except ScheduleError as err:
        raise FusecError(f"{nest.name}: the default schedule is illegal ({err})") from None
    space = Space(nest, backend, default, [default])
    if ignored:  # a matmul on BLAS: the knob is the rows per call
        outer = nest.dims[0].extent
        rows = sorted({default.matmul_rows, outer, -(-outer // 2), -(-outer // 4)} - {0, default.matmul_rows}, reverse=True)
        space.candidates += [replace(default, matmul_rows=r) for r in rows]
        space.combinations = len(space.candidates)
        space.options["matmul rows"] = ", ".join(str(s.matmul_rows) for s in space.candidates)
        return space
    knobs = KNOBS.get(backend, ("tiles",))
    kept = [d for d in nest.dims if not d.reduced]
    extents = [d.extent for d in kept]
    points = math.prod(extents) if extents else 1
    total_bytes = sum(b.size * b.dtype.itemsize for b in nest.buffers)
    per_point = total_bytes / max(points, 1)

    tiles: list[list[int]] = []
    for pos, ext in enumerate(extents):
        opts = [0]
        if "tiles" in knobs:
            opts = tile_options(ext, per_point * math.prod(extents[pos + 1:]), pos == len(extents) - 1, caches)
            if len(extents) >= 2:  # square-ish blocks, for a transpose that reads across rows
                opts = sorted(set(opts) | {t for t in BLOCK_TILES if t < ext})
        if pos < len(default.tiles) and default.tiles[pos] not in opts:
            opts = sorted(set(opts) | {default.tiles[pos]})
        tiles.append(opts)

    orders: list[tuple[int, ...]] = [()]
    if "order" in knobs and 2 <= len(kept) <= 3:
        for perm in itertools.permutations(range(len(kept))):
            if list(perm) == list(range(len(kept))):
                continue
            try:  # an order that cannot apply (loops not perfectly nested) is dropped once, here
                apply_schedule(nest, Schedule(order=perm))
                orders.append(perm)
            except ScheduleError:
                space.illegal += 1
    parallel = [True, False] if "parallel" in knobs and kept else [default.parallel]
    inner: list[tuple[bool, int]] = [(default.vectorize, default.unroll)]
    if "vectorize" in knobs:
        inner = [(True, 1), (False, 1)]
    if "unroll" in knobs:
        inner += [(False, u) for u in UNROLL_FACTORS]

    def count() -> int:
        return math.prod(len(t) for t in tiles) * len(orders) * len(parallel) * len(inner)

    while count() > MAX_COMBINATIONS and any(len(t) > 2 for t in tiles):
        widest = max(range(len(tiles)), key=lambda i: len(tiles[i]))
        tiles[widest] = _thin(tiles[widest])

    for d, opts in zip(kept, tiles):
        if len(opts) > 1:
            space.options[f"tile {d.var}"] = ", ".join(map(str, opts))
    if len(orders) > 1:
        space.options["order"] = ", ".join(str(list(o) or "as lowered") for o in orders)
    if len(parallel) > 1:
        space.options["parallel"] = ", ".join("on" if p else "off" for p in parallel)
    if len(inner) > 1:
        space.options["inner loops"] = ", ".join("vector" if v else f"unroll {u}" if u > 1 else "scalar" for v, u in inner)

    seen = {first}
    for combo in itertools.product(*tiles):
        for order in orders:
            for par in parallel:
                for vec, unroll in inner:
                    space.combinations += 1
                    s = Schedule(tuple(combo), par, vec, unroll, order)
                    if s == default:
                        continue
                    try:
                        text = print_nest(apply_schedule(nest, s))
                    except ScheduleError:
                        space.illegal += 1
                        continue
                    if text in seen:
                        space.duplicates += 1
                        continue
                    seen.add(text)
                    space.candidates.append(s)
    return space
