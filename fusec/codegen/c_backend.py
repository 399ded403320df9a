"""The C backend: schedule a loop nest, emit C (c_emit), compile it through the kernel cache, load it.

    backend = CBackend()                      # finds $CC or cc; NoCompilerError if there is none
    kernel = backend.build(graph, group, nest, backend.default_schedule(nest))
    kernel(*arrays)                           # arrays in nest.buffers order; outputs preallocated

Matmul groups: calling BLAS (through NumPy) on a tile of output rows and running the fused
epilogue as generated C on that tile while it is still in cache measured faster than the
generic scalar-form C loop nest (bench/bench_matmul_choice.py, docs/c_backend.md), so
`matmul="blas"` is the default; `matmul="loops"` compiles the nest's scalar form instead. The
tiles and the epilogue are the loops layer's decision (fusec/loops/matmul.py, `Schedule.matmul_rows`);
this module makes the calls.

A missing compiler raises NoCompilerError (a FusecError) from the constructor: the pipeline turns
that into one warning and the NumPy backend.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fusec.codegen.base import Backend, Kernel, kernel_signature
from fusec.codegen.c_emit import CEmitter
from fusec.codegen.c_passes import reuse_row_values, tabulate_invariants
from fusec.codegen.c_spelling import PRELUDE
from fusec.codegen.c_stage import stage_transposed_tiles
from fusec.fusion.plan import Group
from fusec.ir.graph import Graph
from fusec.loops.defaults import default_schedule
from fusec.loops.ir import (
    Buffer,
    Div,
    Index,
    Load,
    LoopNest,
    Mod,
    evaluate_index,
)
from fusec.loops.masks import MatmulMasks, matmul_masks
from fusec.loops.matmul import MatmulTiles, matmul_tiles, split_quotients
from fusec.loops.schedule import Schedule, ScheduleError, schedule_or_fallback
from fusec.loops.simplify import simplify
from fusec.runtime.build import compiler_flags, find_compiler, sanitize_requested
from fusec.runtime.cache import KernelCache, default_cache
from fusec.runtime.loader import KernelFunction, Param
from fusec.runtime.threads import blas_limit

HEADER_DIR = Path(__file__).resolve().parent / "c"


def math_headers() -> dict[str, str]:
    """The headers generated kernels include, by file name (they are part of the cache key)."""
    return {p.name: p.read_text() for p in sorted(HEADER_DIR.glob("*.h"))}


class CBackend(Backend):
    name = "c"

    def __init__(
        self,
        cache: KernelCache | None = None,
        sanitize: bool | None = None,
        fast_math: bool = False,
        cc: str | None = None,
        matmul: str = "blas",
    ):
        self.compiler = find_compiler(cc)
        self.cache = cache
        self.sanitize = sanitize_requested(sanitize)
        self.flags = compiler_flags(self.sanitize, fast_math)
        if matmul not in ("blas", "loops"):
            raise ValueError(f"matmul must be 'blas' or 'loops', got {matmul!r}")
        self.matmul = matmul
        self.headers = math_headers()

    def default_schedule(self, nest: LoopNest) -> Schedule:
        schedule = default_schedule(nest, backend="c")
        return schedule if self.matmul == "blas" else replace(schedule, matmul_rows=0)

    # ------------------------------------------------------------------------------ building

    def compile_source(self, source: str, symbol: str, params: list[Param]) -> KernelFunction:
        """Compile (or find in the cache) one C translation unit and bind one of its functions."""
        return KernelFunction(self.library(source), symbol, params)

    def library(self, source: str) -> Path:
        cache = self.cache or default_cache()
        return cache.build(source, self.headers, self.compiler, self.flags).library

    def build(self, graph: Graph, group: Group, nest: LoopNest, schedule: Schedule) -> Kernel:
        prepared = self.prepare(nest, schedule, group_masks(graph, group))
        return prepared.finish(self.library(prepared.source))

    def build_all(self, graph: Graph, items: list[tuple[Group, LoopNest, Schedule]]) -> list[Kernel]:
        """Build many groups with few compiler runs: their functions share translation units.

        A compiler run costs ~0.1 s of start-up and per-file work before any kernel is compiled,
        so a graph's kernels go into at most two files, compiled at the same time (two cores).
        """
        prepared = [self.prepare(nest, schedule, group_masks(graph, group)) for group, nest, schedule in items]
        if not prepared:
            return []
        halves = [prepared] if len(prepared) < 4 else [prepared[: len(prepared) // 2], prepared[len(prepared) // 2 :]]
        sources = [PRELUDE + "\n" + "\n".join(f for p in half for f in p.functions) for half in halves]
        with ThreadPoolExecutor(max_workers=len(sources)) as pool:
            libraries = list(pool.map(self.library, sources))
        return [p.finish(lib) for half, lib in zip(halves, libraries) for p in half]

    def prepare(self, nest: LoopNest, schedule: Schedule, masks: MatmulMasks | None = None) -> Prepared:
        """Generate a group's C functions; `finish` binds them once a library holds them.

        masks: for a matmul group, the parts of the matmul a causal mask makes unneeded (group_masks)
        """
        if nest.kind == "matmul" and nest.matmul is not None and self.matmul == "blas":
            try:
                return self._prepare_blas_matmul(nest, matmul_tiles(nest, schedule, masks=masks))
            except ScheduleError:
                pass  # operands BLAS cannot take: the scalar loop form below
        scheduled = stage_transposed_tiles(simplify(tabulate_invariants(reuse_row_values(schedule_or_fallback(nest, schedule)))))
        function, symbol = c_source(scheduled, self.sanitize, with_prelude=False)
        params = buffer_params(nest.buffers)

        def finish(library: Path) -> Kernel:
            run = KernelFunction(library, symbol, params).call_arrays
            return Kernel(backend="c", source=PRELUDE + "\n" + function, run=run, **kernel_signature(nest))

        return Prepared([function], finish)

    # -------------------------------------------------------------------------- matmul + BLAS

    def _prepare_blas_matmul(self, nest: LoopNest, tiles: MatmulTiles) -> Prepared:
        functions, symbols = [], []
        for rows, epi in tiles.epilogues.items():
            if epi is not None:
                text, symbol = c_source(epi, self.sanitize, with_prelude=False)
                functions.append(text)
                symbols.append((rows, symbol, epi))
        header = f"/* {nest.name}: NumPy's matmul (BLAS) on tiles of {tiles.rows} x {tiles.row_elements} results,\n"
        header += (f" * written into {tiles.direct}, which the epilogue updates in place; then this epilogue on each tile */\n"
                   if tiles.direct else " * written into a scratch tile; then this epilogue on each tile */\n")
        if not symbols:
            header = (f"/* {nest.name}: NumPy's matmul (BLAS) on tiles of {tiles.rows} x {tiles.row_elements} results,\n"
                      f" * written into {tiles.direct}: the result is stored unchanged, so there is no epilogue */\n")
        if "\n" in tiles.describe():
            header += "/* " + "\n * ".join(line.strip() for line in tiles.describe().split("\n")[1:]) + " */\n"

        def finish(library: Path) -> Kernel:
            bound = {rows: KernelFunction(library, symbol, buffer_params(epi.buffers)) for rows, symbol, epi in symbols}
            source = header + (PRELUDE + "\n" + "\n".join(functions) if functions else "")
            return Kernel(backend="c", source=source, run=blas_runner(tiles, bound), **kernel_signature(nest))

        return Prepared(functions, finish)


@dataclass
class Prepared:
    """A group's generated C functions, and how to make its Kernel from a library that holds them."""

    functions: list[str]
    finish: Callable[[Path], Kernel]

    @property
    def source(self) -> str:
        return PRELUDE + "\n" + "\n".join(self.functions)


