"""The values each knob of the search space takes (space.py), and schedules as plain data.

Tile sizes come from the cache sizes (read from /sys); the NumPy backend's tiles from its block
sizes in elements; `reduce_block` from REDUCE_BLOCKS, keeping one value per distinct blocking of
the nest's long sums (`reduce_block_options`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from fusec.codegen.numpy_backend import generate as numpy_source
from fusec.errors import FusecError
from fusec.loops.blocked import REDUCE_BLOCK, blocked_loop
from fusec.loops.ir import LoopNest
from fusec.loops.schedule import Schedule, apply_schedule, loop_schedule

KNOBS = {
    "c": ("tiles", "order", "parallel", "threads", "vectorize", "simdlen", "stream", "unroll", "reduce_block"),
    "numpy": ("blocks", "order", "parallel", "reduce_block"),  # whole-array calls: no vectorize, unroll or pragmas
}
UNROLL_FACTORS = (4, 8)
BLOCK_TILES = (16, 64)
ROW_BLOCKS = (1, 4, 16, 64)  # rows per block of a row reduction
# values per f32 block of a long sum or product (Schedule.reduce_block): a quarter of the default,
# the default, four times it. Every block's partial joins an f64 total, so each is as accurate as
# the default within a few roundings (blocked.py); 0 (one f32 accumulator) is never offered
REDUCE_BLOCKS = (REDUCE_BLOCK // 4, REDUCE_BLOCK, REDUCE_BLOCK * 4)
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
            "stream": s.stream, "reduce_block": s.reduce_block, "acc_row": s.acc_row}


def schedule_from_dict(d: dict) -> Schedule:
    """The Schedule a record holds; FusecError if the record is malformed."""
    try:
        tiles = tuple(int(t) for t in d.get("tiles", ()))
        order = tuple(int(o) for o in d.get("order", ()))
        unroll = int(d.get("unroll", 1))
        matmul_rows = int(d.get("matmul_rows", 0))
        threads, simdlen = int(d.get("threads", 0)), int(d.get("simdlen", 0))
        reduce_block = int(d.get("reduce_block", REDUCE_BLOCK))  # records from before it was a knob
        acc_row = int(d.get("acc_row", 0))  # a column reduction's accumulator row (loops/interchange.py)
        par, vec, stream = d.get("parallel", False), d.get("vectorize", False), d.get("stream", False)
    except (TypeError, ValueError, AttributeError) as err:
        raise FusecError(f"malformed schedule {d!r}: {err}") from None
    if (not all(isinstance(b, bool) for b in (par, vec, stream)) or unroll < 1 or any(t < 0 for t in tiles)
            or min(matmul_rows, threads, simdlen, reduce_block, acc_row) < 0):
        raise FusecError(f"malformed schedule {d!r}")
    return Schedule(tiles, par, vec, unroll, order, matmul_rows, threads, simdlen, stream, reduce_block, acc_row)


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


def numpy_block_tiles(extents: list[int], pos: int, row: int) -> set[int]:
    """Tiles of kept dimension `pos` whose block holds about each of NUMPY_BLOCKS elements."""
    inner = row * math.prod(extents[pos + 1:])
    return {max(1, b // inner) for b in NUMPY_BLOCKS if 1 <= b // inner < extents[pos]}


def reduce_block_options(nest: LoopNest, backend: str, default: Schedule) -> tuple[list[int], dict[int, str]]:
    """(values of `reduce_block` worth trying, the default first; {value dropped: why}).

    Two values are one option when the backend would generate the same code with either: in C, the
    same split of the reduced loop (`blocked_loop`; a block at least as long as the whole reduction
    leaves it unsplit, so every such value is one); in NumPy, the same choice of which sums go to
    f64 (its generated source, under the default schedule's tiles). A nest whose sums no value
    changes (no float sum or product, or all short) has only the default, and nothing is dropped.
    """
    def effect(value: int):
        if backend == "numpy":
            scheduled = apply_schedule(nest, loop_schedule(default, "numpy"))
            return numpy_source(scheduled, value)
        return blocked_loop(nest, value)

    values = list(dict.fromkeys((default.reduce_block, *REDUCE_BLOCKS)))
    effects = {v: effect(v) for v in values}
    if len({repr(e) for e in effects.values()}) == 1:  # no long float sum: the knob does not apply
        return [default.reduce_block], {}
    kept: list[int] = []
    dropped: dict[int, str] = {}
    for v in values:
        if any(effects[k] == effects[v] for k in kept):
            dropped[v] = "a reduction block that blocks the sums as another value does"
        else:
            kept.append(v)
    return kept, dropped
