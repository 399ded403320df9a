"""The simplifier: a scheduled nest rewritten into the loops a person would write.

    fold_splits        for i_i in [0, min(21, 512 - i_o*21)): i = i_o*21 + i_i; ...
                         -> for i in [i_o*21, min(i_o*21 + 21, 512)): ...
    drop_unit_loops    a loop that runs once becomes its body, with its variable replaced by its start
    hoist_index_lets   an index computed inside a loop that does not depend on it moves out in front of it
    drop_identity_stores
                       buf[ix] = v where v was just read from buf[ix] (and nothing wrote there since) is
                       dropped, with the read if nothing else uses it, and the loops left empty

Each pass is a `Pass` (visit.py), listed in SIMPLIFY_PASSES; `simplify(nest)` runs them all. The
result may hold loops with a nonzero `start`, which only the C backend reads.
"""

from __future__ import annotations

from dataclasses import replace

from fusec.loops.ir import (
    AccUpdate,
    Index,
    Let,
    LetIndex,
    Load,
    Loop,
    LoopNest,
    Min,
    Ref,
    Stmt,
    Store,
    bounds,
    expr_refs,
    walk,
    walk_expr,
)
from fusec.loops.visit import Pass, rename_index_var, run_passes, transform


def used_index_vars(stmts: tuple[Stmt, ...]) -> set[str]:
    """Loop variables read anywhere in stmts: addresses, index lets, loop bounds."""
    used: set[str] = set()
    for s in walk(stmts):
        if isinstance(s, Loop):
            used |= s.extent.variables() | s.start.variables()
        elif isinstance(s, LetIndex):
            used |= s.value.variables()
        elif isinstance(s, Store):
            used |= s.index.variables()
        if isinstance(s, (Let, Store, AccUpdate)):
            for e in walk_expr(s.value):
                if hasattr(e, "index"):
                    used |= e.index.variables()
    return used


def fold_min(ix: Index, ranges: dict[str, int]) -> Index:
    """min(a, b) terms replaced by a or b where the bounds of a and b decide which is smaller."""
    out = Index((), ix.const)
    for atom, coef in ix.terms:
        if isinstance(atom, Min):
            a, b = fold_min(atom.a, ranges), fold_min(atom.b, ranges)
            if bounds(a, ranges)[1] <= bounds(b, ranges)[0]:
                out = out + a * coef
                continue
            if bounds(b, ranges)[1] <= bounds(a, ranges)[0]:
                out = out + b * coef
                continue
            atom = Min(a, b)
        out = out + Index(((atom, 1),)) * coef
    return out


# ----------------------------------------------------------------------------------------------
# the passes


def fold_splits(nest: LoopNest) -> LoopNest:
    """An inner split loop runs over the original variable itself, from the tile's start to its end."""

    def visit(s: Stmt) -> Stmt:
        if not (isinstance(s, Loop) and s.split and s.split.part == "inner" and s.kind != "unrolled"):
            return s
        var, factor = s.split.of, s.split.factor
        outer = f"{var}_o"
        start = Index.of(outer) * factor
        define = LetIndex(var, start + Index.of(s.var))
        if define not in walk(s.body):
            return s
        body = transform(s.body, stmt=lambda b: () if b == define else b)
        if s.var in used_index_vars(body) or not s.start.is_const or s.start.const != 0:
            return s
        if s.extent.is_const:
            end = start + s.extent.const
        else:  # the tail form min(factor, n - outer*factor): the end is min(outer*factor + factor, n)
            (atom, coef), = s.extent.terms
            assert isinstance(atom, Min) and coef == 1 and atom.a.is_const, s.extent
            end = Index(((Min(start + atom.a.const, atom.b + start), 1),))
        return replace(s, var=var, start=start, extent=end, body=body)

    return nest.with_body(transform(nest.body, stmt=visit))


def drop_unit_loops(nest: LoopNest) -> LoopNest:
    """A loop with one iteration is replaced by its body (its variable by its start)."""
    ranges = _ranges(nest)

    def visit(s: Stmt) -> Stmt | tuple[Stmt, ...]:
        if not isinstance(s, Loop):
            return s
        s = replace(s, extent=fold_min(s.extent, ranges), start=fold_min(s.start, ranges))
        trips = s.trips
        if trips.is_const and trips.const == 1:
            return rename_index_var(s.body, s.var, s.start)
        return s

    return nest.with_body(transform(nest.body, stmt=visit))