def c_source(nest: LoopNest, sanitize: bool, with_prelude: bool = True) -> tuple[str, str]:
    """(C source, function name) for a scheduled nest."""
    emitter = CEmitter(nest, bounds_check=sanitize)
    function = emitter.function()
    text = PRELUDE + "\n" + function if with_prelude else function
    return text, emitter.cname(nest.name)


def group_masks(graph: Graph, group: Group) -> MatmulMasks | None:
    """What a causal mask lets a matmul group skip (None for other groups)."""
    if group.kind != "matmul":
        return None
    mm = [n for n in group.nodes if graph.node(n).op == "matmul"]
    return matmul_masks(graph, mm[0]) if len(mm) == 1 else None


def buffer_params(buffers: tuple[Buffer, ...]) -> list[Param]:
    return [Param(b.name, b.role, b.dtype, tuple(b.shape)) for b in buffers]


# ------------------------------------------------------------------------------------------------
# matmul by BLAS tiles with a generated C epilogue (the tiles and the epilogue: fusec/loops/matmul.py)


def _strided_view(array: np.ndarray, index: Index, variables: tuple[str, ...], extents: dict[str, int]) -> np.ndarray:
    """The operand of a Load as an array over `variables` (a stride-0 axis where it is broadcast)."""
    item = array.itemsize
    shape = tuple(extents[v] for v in variables)
    strides = tuple(index.coef(v) * item for v in variables)
    base = array.reshape(-1)[index.const :]
    return np.lib.stride_tricks.as_strided(base, shape=shape, strides=strides, writeable=False)


