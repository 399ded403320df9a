"""The NumPy backend, part 2: the statements of a block (everything inside one tile).

A block's statements are flattened, then emitted in order: a Let names a value, an AccUpdate becomes
one NumPy reduction over the reduced axes (`keepdims=True`; a long f32 sum or product is added up
in float64, see `needs_wide`), a matmul accumulator one `np.matmul` (BLAS) on the tile, a Store a
write into a strided view of the output. Scratch is released after each value's last reader, and a
subexpression several statements compute (softmax's exp(x - max)) is kept until the last of them.

Separate from numpy_exprs.py (one expression) and numpy_backend.py (the tile loops).
"""

from __future__ import annotations

import math

from fusec.codegen.numpy_exprs import Block, ExprEmitter, Slot, TileValue
from fusec.codegen.numpy_spelling import NumpyCodegenError
from fusec.ir.dtypes import F32, F64, DType
from fusec.ir.ops import OPS
from fusec.loops.ir import (
    AccInit,
    AccUpdate,
    Expr,
    Let,
    LetIndex,
    Load,
    Loop,
    Op,
    Stmt,
    Store,
    expr_refs,
    expr_str,
    walk_expr,
)


class BlockEmitter(ExprEmitter):
    """Adds the statements of a block to the expression emitter."""

    def block(self, stmts: tuple[Stmt, ...], depth: int) -> list[str]:
        blk = Block()
        flat: list[tuple[Stmt, frozenset]] = []
        self._flatten(stmts, frozenset(), flat)
        last_use: dict[str, int] = {}
        for k, (s, _) in enumerate(flat):
            if isinstance(s, (Let, Store, AccUpdate)):
                for x in expr_refs(s.value):
                    last_use[x] = k
        # the signature of each accumulator: what its update varies over, less the reduced axes
        init_at: dict[str, frozenset] = {}
        for s, enclosing in flat:
            if isinstance(s, AccInit):
                init_at[s.name] = enclosing
        values: dict[str, TileValue] = {}
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
                values[s.name] = TileValue(s.name, v.slot, v.owned)
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
                values[s.name] = TileValue(s.name, slot, True)
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
                self.release(TileValue(slot.view, slot))
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

    def reduce_wide(self, s: AccUpdate, src: str, axes: list[int], slot: Slot, sig: tuple[bool, ...], blk: Block) -> None:
        wide = self.alloc(sig, F64, blk)
        blk.lines.append(f"np.{s.op}({src}, axis={tuple(sorted(axes))}, keepdims=True, dtype=np.float64, out={wide.view})"
                         f"  # {s.name}, added up in float64")
        blk.lines.append(f"np.copyto({slot.view}, {wide.view}, casting='same_kind')")
        self.release(TileValue(wide.view, wide))

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

    def matmul(self, slot: Slot, blk: Block) -> None:
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


def _acc_dtype(flat, name: str) -> DType:
    for s, _ in flat:
        if isinstance(s, AccInit) and s.name == name:
            return s.dtype
    raise NumpyCodegenError(f"accumulator {name} is never declared")
