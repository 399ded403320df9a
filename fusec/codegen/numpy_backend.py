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
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from fusec.codegen import numpy_prelude
from fusec.codegen.base import Backend, Kernel, kernel_signature
from fusec.fusion.plan import Group
from fusec.ir.dtypes import F32, F64, DType
from fusec.ir.graph import Graph
from fusec.ir.ops import OPS, default_attrs, select_spelling
from fusec.loops.blocked import REDUCE_BLOCK
from fusec.loops.ir import (
    AccInit,
    AccUpdate,
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
    Stmt,
    Store,
    expr_str,
    walk,
    walk_expr,
)
from fusec.loops.schedule import Schedule, apply_schedule, loop_schedule


class NumpyCodegenError(Exception):
    """The nest or schedule uses something this backend cannot express (a bug, not a user mistake)."""


def spelling(e: Op) -> tuple[str, ...] | None:
    """The op row's NumPy statements for this op at its dtype (templates, see fusec/ir/ops_registry.py)."""
    op = OPS.get(e.op)
    if op is None:
        return None
    code = select_spelling(op.numpy_code, e.dtype, e.args[0].dtype if e.args else None, _attrs_of(e))
    if code is None:
        return None
    return (code,) if isinstance(code, str) else tuple(code)


def writes_over_operand(lines: tuple[str, ...]) -> bool:
    """One NumPy ufunc call: it may write its result over one of its operands."""
    return len(lines) == 1 and lines[0].startswith("np.") and not lines[0].startswith("np.copyto")


def _attrs_of(e: Op) -> dict:
    return default_attrs(OPS[e.op]) | dict(e.attrs)


def literal(value, dtype: DType) -> str:
    """A NumPy scalar of the exact dtype (NumPy 2 treats these as strongly typed, like the interpreter's constants)."""
    t = f"np.{dtype.numpy.name}"
    if dtype.name == "bool":
        return "np.True_" if value else "np.False_"
    if dtype.is_float:
        v = float(value)
        if v != v:
            return f"{t}(np.nan)"
        if v in (float("inf"), float("-inf")):
            return f"{t}({'-' if v < 0 else ''}np.inf)"
        return f"{t}({v!r})"
    return f"{t}({int(value)})"


def fold_constant(e: Expr):
    """The value of an expression without loads or temporaries, computed as the interpreter would."""
    if isinstance(e, Const):
        return np.asarray(e.value, dtype=e.dtype.numpy)
    if isinstance(e, Op):
        args = [fold_constant(a) for a in e.args]
        if any(a is None for a in args):
            return None
        with np.errstate(all="ignore"):
            if e.op == "cast":
                return args[0].astype(e.dtype.numpy)
            r = OPS[e.op].numpy(args, _attrs_of(e))
            return np.asarray(r).astype(e.dtype.numpy)
    return None


@dataclass
class _Slot:
    """A preallocated scratch buffer: `name` is the whole buffer, `view` its slice for the current tile."""

    name: str
    sig: tuple[bool, ...]
    dtype: DType
    view: str


@dataclass
class _Value:
    text: str  # how generated code names this value
    slot: _Slot | None = None  # the scratch it occupies, if any (freed after its last use)
    owned: bool = True  # False for Let values still needed later


@dataclass
class _Block:
    lines: list[str] = field(default_factory=list)
    extra_head: list[str] = field(default_factory=list)  # per-tile setup: scratch views, index ranges
    aranges: set[str] = field(default_factory=set)
    loads: dict = field(default_factory=dict)