def operand_reader(load: Load, variables: tuple[str, ...], extents: dict[str, int]):
    """array -> the operand of a Load over `variables`: a strided view when its index is affine.

    Otherwise (a reshape that merges a transposed pair of axes: `k / 64`, `k % 64`) each variable
    v seen as v / d and v % d is split into two axes, the index is affine over those, and the
    strided view is copied into a scratch array of the operand's shape (one C-level copy); an index
    that cannot be split is gathered through a precomputed table of positions.
    """
    index = split_quotients(load.index, extents)
    if index.is_affine:
        return lambda array: _strided_view(array, index, variables, extents)
    shape = tuple(extents[v] for v in variables)
    scratch = threading.local()  # per calling thread: one program may run in several threads at once

    def out(array: np.ndarray) -> np.ndarray:
        if getattr(scratch, "array", None) is None:
            scratch.array = np.empty(shape, dtype=array.dtype)
        return scratch.array

    split = _split_axes(index, variables, extents)
    if split is not None:
        split_vars, split_extents, split_index = split
        split_shape = tuple(split_extents[v] for v in split_vars)

        def copy(array: np.ndarray) -> np.ndarray:
            target = out(array)
            np.copyto(target.reshape(split_shape), _strided_view(array, split_index, split_vars, split_extents))
            return target

        return copy
    grid = {v: np.arange(extents[v]).reshape([-1 if w == v else 1 for w in variables]) for v in variables}
    positions = np.broadcast_to(evaluate_index(index, grid), shape)

    def gather(array: np.ndarray) -> np.ndarray:
        return np.take(array.reshape(-1), positions, out=out(array))

    return gather


def _split_axes(index: Index, variables: tuple[str, ...], extents: dict[str, int]):
    """(variables, extents, index) with each v read as v / d and v % d split into v_hi and v_lo, when
    every non-affine term is such a quotient or remainder of one variable and d divides its extent."""
    divisor: dict[str, int] = {}
    for a, _ in index.terms:
        if isinstance(a, str):
            continue
        if not isinstance(a, (Div, Mod)) or not a.arg.is_affine or len(a.arg.terms) != 1 or a.arg.const:
            return None
        (v, c), = a.arg.terms
        if c != 1 or v not in variables or extents[v] % a.divisor or divisor.setdefault(v, a.divisor) != a.divisor:
            return None
    new_vars, new_ext, env = [], dict(extents), {}
    for v in variables:
        if v in divisor:
            hi, lo = f"{v}_hi", f"{v}_lo"
            new_vars += [hi, lo]
            new_ext[hi], new_ext[lo] = extents[v] // divisor[v], divisor[v]
            env[v] = (hi, lo)
        else:
            new_vars.append(v)
    split = Index((), index.const)
    for a, c in index.terms:
        if isinstance(a, str) and a in env:
            hi, lo = env[a]
            split = split + Index.of(hi) * (c * divisor[a]) + Index.of(lo) * c
        elif isinstance(a, Div):
            split = split + Index.of(env[a.arg.terms[0][0]][0]) * c
        elif isinstance(a, Mod):
            split = split + Index.of(env[a.arg.terms[0][0]][1]) * c
        else:
            split = split + Index.of(a) * c
    return tuple(new_vars), new_ext, split


