"""The C backend: schedule a loop nest, emit C (c_emit), compile it through the kernel cache, load it.

    backend = CBackend()                      # finds $CC or cc; NoCompilerError if there is none
    kernel = backend.build(graph, group, nest, backend.default_schedule(nest))
    kernel(*arrays)                           # arrays in nest.buffers order; outputs preallocated

Matmul groups: calling BLAS (through NumPy) on a tile of output rows and running the fused
epilogue as generated C on that tile while it is still in cache measured faster than the
generic scalar-form C loop nest (bench/bench_matmul_choice.py, docs/c_backend.md), so
`matmul="blas"` is the default; `matmul="loops"` compiles the nest's scalar form instead.

A missing compiler raises NoCompilerError (a FusecError) from the constructor: the pipeline turns
that into one warning and the NumPy backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fusec.codegen.base import Backend, Kernel, kernel_signature
from fusec.codegen.c_emit import PRELUDE, CEmitter
from fusec.codegen.c_passes import reuse_row_values
from fusec.fusion.plan import Group
from fusec.ir.graph import Graph
from fusec.loops.ir import (
    AccInit,
    Buffer,
    Dim,
    Index,
    Let,
    Load,
    Loop,
    LoopNest,
    Stmt,
    Store,
    stmt_exprs,
    walk,
    walk_expr,
)
from fusec.loops.schedule import Schedule, ScheduleError, apply_schedule, default_schedule
from fusec.loops.simplify import simplify
from fusec.runtime.build import compiler_flags, find_compiler, sanitize_requested
from fusec.runtime.cache import KernelCache, default_cache
from fusec.runtime.loader import KernelFunction, Param

HEADER_DIR = Path(__file__).resolve().parent / "c"
# bytes of matmul result per tile. Measured on 2 cores: tiles of 4 MiB (BLAS, then the epilogue on the
# hot tile) were 1.5-2x slower than one BLAS call followed by one epilogue pass, because every switch
# between OpenBLAS's threads and OpenMP's spinning threads costs more than the cache reuse saves.
# So tiles are large: typical outputs run as one BLAS call and one epilogue, in place in the output.
MATMUL_TILE_BYTES = 64 << 20


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
        return default_schedule(nest, backend="c")

    # ------------------------------------------------------------------------------ building

    def compile_source(self, source: str, symbol: str, params: list[Param]) -> KernelFunction:
        """Compile (or find in the cache) one C translation unit and bind one of its functions."""
        return KernelFunction(self.library(source), symbol, params)

    def library(self, source: str) -> Path:
        cache = self.cache or default_cache()
        return cache.build(source, self.headers, self.compiler, self.flags).library

    def build(self, graph: Graph, group: Group, nest: LoopNest, schedule: Schedule) -> Kernel:
        prepared = self.prepare(nest, schedule)
        return prepared.finish(self.library(prepared.source))

    def build_all(self, graph: Graph, items: list[tuple[Group, LoopNest, Schedule]]) -> list[Kernel]:
        """Build many groups with few compiler runs: their functions share translation units.

        A compiler run costs ~0.1 s of start-up and per-file work before any kernel is compiled,
        so a graph's kernels go into at most two files, compiled at the same time (two cores).
        """
        prepared = [self.prepare(nest, schedule) for _, nest, schedule in items]
        if not prepared:
            return []
        halves = [prepared] if len(prepared) < 4 else [prepared[: len(prepared) // 2], prepared[len(prepared) // 2 :]]
        sources = [PRELUDE + "\n" + "\n".join(f for p in half for f in p.functions) for half in halves]
        with ThreadPoolExecutor(max_workers=len(sources)) as pool:
            libraries = list(pool.map(self.library, sources))
        return [p.finish(lib) for half, lib in zip(halves, libraries) for p in half]

    def prepare(self, nest: LoopNest, schedule: Schedule) -> Prepared:
        """Generate a group's C functions; `finish` binds them once a library holds them."""
        if nest.kind == "matmul" and nest.matmul is not None and self.matmul == "blas":
            return self._prepare_blas_matmul(nest)
        scheduled = simplify(reuse_row_values(schedule_or_fallback(nest, schedule)))
        function, symbol = c_source(scheduled, self.sanitize, with_prelude=False)
        params = buffer_params(nest.buffers)

        def finish(library: Path) -> Kernel:
            call = KernelFunction(library, symbol, params).call_pointers

            def run(*arrays: np.ndarray) -> None:
                call(*[a.ctypes.data for a in arrays])

            return Kernel(backend="c", source=PRELUDE + "\n" + function, run=run, **kernel_signature(nest))

        return Prepared([function], finish)

    # -------------------------------------------------------------------------- matmul + BLAS

    def _prepare_blas_matmul(self, nest: LoopNest) -> Prepared:
        plan = MatmulTiling.of(nest)
        functions, symbols = [], []
        for rows in sorted({plan.tile_rows, plan.tail_rows} - {0}, reverse=True):
            epi = plan.epilogue_nest(rows)
            scheduled = simplify(schedule_or_fallback(epi, default_schedule(epi, backend="c")))
            text, symbol = c_source(scheduled, self.sanitize, with_prelude=False)
            functions.append(text)
            symbols.append((rows, symbol, epi))
        where = f"into {plan.direct}, which the epilogue updates in place" if plan.direct else "into a scratch tile"
        header = (
            f"/* {nest.name}: NumPy's matmul (BLAS) on tiles of {plan.tile_rows} x {plan.row_elements} results,\n"
            f" * written {where}; then this epilogue on each tile */\n"
        )

        def finish(library: Path) -> Kernel:
            bound = {rows: KernelFunction(library, symbol, buffer_params(epi.buffers)) for rows, symbol, epi in symbols}
            source = header + PRELUDE + "\n" + "\n".join(functions)
            return Kernel(backend="c", source=source, run=plan.runner(bound), **kernel_signature(nest))

        return Prepared(functions, finish)