class _Gen:
    def __init__(self, nest: LoopNest, reduce_block: int = 0):
        self.nest = nest
        self.reduce_block = reduce_block  # Schedule.reduce_block: see needs_wide
        self.dims = nest.dims
        self.pos = {d.var: k for k, d in enumerate(nest.dims)}
        self.head: list[str] = []  # setup before the loops: views of the buffers
        self.scratch: list[str] = []  # scratch allocations (per thread when tiles run in parallel)
        self.threaded: str | None = None  # the tile loop that runs on a thread pool, if any
        self.views: dict[tuple[str, Index], str] = {}
        self.slots: list[_Slot] = []
        self.free: dict[tuple, list[_Slot]] = {}
        self.tile_of: dict[str, tuple[str, int]] = {}  # dim var -> (outer loop var, factor)
        self.single: set[str] = set()  # dims walked one index at a time by a Python loop
        self.ref_sig: dict[str, tuple[bool, ...]] = {}
        self.cached: dict[Expr, str] = {}  # values computed earlier in this block, by expression
        self.pinned: dict[int, list[_Slot]] = {}  # statement -> scratch kept alive until after it
        self.reused_later: dict[Expr, int] = {}
        self.pinned_by_text: dict[str, _Slot] = {}
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
    def alloc(self, sig: tuple[bool, ...], dtype: DType, block: _Block) -> _Slot:
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
        slot = _Slot(name, sig, dtype, view)
        self.slots.append(slot)
        return slot

    def release(self, v: _Value) -> None:
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

    def index_text(self, ix: Index, block: _Block) -> str:
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

    def arange(self, var: str, block: _Block) -> str:
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

    def load(self, e: Load, block: _Block, clip: bool = False) -> str:
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
    def expr(self, e: Expr, block: _Block, out: str | None = None, clip: bool = False) -> _Value:
        """Emit code computing e; returns how to name the result (written to `out` if given)."""
        folded = fold_constant(e) if not isinstance(e, Const) else None
        if folded is not None:
            e = Const(folded.item(), e.dtype)
        if isinstance(e, Const):
            return self.finish(_Value(literal(e.value, e.dtype), None), e, block, out)
        if isinstance(e, Load):
            return self.finish(_Value(self.load(e, block, clip)), e, block, out)
        if isinstance(e, Ref):
            return self.finish(_Value(e.name, None), e, block, out)
        if isinstance(e, IndexValue):
            slot, target = self.target(e, block, out)
            block.lines.append(f"np.copyto({target}, {self.index_text(e.index, block)}, casting='unsafe')  # iota")
            return _Value(target, slot)
        if isinstance(e, Piecewise):
            pieces = [self.expr(p, block, clip=True) for p in e.pieces]
            slot, target = self.target(e, block, out)
            idx = self.index_text(e.index, block)
            block.lines.append(f"select({idx}, {e.bounds}, [{', '.join(p.text for p in pieces)}], out={target})  # concat")
            for p in pieces:
                self.release(p)
            return _Value(target, slot)
        assert isinstance(e, Op), e
        if e in self.cached and not clip:
            return self.finish(_Value(self.cached[e], None), e, block, out)
        v = self.op(e, block, out, clip)
        if e in self.reused_later and not clip:
            # another statement of this block computes e again: keep this result until then
            self.cached[e] = v.text
            if v.slot is not None:
                self.pinned.setdefault(self.reused_later[e], []).append(v.slot)
                self.pinned_by_text[v.text] = v.slot
            return _Value(v.text, None)
        return v

    def op(self, e: Op, block: _Block, out: str | None, clip: bool) -> _Value:
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
        names = {k: repr(v) for k, v in _attrs_of(e).items()}
        names |= {
            "out": target,
            "one": literal(1, e.dtype) if e.dtype.is_float else "1",
            "zero": literal(0, e.dtype),
        }
        block.lines.extend(line.format(*(x.text for x in args), **names) for line in code)
        for x in args:
            if x is not reuse:
                self.release(x)
        return _Value(target, slot)

    def target(self, e: Expr, block: _Block, out: str | None) -> tuple[_Slot | None, str]:
        if out is not None:
            return None, out
        slot = self.alloc(self.sig_of(e), e.dtype, block)
        return slot, slot.view

    def finish(self, v: _Value, e: Expr, block: _Block, out: str | None) -> _Value:
        """A value that is already named somewhere: copy it to `out` if a destination was asked for."""
        if out is None:
            return v
        block.lines.append(f"np.copyto({out}, {v.text}, casting='unsafe')")
        return _Value(out, None)

    # ------------------------------------------------------------------ statements of a block
    def block(self, stmts: tuple[Stmt, ...], depth: int) -> list[str]:
        blk = _Block()
        flat: list[tuple[Stmt, frozenset]] = []
        self._flatten(stmts, frozenset(), flat)
        last_use: dict[str, int] = {}
        for k, (s, _) in enumerate(flat):
            if isinstance(s, (Let, Store, AccUpdate)):
                for x in _refs(s.value):
                    last_use[x] = k
        # the signature of each accumulator: what its update varies over, less the reduced axes
        init_at: dict[str, frozenset] = {}
        for s, enclosing in flat:
            if isinstance(s, AccInit):
                init_at[s.name] = enclosing
        values: dict[str, _Value] = {}
        self.cached, self.pinned, self.pinned_by_text = {}, {}, {}
        self.reused_later = _shared_across(flat)
        mm = self.nest.matmul
        for k, (s, enclosing) in enumerate(flat):
            if isinstance(s, AccInit):
                continue
            if isinstance(s, Let):
                v = self.expr(s.value, blk)
                self.ref_sig[s.name] = self.sig_of(s.value)
                if v.slot is None and not v.text.isidentifier():
                    blk.lines.append(f"{s.name} = {v.text}")
                elif v.text != s.name:
                    blk.lines.append(f"{s.name} = {v.text}  # {expr_str(s.value)}"[:150])
                if v.slot is None and v.text in self.pinned_by_text:
                    # a value computed once for several statements: keep it until this Let's last reader too
                    slot = self.pinned_by_text[v.text]
                    until = max(last_use.get(s.name, k), max(at for at, ss in self.pinned.items() if slot in ss))
                    for ss in self.pinned.values():
                        if slot in ss:
                            ss.remove(slot)
                    self.pinned.setdefault(until, []).append(slot)
                values[s.name] = _Value(s.name, v.slot, v.owned)
            elif isinstance(s, AccUpdate):
                axes = [self.pos[v] for v in enclosing - init_at[s.name]]
                sig = tuple(b and self.pos[d.var] not in axes for d, b in zip(self.dims, self.sig_of(s.value)))
                self.ref_sig[s.name] = sig
                slot = self.alloc(sig, _acc_dtype(flat, s.name), blk)
                if mm is not None and s.name == mm.acc:
                    self.matmul(slot, blk)
                else:
                    v = self.expr(s.value, blk)
                    full = tuple(b or self.pos[d.var] in axes for d, b in zip(self.dims, self.sig_of(s.value)))
                    src = v.text
                    if full != self.sig_of(s.value):
                        src = f"np.broadcast_to({src}, {self.shape_text(full)})"
                    if self.needs_wide(s, axes, slot.dtype):
                        self.reduce_wide(s, src, axes, slot, sig, blk)
                    else:
                        reducer = OPS[s.op].numpy_code.format(src, axis=tuple(sorted(axes)), out=slot.view)
                        blk.lines.append(f"{reducer}  # {s.name}")
                    self.release(v)
                blk.lines.append(f"{s.name} = {slot.view}")
                values[s.name] = _Value(s.name, slot, True)
            elif isinstance(s, Store):
                if self.nest.buffer(s.buffer).size == 0:
                    continue  # an empty output: nothing to write
                if not s.index.is_affine:
                    raise NumpyCodegenError(f"store to {s.buffer}[{s.index}] is not affine")
                view = self.view_of(s.buffer, s.index)
                dst = view + self.block_slice(tuple(d.var in s.index.variables() for d in self.dims))
                direct = isinstance(s.value, Op) and self.sig_of(s.value) == tuple(
                    d.var in s.index.variables() for d in self.dims
                )
                v = self.expr(s.value, blk, out=dst if direct else None)
                if not direct:
                    blk.lines.append(f"np.copyto({dst}, {v.text}, casting='unsafe')")
                    self.release(v)
            # free temporaries whose last reader was this statement
            for name, at in last_use.items():
                if at == k and name in values:
                    self.release(values.pop(name))
            for slot in self.pinned.pop(k, []):
                self.release(_Value(slot.view, slot))
        pad = "    " * depth
        return [pad + line for line in blk.extra_head + blk.lines]

    def needs_wide(self, s: AccUpdate, axes: list[int], dtype: DType) -> bool:
        """Whether this f32 sum or product must be added up in f64 to stay as accurate as NumPy's pairwise
        sum: np.sum is pairwise only along the axis its inner loop walks (the operand's smallest
        stride); along every other reduced axis it adds one value after another, as np.prod always does.
        Such runs longer than `reduce_block` values (a column sum of a million rows) go to f64."""
        if self.reduce_block < 1 or s.op not in ("sum", "prod") or dtype != F32:
            return False
        long_axes = [k for k in axes if self.dims[k].extent > 1]
        run = math.prod(self.dims[k].extent for k in long_axes)
        if s.op == "sum" and long_axes:
            run //= self.dims[self.inner_axis(s.value)].extent if self.inner_axis(s.value) in long_axes else 1
        return run > self.reduce_block

    def inner_axis(self, e: Expr) -> int:
        """The axis NumPy's inner loop walks for this block value: the smallest stride of a view of a
        buffer, else the last axis the value varies along (scratch is C-contiguous)."""
        sig = self.sig_of(e)
        varying = [k for k, d in enumerate(self.dims) if sig[k] and d.extent > 1] or [len(self.dims) - 1]
        if isinstance(e, Load) and e.index.is_affine:
            return min(varying, key=lambda k: (abs(e.index.coef(self.dims[k].var)), -k))
        return varying[-1]

    def reduce_wide(self, s: AccUpdate, src: str, axes: list[int], slot: _Slot, sig: tuple[bool, ...], blk: _Block) -> None:
        wide = self.alloc(sig, F64, blk)
        blk.lines.append(f"np.{s.op}({src}, axis={tuple(sorted(axes))}, keepdims=True, dtype=np.float64, out={wide.view})"
                         f"  # {s.name}, added up in float64")
        blk.lines.append(f"np.copyto({slot.view}, {wide.view}, casting='same_kind')")
        self.release(_Value(wide.view, wide))

    def _flatten(self, stmts, enclosing: frozenset, out: list) -> None:
        for s in stmts:
            if isinstance(s, Loop):
                if s.split is not None and s.split.part == "outer":
                    raise NumpyCodegenError(f"loop {s.var} is tiled inside a block")
                dim = s.split.of if s.split is not None else s.var
                if dim not in self.pos:
                    raise NumpyCodegenError(f"loop {s.var} walks no axis of the iteration space")
                self._flatten(s.body, enclosing | {dim}, out)
            elif isinstance(s, LetIndex):
                continue
            else:
                out.append((s, enclosing))

    def matmul(self, slot: _Slot, blk: _Block) -> None:
        mm = self.nest.matmul
        nb = len(mm.batch)
        a_view = self.load(mm.a, blk)
        b_view = self.load(mm.b, blk)
        a_sig = tuple(d.var in mm.a.index.variables() for d in self.dims)
        # the whole-space views are (batch..., i, j, k); matmul wants (batch..., i, k) @ (batch..., k, j)
        a = f"{a_view}[..., 0, :]" if not a_sig[nb + 1] else a_view
        b = f"{b_view}[..., 0, :, :].swapaxes(-1, -2)"
        acc_dt = slot.dtype
        if mm.a.dtype != acc_dt:
            a = f"{a}.astype(np.{acc_dt.numpy.name})"
        if mm.b.dtype != acc_dt:
            b = f"({b}).astype(np.{acc_dt.numpy.name})"
        # an operand whose index drops k (its k stride is 0: w[k, j] when j has extent 0) has a view
        # one element long along k; it is the same for every k, so the other operand is summed over k
        a_k, b_k = (mm.k in load.index.variables() for load in (mm.a, mm.b))
        if a_k and not b_k:
            a = f"{a}.sum(axis=-1, keepdims=True)"
        elif b_k and not a_k:
            b = f"{b}.sum(axis=-2, keepdims=True)"
        blk.lines.append(f"np.matmul({a}, {b}, out={slot.view}[..., 0])  # {mm.acc}: BLAS on this tile")

    # ------------------------------------------------------------------ the function
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