def blas_runner(tiles: MatmulTiles, functions: dict[int, KernelFunction]):
    """Run the tiles: np.matmul (BLAS) on each, then the tile's epilogue function if there is one."""
    info, ext, nest = tiles.info, tiles.extents, tiles.nest
    names = [b.name for b in nest.buffers]
    outer_extent = ext[tiles.out_vars[0]]
    epi_names = [n for n in tiles.coefs if n != "mm"]
    a_pos, b_pos = names.index(info.a.buffer), names.index(info.b.buffer)
    a_vars = tuple(info.batch) + (info.i, info.k)
    b_vars = tuple(info.batch) + (info.k, info.j)
    tile_shape = (tiles.rows,) + tuple(ext[v] for v in tiles.out_vars[1:])
    outer = tiles.out_vars[0]
    scratch = threading.local()  # per calling thread: np.matmul releases the GIL mid-call
    k_extent = ext[info.k]
    limit = blas_limit()
    calls = masked_calls(tiles)
    read_a = operand_reader(info.a, a_vars, ext)
    read_b = operand_reader(info.b, b_vars, ext)
    # a copied operand is laid out over all its variables, so it is tiled along the outer one if that
    # is one of them (b's are batch + (k, j): not i, the outer variable of an unbatched matmul)
    a_tiled = info.a.index.coef(outer) != 0 or (not info.a.index.is_affine and outer in a_vars)
    b_tiled = info.b.index.coef(outer) != 0 or (not info.b.index.is_affine and outer in b_vars)

    def run(*arrays: np.ndarray) -> None:
        if tiles.direct:  # BLAS writes straight into the output; no scratch
            result = arrays[names.index(tiles.direct)].reshape((outer_extent,) + tile_shape[1:])
        else:
            if getattr(scratch, "tile", None) is None:
                mm = next(e for e in tiles.epilogues.values() if e is not None).buffer("mm")
                scratch.tile = np.empty(tile_shape, dtype=mm.dtype.numpy)
            result = scratch.tile
        a, b = read_a(arrays[a_pos]), read_b(arrays[b_pos])
        by_name = dict(zip(names, arrays))
        # columns of a that are zero may be skipped only when b holds no inf or NaN (0 * inf is NaN)
        blocks = calls if calls and (tiles.support is None or _all_finite(b)) else None
        for r0 in range(0, outer_extent, tiles.rows):
            rows = min(tiles.rows, outer_extent - r0)
            mm = result[r0 : r0 + rows] if tiles.direct else result[:rows]
            at = a[r0 : r0 + rows] if a_tiled else a
            bt = b[r0 : r0 + rows] if b_tiled else b
            # batch dims are outermost, so slicing the outer variable slices the same axis of mm
            previous = limit.enter(mm.size * k_extent)  # fewer BLAS threads on a busy machine
            try:
                with np.errstate(all="ignore"):  # NaN and inf are computed, not reported (as in C)
                    if blocks is None:
                        np.matmul(at, bt, out=mm)
                    else:
                        for i0, i1, (j0, j1), (k0, k1) in blocks(r0 if not info.batch else 0, mm.shape[-2]):
                            np.matmul(at[..., i0:i1, k0:k1], bt[..., k0:k1, j0:j1], out=mm[..., i0:i1, j0:j1])
            finally:
                limit.exit(previous)
            if rows not in functions:
                continue  # no epilogue: BLAS wrote the result where it belongs
            pointers = [] if tiles.direct else [mm.ctypes.data]
            for n in epi_names:
                arr = by_name[n]
                pointers.append(arr.ctypes.data + r0 * tiles.coefs[n] * arr.itemsize)
            functions[rows].call_pointers(*pointers)

    return run


def masked_calls(tiles: MatmulTiles):
    """blocks(first_row, rows) -> [(i0, i1, (j0, j1), (k0, k1))]: the BLAS calls of one tile under
    the bands, rows relative to the tile (None when no band applies).

    A block whose result the mask hides entirely makes no call (its elements are never read); a block
    reads at least one column of the left operand, so a row that is NaN throughout stays NaN.
    """
    if not tiles.block:
        return None
    ext = tiles.extents
    nj, nk = ext[tiles.info.j], ext[tiles.info.k]
    memo: dict[tuple[int, int], list] = {}

    def blocks(first_row: int, rows: int) -> list:
        if (first_row, rows) not in memo:
            found = []
            for i0 in range(0, rows, tiles.block):
                i1 = min(rows, i0 + tiles.block)
                g0, g1 = first_row + i0, first_row + i1
                js = tiles.needed.cols(g0, g1, nj) if tiles.needed is not None else (0, nj)
                ks = tiles.support.cols(g0, g1, nk) if tiles.support is not None else (0, nk)
                if js[0] >= js[1]:
                    continue
                if ks[0] >= ks[1]:
                    ks = (0, 1)
                found.append((i0, i1, js, ks))
            memo[(first_row, rows)] = found
        return memo[(first_row, rows)]

    return blocks


def _all_finite(array: np.ndarray) -> bool:
    """True when no element is inf or NaN (a finite sum says so; an overflowing one only costs the skip)."""
    with np.errstate(all="ignore"):
        return bool(np.isfinite(np.sum(array, dtype=np.float64)))