def hoist_index_lets(nest: LoopNest) -> LoopNest:
    """Index lets that do not depend on their loop move out in front of it."""

    def visit(s: Stmt) -> Stmt | tuple[Stmt, ...]:
        if not isinstance(s, Loop):
            return s
        inside = {s.var} | {b.var for b in walk(s.body) if isinstance(b, (Loop, LetIndex))}
        hoisted: list[Stmt] = []
        kept: list[Stmt] = []
        for b in s.body:
            if isinstance(b, LetIndex) and not (b.value.variables() & (inside - {h.var for h in hoisted})) \
                    and not _defined_before(b, kept):
                hoisted.append(b)
            else:
                kept.append(b)
        if not hoisted:
            return s
        return tuple(hoisted) + (replace(s, body=tuple(kept)),)

    return nest.with_body(transform(nest.body, stmt=visit))


def _defined_before(let: LetIndex, stmts: list[Stmt]) -> bool:
    """True if an earlier statement of the body defines a variable the let reads."""
    names = {b.var for b in walk(tuple(stmts)) if isinstance(b, (Loop, LetIndex))}
    return bool(let.value.variables() & names)


def drop_identity_stores(nest: LoopNest) -> LoopNest:
    """Stores of a value just read from the same element, then the reads and loops left unused."""

    def block(s: Stmt) -> Stmt | tuple[Stmt, ...]:
        if not isinstance(s, Loop):
            return s
        body = _drop_in_block(s.body)
        writes = any(isinstance(b, (Store, AccUpdate)) for b in walk(body))
        return replace(s, body=body) if writes else ()  # a loop that writes nothing has no effect

    body = _drop_in_block(transform(nest.body, stmt=block))
    return nest.with_body(body)


def _drop_in_block(stmts: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
    loaded: dict[str, Load] = {}  # Let name -> the load it holds, while no store has touched the buffer
    out: list[Stmt] = []
    for s in stmts:
        if isinstance(s, Let) and isinstance(s.value, Load):
            loaded[s.name] = s.value
        elif isinstance(s, Store):
            value = loaded.get(s.value.name) if isinstance(s.value, Ref) else s.value
            if isinstance(value, Load) and (value.buffer, value.index) == (s.buffer, s.index):
                continue  # writes back what is there
            loaded = {k: v for k, v in loaded.items() if v.buffer != s.buffer}
        elif isinstance(s, Loop):
            loaded = {k: v for k, v in loaded.items()
                      if not any(isinstance(b, Store) and b.buffer == v.buffer for b in walk(s.body))}
        out.append(s)
    # a read that nothing uses any more goes too
    used = set()
    for s in walk(tuple(out)):
        if isinstance(s, (Let, Store, AccUpdate)):
            used |= expr_refs(s.value)
        if isinstance(s, AccUpdate):
            used.add(s.name)
    return tuple(s for s in out if not (isinstance(s, Let) and s.name in loaded and s.name not in used))


def _ranges(nest: LoopNest) -> dict[str, int]:
    """Upper bounds (exclusive) of every loop variable."""
    r = {d.var: d.extent for d in nest.dims}
    for s in walk(nest.body):
        if isinstance(s, Loop):
            r[s.var] = bounds(s.extent, r)[1]
        elif isinstance(s, LetIndex):
            r[s.var] = bounds(s.value, r)[1] + 1
    return r


SIMPLIFY_PASSES = (
    Pass("drop_identity_stores", drop_identity_stores, "no store of a value just read from the same element"),
    Pass("fold_splits", fold_splits, "an inner split loop runs over the original variable"),
    Pass("drop_unit_loops", drop_unit_loops, "no loop that runs once"),
    Pass("hoist_index_lets", hoist_index_lets, "index arithmetic moves out of the loops it does not depend on"),
)


def simplify(nest: LoopNest, trace: list | None = None) -> LoopNest:
    """Every simplifier pass, in order (see the module docstring)."""
    return run_passes(nest, SIMPLIFY_PASSES, trace)