@dataclass
class Prepared:
    """A group's generated C functions, and how to make its Kernel from a library that holds them."""

    functions: list[str]
    finish: Callable[[Path], Kernel]

    @property
    def source(self) -> str:
        return PRELUDE + "\n" + "\n".join(self.functions)


def schedule_or_fallback(nest: LoopNest, schedule: Schedule) -> LoopNest:
    """Apply the schedule; if its legality checks reject it, drop parallelism, then everything.

    A rejected schedule is a planning mistake, not a user error: the kernel still runs correctly,
    only slower (serial, or unscheduled).
    """
    for attempt in (schedule, replace(schedule, parallel=False), Schedule()):
        try:
            return apply_schedule(nest, attempt)
        except ScheduleError:
            continue
    return nest


def c_source(nest: LoopNest, sanitize: bool, with_prelude: bool = True) -> tuple[str, str]:
    """(C source, function name) for a scheduled nest."""
    emitter = CEmitter(nest, bounds_check=sanitize)
    function = emitter.function()
    text = PRELUDE + "\n" + function if with_prelude else function
    return text, emitter.cname(nest.name)


def buffer_params(buffers: tuple[Buffer, ...]) -> list[Param]:
    return [Param(b.name, b.role, b.dtype, tuple(b.shape)) for b in buffers]


# ------------------------------------------------------------------------------------------------
# matmul by BLAS tiles with a generated C epilogue


def _replace_matmul_core(stmts: tuple[Stmt, ...], acc: str, k: str, value: Load) -> tuple[Stmt, ...]:
    """Drop the accumulator's init and the k loop; read the matmul result from `value` instead."""
    out: list[Stmt] = []
    for s in stmts:
        if isinstance(s, AccInit) and s.name == acc:
            out.append(Let(acc, value))
        elif isinstance(s, Loop) and s.var == k:
            continue
        elif isinstance(s, Loop):
            out.append(replace(s, body=_replace_matmul_core(s.body, acc, k, value)))
        else:
            out.append(s)
    return tuple(out)