def _shared_across(flat) -> dict[Expr, int]:
    """Subexpressions that several statements of a block compute (softmax's exp(x - max) in two passes),
    mapped to the last statement that needs them; only the largest such expressions are listed."""
    seen: dict[Expr, list[int]] = {}
    for k, (s, _) in enumerate(flat):
        if isinstance(s, (Let, Store, AccUpdate)):
            for e in {x for x in walk_expr(s.value) if isinstance(x, Op)}:
                seen.setdefault(e, []).append(k)
    shared = {e: ks for e, ks in seen.items() if len(ks) > 1}
    inner = set()
    for e, ks in shared.items():
        for a in walk_expr(e):
            if a is not e and a in shared and shared[a] == ks:
                inner.add(a)
    return {e: ks[-1] for e, ks in shared.items() if e not in inner}


def _refs(e: Expr) -> set[str]:
    from fusec.loops.ir import expr_refs

    return expr_refs(e)


def _acc_dtype(flat, name: str) -> DType:
    for s, _ in flat:
        if isinstance(s, AccInit) and s.name == name:
            return s.dtype
    raise NumpyCodegenError(f"accumulator {name} is never declared")


HEADER = '''"""Generated by fusec's NumPy backend. Scratch is one tile in size, so intermediates stay in cache."""
import numpy as np
'''
PRELUDE_HELPERS = ("erf", "fpow", "gather", "gelu", "ipow", "run_parallel", "select", "strided", "where")


def generate(nest: LoopNest, reduce_block: int = REDUCE_BLOCK) -> str:
    """Python source for a scheduled nest: a module defining one function named after the kernel.
    `reduce_block`: the longest run of values an f32 sum may add one by one (Schedule.reduce_block)."""
    body = _Gen(nest, reduce_block).function()
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


__all__ = ["NumpyBackend", "generate", "numpy_prelude"]
