"""The lowering of one group, part 4: two passes over the finished nest.

`simplify_dims` drops size-1 axes and merges adjacent axes that every index walks as one contiguous
axis (a 4096x4096 elementwise chain becomes one loop over 16,777,216 elements). `check_inplace`
refuses a donated buffer the kernel reads at other elements than it writes.

Separate from the lowering proper: both only rewrite or read the indices of a LoopNest, whatever
group it came from.
"""

from __future__ import annotations

from dataclasses import replace

from fusec.errors import FusecError
from fusec.loops.ir import (
    AccUpdate,
    Dim,
    Index,
    IndexValue,
    Let,
    Load,
    Loop,
    LoopNest,
    Piecewise,
    Stmt,
    Store,
    substitute,
    walk,
    walk_expr,
)
from fusec.loops.visit import transform


def map_indices(stmts: tuple[Stmt, ...], fn) -> tuple[Stmt, ...]:
    """Apply fn to every Index in loads, stores, iota values and concat selectors."""
    return transform(stmts, index=fn)


def all_indices(stmts: tuple[Stmt, ...]) -> list[Index]:
    out = []
    for s in walk(stmts):
        if isinstance(s, Store):
            out.append(s.index)
        if isinstance(s, (Store, Let, AccUpdate)):
            for e in walk_expr(s.value):
                if isinstance(e, (Load, IndexValue, Piecewise)):
                    out.append(e.index)
    return out


def _remove_loop(stmts: tuple[Stmt, ...], var: str) -> tuple[Stmt, ...]:
    """The loops over `var` replaced by their bodies."""
    return transform(stmts, stmt=lambda s: s.body if isinstance(s, Loop) and s.var == var else s)


def _set_extent(stmts: tuple[Stmt, ...], var: str, extent: int) -> tuple[Stmt, ...]:
    """The loops over `var` given a constant extent."""
    return transform(stmts, stmt=lambda s: replace(s, extent=Index.of(extent)) if isinstance(s, Loop) and s.var == var else s)


def _affine_in(ix: Index, var: str) -> bool:
    """var appears only as a plain term of ix (not inside a Div, Mod or Min)."""
    for a, _ in ix.terms:
        if not isinstance(a, str) and var in Index(((a, 1),)).variables():
            return False
    return True


def simplify_dims(nest: LoopNest) -> LoopNest:
    """Drop size-1 axes, then merge adjacent axes that every index walks as one contiguous axis."""
    body, dims = nest.body, list(nest.dims)
    for d in list(dims):
        if d.extent == 1:
            body = _remove_loop(map_indices(body, lambda ix, v=d.var: substitute(ix, {v: Index()})), d.var)
            dims.remove(d)
    merged_any = True
    while merged_any:
        merged_any = False
        for k in range(len(dims) - 1):
            a, b = dims[k], dims[k + 1]
            if a.reduced != b.reduced:
                continue
            ok = True
            for ix in all_indices(body):
                if not (_affine_in(ix, a.var) and _affine_in(ix, b.var)) or ix.coef(a.var) != ix.coef(b.var) * b.extent:
                    ok = False
                    break
            if not ok:
                continue
            # a*B + b becomes one variable (named a) running over A*B
            def merge(ix: Index, a=a, b=b) -> Index:
                cb = ix.coef(b.var)
                rest = Index(tuple((t, c) for t, c in ix.terms if t not in (a.var, b.var)), ix.const)
                return rest + Index.of(a.var) * cb

            body = _set_extent(_remove_loop(map_indices(body, merge), b.var), a.var, a.extent * b.extent)
            dims[k : k + 2] = [Dim(a.var, a.extent * b.extent, a.reduced)]
            merged_any = True
            break
    return replace(nest, dims=tuple(dims), body=body)


def check_inplace(nest: LoopNest) -> None:
    """An inout buffer may only be read at the element being written (so an update in place is safe)."""
    for b in nest.buffers:
        if b.role != "inout":
            continue
        stores = {ix for ix in _store_indices(nest.body, b.name)}
        loads = set()
        for s in walk(nest.body):
            if isinstance(s, (Store, Let, AccUpdate)):
                for e in walk_expr(s.value):
                    if isinstance(e, Load) and e.buffer == b.name:
                        loads.add(e.index)
                    if isinstance(e, Piecewise):
                        raise FusecError(f"cannot update '{b.value}' in place: the kernel reads it through a concat")
        if len(stores) != 1 or not loads <= stores:
            raise FusecError(
                f"cannot update '{b.value}' in place with '{b.out_value}': the kernel reads '{b.value}' at other elements than it writes"
            )
        if nest.kind != "elementwise":
            raise FusecError(f"cannot update '{b.value}' in place: only elementwise kernels update in place")


def _store_indices(stmts, buffer: str):
    return [s.index for s in walk(stmts) if isinstance(s, Store) and s.buffer == buffer]
