"""The NumPy backend, part 1: a scalar expression of the loop nest as whole-tile NumPy code.

Inside a tile every value is an array with one axis per axis of the iteration space (length 1 where
it does not vary: its *signature*). This module holds the emitter's state and turns an expression
into code: loads become slices of strided views of the buffers (made once per call), iota and
non-affine indices become `np.arange` grids, ops are written through their row's spelling into
preallocated scratch (one tile in size, reused as soon as a value is dead).

numpy_blocks.py builds on it for the statements of a block, numpy_backend.py for the tile loops and
the function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fusec.codegen.numpy_spelling import (
    NumpyCodegenError,
    attrs_of,
    fold_constant,
    literal,
    spelling,
    writes_over_operand,
)
from fusec.ir.dtypes import DType
from fusec.loops.ir import (
    AccInit,
    Const,
    Div,
    Expr,
    Index,
    IndexValue,
    Let,
    LetIndex,
    Load,
    Loop,
    LoopNest,
    Min,
    Mod,
    Op,
    Piecewise,
    Ref,
    walk,
)


@dataclass
class Slot:
    """A preallocated scratch buffer: `name` is the whole buffer, `view` its slice for the current tile."""

    name: str
    sig: tuple[bool, ...]
    dtype: DType
    view: str


@dataclass
class TileValue:
    """A value of the current tile, as the generated code names it."""

    text: str  # how generated code names this value
    slot: Slot | None = None  # the scratch it occupies, if any (freed after its last use)
    owned: bool = True  # False for Let values still needed later


@dataclass
class Block:
    """The code of one block (the inside of a tile): its per-tile setup, then its lines."""

    lines: list[str] = field(default_factory=list)
    extra_head: list[str] = field(default_factory=list)  # per-tile setup: scratch views, index ranges
    aranges: set[str] = field(default_factory=set)
    loads: dict = field(default_factory=dict)


class ExprEmitter:
    """The emitter's state for one nest, and expressions as NumPy code on a tile."""

    def __init__(self, nest: LoopNest, reduce_block: int = 0):
        self.nest = nest
        self.reduce_block = reduce_block  # Schedule.reduce_block: see needs_wide
        self.dims = nest.dims
        self.pos = {d.var: k for k, d in enumerate(nest.dims)}
        self.head: list[str] = []  # setup before the loops: views of the buffers
        self.scratch: list[str] = []  # scratch allocations (per thread when tiles run in parallel)
        self.threaded: str | None = None  # the tile loop that runs on a thread pool, if any
        self.views: dict[tuple[str, Index], str] = {}
        self.slots: list[Slot] = []
        self.free: dict[tuple, list[Slot]] = {}
        self.tile_of: dict[str, tuple[str, int]] = {}  # dim var -> (outer loop var, factor)
        self.single: set[str] = set()  # dims walked one index at a time by a Python loop
        self.ref_sig: dict[str, tuple[bool, ...]] = {}
        self.cached: dict[Expr, str] = {}  # values computed earlier in this block, by expression
        self.pinned: dict[int, list[Slot]] = {}  # statement -> scratch kept alive until after it
        self.reused_later: dict[Expr, int] = {}
        self.pinned_by_text: dict[str, Slot] = {}
        self.names: set[str] = {b.name for b in nest.buffers} | {d.var for d in nest.dims}
        for st in walk(nest.body):  # the nest's own names: temporaries, accumulators, loop variables
            if isinstance(st, (Let, AccInit)):
                self.names.add(st.name)
            elif isinstance(st, (Loop, LetIndex)):
                self.names.add(st.var)

    # ------------------------------------------------------------------ naming
    def fresh(self, base: str) -> str:
        k = 0
        while f"{base}{k}" in self.names:
            k += 1
        self.names.add(f"{base}{k}")
        return f"{base}{k}"

    # ------------------------------------------------------------------ shapes of block values
    def sig_of(self, e: Expr) -> tuple[bool, ...]:
        vs = set()
        refs = []
        stack = [e]
        while stack:
            x = stack.pop()
            if isinstance(x, (Load, IndexValue)):
                vs |= x.index.variables()
            elif isinstance(x, Piecewise):
                vs |= x.index.variables()
                stack.extend(x.pieces)
            elif isinstance(x, Op):
                stack.extend(x.args)
            elif isinstance(x, Ref):
                refs.append(x.name)
        sig = [d.var in vs for d in self.dims]
        for r in refs:
            sig = [a or b for a, b in zip(sig, self.ref_sig[r])]
        return tuple(sig)

    def extent_text(self, d, full: bool = False) -> str:
        if d.var in self.tile_of:
            return str(min(self.tile_of[d.var][1], d.extent)) if full else f"n_{d.var}"
        if d.var in self.single:
            return "1"
        return str(d.extent)

    def shape_text(self, sig: tuple[bool, ...], full: bool = False) -> str:
        parts = [self.extent_text(d, full) if s else "1" for d, s in zip(self.dims, sig)]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"

    def block_slice(self, sig: tuple[bool, ...]) -> str:
        """The index that cuts the current tile out of a whole-space view."""
        parts = []
        for d, s in zip(self.dims, sig):
            if not s:
                parts.append(":")
            elif d.var in self.tile_of:
                parts.append(f"lo_{d.var}:hi_{d.var}")
            elif d.var in self.single:
                parts.append(f"{d.var}:{d.var} + 1")
            else:
                parts.append(":")
        if all(p == ":" for p in parts):
            return ""
        while parts and parts[-1] == ":":
            parts.pop()
        return "[" + ", ".join(parts) + "]"

    # ------------------------------------------------------------------ scratch
    def alloc(self, sig: tuple[bool, ...], dtype: DType, block: Block) -> Slot:
        key = (sig, dtype.name)
        if self.free.get(key):
            return self.free[key].pop()
        name = self.fresh("s")
        shape = self.shape_text(sig, full=True)
        self.scratch.append(f"{name} = np.empty({shape}, np.{dtype.numpy.name})")
        tiled = any(s and d.var in self.tile_of for d, s in zip(self.dims, sig))
        view = name
        if tiled:
            view = self.fresh("t")
            cut = []
            for d, s in zip(self.dims, sig):
                cut.append(f":n_{d.var}" if s and d.var in self.tile_of else ":")
            while cut and cut[-1] == ":":
                cut.pop()
            block.extra_head.append(f"{view} = {name}[{', '.join(cut)}]")
        slot = Slot(name, sig, dtype, view)
        self.slots.append(slot)
        return slot

    def release(self, v: TileValue) -> None:
        if v.slot is not None and v.owned:
            self.free.setdefault((v.slot.sig, v.slot.dtype.name), []).append(v.slot)

    # ------------------------------------------------------------------ loads
    def view_of(self, buffer: str, index: Index) -> str:
        key = (buffer, index)
        if key not in self.views:
            buf = self.nest.buffer(buffer)
            name = self.fresh(f"{buffer}_v")
            shape = tuple(d.extent if index.coef(d.var) or d.var in index.variables() else 1 for d in self.dims)
            strides = tuple(index.coef(d.var) for d in self.dims)
            self.head.append(f"{name} = strided({buffer}, {index.const}, {shape}, {strides})  # {buf.name}[{index}]")
            self.views[key] = name
        return self.views[key]

    def index_text(self, ix: Index, block: Block) -> str:
        parts = []
        for a, c in ix.terms:
            if isinstance(a, str):
                t = self.arange(a, block)
            elif isinstance(a, Div):
                t = f"({self.index_text(a.arg, block)}) // {a.divisor}"
            elif isinstance(a, Mod):
                t = f"({self.index_text(a.arg, block)}) % {a.divisor}"
            elif isinstance(a, Min):  # pragma: no cover - only in loop extents
                raise NumpyCodegenError("min() inside a load index")
            parts.append(t if c == 1 else f"{t} * {c}")
        if ix.const or not parts:
            parts.append(str(ix.const))
        return " + ".join(parts)

    def arange(self, var: str, block: Block) -> str:
        name = f"ar_{var}"
        if name not in block.aranges:
            block.aranges.add(name)
            k = self.pos[var]
            d = self.dims[k]
            if d.var in self.tile_of:
                rng = f"np.arange(lo_{var}, hi_{var})"
            elif d.var in self.single:
                rng = f"np.arange({var}, {var} + 1)"
            else:
                rng = f"np.arange({d.extent})"
            shape = ["1"] * len(self.dims)
            shape[k] = "-1"
            block.extra_head.append(f"{name} = {rng}.reshape({', '.join(shape)}{',' if len(shape) == 1 else ''})")
        return name

    def load(self, e: Load, block: Block, clip: bool = False) -> str:
        if e.index.is_affine and not clip:
            view = self.view_of(e.buffer, e.index)
            sl = self.block_slice(tuple(d.var in e.index.variables() for d in self.dims))
            if not sl:
                return view
            key = ("load", view, sl)
            if key not in block.loads:
                name = self.fresh(f"{e.buffer}_")
                block.extra_head.append(f"{name} = {view}{sl}")
                block.loads[key] = name
            return block.loads[key]
        idx = self.index_text(e.index, block)
        if not e.index.variables():
            idx = f"np.full({self.shape_text(tuple(False for _ in self.dims))}, {idx})"
        return f"gather({e.buffer}, {idx}{', clip=True' if clip else ''})"

    # ------------------------------------------------------------------ expressions
    def expr(self, e: Expr, block: Block, out: str | None = None, clip: bool = False) -> TileValue:
        """Emit code computing e; returns how to name the result (written to `out` if given)."""
        folded = fold_constant(e) if not isinstance(e, Const) else None
        if folded is not None:
            e = Const(folded.item(), e.dtype)
        if isinstance(e, Const):
            return self.finish(TileValue(literal(e.value, e.dtype), None), e, block, out)
        if isinstance(e, Load):
            return self.finish(TileValue(self.load(e, block, clip)), e, block, out)
        if isinstance(e, Ref):
            return self.finish(TileValue(e.name, None), e, block, out)
        if isinstance(e, IndexValue):
            slot, target = self.target(e, block, out)
            block.lines.append(f"np.copyto({target}, {self.index_text(e.index, block)}, casting='unsafe')  # iota")
            return TileValue(target, slot)
        if isinstance(e, Piecewise):
            pieces = [self.expr(p, block, clip=True) for p in e.pieces]
            slot, target = self.target(e, block, out)
            idx = self.index_text(e.index, block)
            block.lines.append(f"select({idx}, {e.bounds}, [{', '.join(p.text for p in pieces)}], out={target})  # concat")
            for p in pieces:
                self.release(p)
            return TileValue(target, slot)
        assert isinstance(e, Op), e
        if e in self.cached and not clip:
            return self.finish(TileValue(self.cached[e], None), e, block, out)
        v = self.op(e, block, out, clip)
        if e in self.reused_later and not clip:
            # another statement of this block computes e again: keep this result until then
            self.cached[e] = v.text
            if v.slot is not None:
                self.pinned.setdefault(self.reused_later[e], []).append(v.slot)
                self.pinned_by_text[v.text] = v.slot
            return TileValue(v.text, None)
        return v

    def op(self, e: Op, block: Block, out: str | None, clip: bool) -> TileValue:
        args = [self.expr(a, block, clip=clip) for a in e.args]
        sig = self.sig_of(e)
        code = spelling(e)
        if code is None:
            raise NumpyCodegenError(f"no NumPy spelling for op {e.op} ({e.dtype})")
        reuse = None
        if out is None and writes_over_operand(code):
            for a in args:
                if a.slot is not None and a.owned and a.slot.sig == sig and a.slot.dtype == e.dtype:
                    reuse = a
                    break
        if reuse is not None:
            slot, target = reuse.slot, reuse.slot.view
        else:
            slot, target = self.target(e, block, out)
        names = {k: repr(v) for k, v in attrs_of(e).items()}
        names |= {
            "out": target,
            "one": literal(1, e.dtype) if e.dtype.is_float else "1",
            "zero": literal(0, e.dtype),
        }
        block.lines.extend(line.format(*(x.text for x in args), **names) for line in code)
        for x in args:
            if x is not reuse:
                self.release(x)
        return TileValue(target, slot)

    def target(self, e: Expr, block: Block, out: str | None) -> tuple[Slot | None, str]:
        if out is not None:
            return None, out
        slot = self.alloc(self.sig_of(e), e.dtype, block)
        return slot, slot.view

    def finish(self, v: TileValue, e: Expr, block: Block, out: str | None) -> TileValue:
        """A value that is already named somewhere: copy it to `out` if a destination was asked for."""
        if out is None:
            return v
        block.lines.append(f"np.copyto({out}, {v.text}, casting='unsafe')")
        return TileValue(out, None)