def _strided_view(array: np.ndarray, index: Index, variables: tuple[str, ...], extents: dict[str, int]) -> np.ndarray:
    """The operand of a Load as an array over `variables` (a stride-0 axis where it is broadcast)."""
    item = array.itemsize
    shape = tuple(extents[v] for v in variables)
    strides = tuple(index.coef(v) * item for v in variables)
    base = array.reshape(-1)[index.const :]
    return np.lib.stride_tricks.as_strided(base, shape=shape, strides=strides, writeable=False)


class MatmulTiling:
    """How a matmul nest runs as BLAS tiles: the outer output variable is cut into tiles of rows."""

    def __init__(self, nest: LoopNest):
        info = nest.matmul
        assert info is not None
        self.nest = nest
        self.info = info
        self.extents = {d.var: d.extent for d in nest.dims}
        self.out_vars = tuple(info.batch) + (info.i, info.j)
        self.outer = self.out_vars[0]
        self.acc_dtype = next(s.dtype for s in walk(nest.body) if isinstance(s, AccInit) and s.name == info.acc)
        outer_extent = self.extents[self.outer]
        self.row_elements = math.prod(self.extents[v] for v in self.out_vars[1:])
        row_bytes = max(self.row_elements * self.acc_dtype.itemsize, 1)
        self.tile_rows = max(1, min(outer_extent, MATMUL_TILE_BYTES // row_bytes))
        self.tail_rows = outer_extent % self.tile_rows
        self.outer_extent = outer_extent
        for ld in (info.a, info.b):
            if not ld.index.is_affine:
                raise ValueError("a matmul operand with a non-affine index cannot go to BLAS")
        self.direct = self._direct_output()

    def mm_index(self) -> Index:
        """Row-major flat index of the matmul result over (batch..., i, j)."""
        index, stride = Index(), 1
        for v in reversed(self.out_vars):
            index = index + Index.of(v) * stride
            stride *= self.extents[v]
        return index

    def _direct_output(self) -> str | None:
        """An output buffer BLAS can write the matmul result into, for the epilogue to update in place.

        It must have the result's dtype and size and be stored only at the result's own element.
        """
        target = self.mm_index()
        size = math.prod(self.extents[v] for v in self.out_vars)
        for b in self.nest.buffers:
            if b.role != "out" or b.dtype != self.acc_dtype or b.size != size:
                continue
            stores = [st for st in walk(self.nest.body) if isinstance(st, Store) and st.buffer == b.name]
            if stores and all(st.index == target for st in stores):
                return b.name
        return None

    @staticmethod
    def of(nest: LoopNest) -> MatmulTiling:
        return MatmulTiling(nest)

    def _tile_coef(self, buffer: str) -> int:
        """Elements a buffer's pointer advances per step of the outer variable (0: not tiled)."""
        coefs = set()
        for s in walk(self.epilogue_body()):
            for ld in _loads_and_stores(s):
                if ld[0] == buffer:
                    if any(not isinstance(a, str) and self.outer in Index(((a, 1),)).variables() for a, _ in ld[1].terms):
                        raise ValueError("the epilogue indexes the tiled axis non-affinely")
                    coefs.add(ld[1].coef(self.outer))
        if len(coefs) > 1:
            raise ValueError(f"buffer {buffer} is read with different strides along the tiled axis")
        return coefs.pop() if coefs else 0

    def epilogue_body(self) -> tuple[Stmt, ...]:
        value = Load(self.direct or "mm", self.mm_index(), self.acc_dtype)
        return _replace_matmul_core(self.nest.body, self.info.acc, self.info.k, value)

    def epilogue_nest(self, rows: int) -> LoopNest:
        """The epilogue over `rows` steps of the outer variable, reading the matmul result from `mm`."""
        body = _set_extent(self.epilogue_body(), self.outer, rows)
        kept = tuple(
            replace(b, role="inout") if b.name == self.direct else b
            for b in self.nest.buffers
            if b.name not in (self.info.a.buffer, self.info.b.buffer) or self._used_in_epilogue(b.name)
        )
        if self.direct:
            buffers = kept  # BLAS wrote the result into the output: the epilogue updates it in place
        else:
            mm = Buffer("mm", "matmul result tile", self.acc_dtype, (rows,) + tuple(self.extents[v] for v in self.out_vars[1:]), "in")
            buffers = (mm,) + kept
        dims = tuple(Dim(d.var, rows if d.var == self.outer else d.extent) for d in self.nest.dims if d.var != self.info.k)
        return LoopNest(
            f"{self.nest.name}_epilogue_{rows}",
            "elementwise",
            buffers,
            dims,
            body,
            comment=f"epilogue of {self.nest.name} on a tile of {rows} rows of the matmul result",
        )

    def _used_in_epilogue(self, buffer: str) -> bool:
        return any(name == buffer for s in walk(self.epilogue_body()) for name, _ in _loads_and_stores(s))

    def runner(self, functions: dict[int, KernelFunction]):
        info, ext = self.info, self.extents
        names = [b.name for b in self.nest.buffers]
        epi = self.epilogue_nest(self.tile_rows)
        epi_names = [b.name for b in (epi.buffers if self.direct else epi.buffers[1:])]
        coefs = {n: self._tile_coef(n) for n in epi_names}
        a_pos, b_pos = names.index(info.a.buffer), names.index(info.b.buffer)
        a_vars = tuple(info.batch) + (info.i, info.k)
        b_vars = tuple(info.batch) + (info.k, info.j)
        tile_shape = (self.tile_rows,) + tuple(ext[v] for v in self.out_vars[1:])
        scratch: list[np.ndarray] = []

        def run(*arrays: np.ndarray) -> None:
            if self.direct:  # BLAS writes straight into the output; no scratch
                result = arrays[names.index(self.direct)].reshape((self.outer_extent,) + tile_shape[1:])
            else:
                if not scratch:
                    scratch.append(np.empty(tile_shape, dtype=self.acc_dtype.numpy))
                result = scratch[0]
            a = _strided_view(arrays[a_pos], info.a.index, a_vars, ext)
            b = _strided_view(arrays[b_pos], info.b.index, b_vars, ext)
            by_name = dict(zip(names, arrays))
            a_tiled, b_tiled = info.a.index.coef(self.outer) != 0, info.b.index.coef(self.outer) != 0
            for r0 in range(0, self.outer_extent, self.tile_rows):
                rows = min(self.tile_rows, self.outer_extent - r0)
                mm = result[r0 : r0 + rows] if self.direct else result[:rows]
                at = a[r0 : r0 + rows] if a_tiled else a
                bt = b[r0 : r0 + rows] if b_tiled else b
                # batch dims are outermost, so slicing the outer variable slices the same axis of mm
                with np.errstate(all="ignore"):  # NaN and inf are computed, not reported (as in C)
                    np.matmul(at, bt, out=mm)
                pointers = [] if self.direct else [mm.ctypes.data]
                for n in epi_names:
                    arr = by_name[n]
                    pointers.append(arr.ctypes.data + r0 * coefs[n] * arr.itemsize)
                functions[rows].call_pointers(*pointers)

        return run


def _set_extent(stmts: tuple[Stmt, ...], var: str, extent: int) -> tuple[Stmt, ...]:
    out: list[Stmt] = []
    for s in stmts:
        if isinstance(s, Loop):
            new_extent = Index.of(extent) if s.var == var else s.extent
            s = replace(s, extent=new_extent, body=_set_extent(s.body, var, extent))
        out.append(s)
    return tuple(out)


def _loads_and_stores(s: Stmt) -> list[tuple[str, Index]]:
    """(buffer, index) of every load and store directly in statement s."""
    found: list[tuple[str, Index]] = []
    if isinstance(s, Store):
        found.append((s.buffer, s.index))
    for e in stmt_exprs(s):
        for sub in walk_expr(e):
            if isinstance(sub, Load):
                found.append((sub.buffer, sub.index))
    return found
