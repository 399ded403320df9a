"""The NumPy backend: one readable Python function per loop nest.

How a scheduled nest becomes NumPy:

* The loops the schedule tiled (the outer halves of splits) become Python `for` loops: the kernel
  walks the iteration space tile by tile. Everything inside a tile is one *block*, computed with
  whole-array NumPy operations, one array axis per axis of the iteration space (an array that does
  not vary along an axis has length 1 there, and broadcasting does the rest).
* Loads are strided views of the input buffers, made once per call (`strided(...)`): a transpose is
  a permuted stride, a broadcast a zero stride, a slice an offset and a step. A tile of a load is a
  slice of its view, so nothing is copied. Reshapes that are not affine gather through an index.
* Every intermediate goes to preallocated scratch (one tile in size, so it stays in cache) through
  ufunc `out=` arguments; a scratch buffer is reused as soon as its value is dead.
* A reduction is one NumPy reduction over the reduced axes of the block (`keepdims=True`), so
  row-wise ops (softmax, layernorm) process a block of rows at a time. np.sum is pairwise along the
  axis its inner loop walks; an f32 sum that would add more than `Schedule.reduce_block` values one
  by one along the other axes (a column sum), and a long f32 product, accumulate in float64.
* A matmul block calls `np.matmul` (BLAS) on a tile of rows and applies the epilogue to that hot tile.

The emitter is built in layers, one module each:

    numpy_spelling.py  ops, literals and constant expressions as NumPy text
    numpy_exprs.py     ExprEmitter: the state, block shapes, scratch, loads and expressions on a tile
    numpy_blocks.py    BlockEmitter: the statements of a block, reductions, matmul on a tile
    numpy_backend.py   (this module) KernelEmitter: the tile loops and the function; the Backend
"""

from __future__ import annotations

import re

import numpy as np

from fusec.codegen import numpy_prelude
from fusec.codegen.base import Backend, Kernel, kernel_signature
from fusec.codegen.numpy_blocks import BlockEmitter
from fusec.codegen.numpy_spelling import NumpyCodegenError
from fusec.fusion.plan import Group
from fusec.ir.graph import Graph
from fusec.loops.blocked import REDUCE_BLOCK
from fusec.loops.ir import Loop, LoopNest, Stmt, walk
from fusec.loops.schedule import Schedule, apply_schedule, loop_schedule


class KernelEmitter(BlockEmitter):
    """Adds the tile loops (Python `for`, or a thread pool) and the function around the blocks."""

    def is_python(self, lp: Loop) -> bool:
        return any(isinstance(s, Loop) and s.split is not None and s.split.part == "outer" for s in walk((lp,)))

    def body(self, stmts: tuple[Stmt, ...], depth: int) -> list[str]:
        out: list[str] = []
        pad = "    " * depth
        for k, s in enumerate(stmts):
            if isinstance(s, Loop) and self.is_python(s):
                if not s.extent.is_const:
                    raise NumpyCodegenError(f"tile loop {s.var} needs a constant trip count")
                if s.kind == "parallel" and self.threaded is None:
                    # the tiles run on a thread pool: each thread walks a contiguous range of them
                    # with its own scratch (NumPy releases the GIL inside ufuncs)
                    self.threaded = s.var
                    out.append(f"{pad}def tiles(first, last):")
                    out.append(f'{pad}    """Tiles first..last-1 of {s.var}, with this thread\'s own scratch."""')
                    out.append(f"{pad}    SCRATCH")
                    out.append(f"{pad}    for {s.var} in range(first, last):")
                    inner = self.loop_body(s, depth + 2)
                    out.extend(inner)
                    out.append(f"{pad}run_parallel(tiles, {s.extent.const})")
                    continue
                out.append(f"{pad}for {s.var} in range({s.extent.const}):")
                out.extend(self.loop_body(s, depth + 1))
            else:
                out.extend(self.block(stmts[k:], depth))
                break
        return out

    def loop_body(self, s: Loop, depth: int) -> list[str]:
        """The inside of a Python tile loop: the tile's bounds, then the rest of the nest."""
        out: list[str] = []
        pad = "    " * depth
        if s.split is not None:
            dim, f = s.split.of, s.split.factor
            self.tile_of[dim] = (s.var, f)
            ext = self.dims[self.pos[dim]].extent
            out.append(f"{pad}lo_{dim} = {s.var} * {f}")
            out.append(f"{pad}hi_{dim} = min(lo_{dim} + {f}, {ext})")
            out.append(f"{pad}n_{dim} = hi_{dim} - lo_{dim}")
        elif s.var in self.pos:
            self.single.add(s.var)
        out.extend(self.body(s.body, depth))
        return out

    def function(self) -> str:
        nest = self.nest
        params = ", ".join(b.name for b in nest.buffers)
        body = self.body(nest.body, 1)
        first, *rest = (nest.comment or nest.name).splitlines()
        doc = [f'    """{first}'] + [f"        {line}" for line in rest]
        for b in nest.buffers:
            doc.append(f"    {b.role:<5} {b.name}: {b.dtype.name}[{', '.join(map(str, b.shape))}]")
        doc.append('    """')
        head = ["    " + h for h in self.head]
        if self.threaded is None:
            head += ["    " + h for h in self.scratch]
        else:  # scratch is allocated inside the per-thread function, where SCRATCH marks its place
            k = next(i for i, line in enumerate(body) if line.strip() == "SCRATCH")
            indent = body[k][: len(body[k]) - len(body[k].lstrip())]
            body[k : k + 1] = [indent + h for h in self.scratch]
        return "\n".join([f"def {nest.name}({params}):"] + doc + head + body) + "\n"



HEADER = '''"""Generated by fusec's NumPy backend. Scratch is one tile in size, so intermediates stay in cache."""
import numpy as np
'''
PRELUDE_HELPERS = ("erf", "fpow", "gather", "gelu", "ipow", "run_parallel", "select", "strided", "where")


def generate(nest: LoopNest, reduce_block: int = REDUCE_BLOCK) -> str:
    """Python source for a scheduled nest: a module defining one function named after the kernel.
    `reduce_block`: the longest run of values an f32 sum may add one by one (Schedule.reduce_block)."""
    body = KernelEmitter(nest, reduce_block).function()
    used = [name for name in PRELUDE_HELPERS if re.search(rf"\b{name}\(", body)]  # import what the kernel calls
    imports = f"\nfrom fusec.codegen.numpy_prelude import {', '.join(used)}\n" if used else ""
    return HEADER + imports + "\n\n" + body


def load_source(source: str, name: str):
    namespace: dict = {}
    exec(compile(source, f"<fusec kernel {name}>", "exec"), namespace)
    return namespace[name]


class NumpyBackend(Backend):
    name = "numpy"

    def build(self, graph: Graph, group: Group, nest: LoopNest, schedule: Schedule) -> Kernel:
        # whole-array NumPy calls are already vectorised and unrolling means nothing to them: the
        # tiles, the loop order and `parallel` (tiles on a thread pool) shape a NumPy kernel
        scheduled = apply_schedule(nest, loop_schedule(schedule, "numpy"))
        source = generate(scheduled, schedule.reduce_block)
        fn = load_source(source, nest.name)

        def run(*arrays):
            with np.errstate(all="ignore"):  # NaN and inf are computed, not reported
                fn(*arrays)

        return Kernel(backend="numpy", source=source, run=run, **kernel_signature(nest))


__all__ = ["KernelEmitter", "NumpyBackend", "NumpyCodegenError", "generate", "numpy_prelude"]
