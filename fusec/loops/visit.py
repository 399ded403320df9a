"""One traversal for every loop-IR pass, and named passes.

    transform(stmts, stmt=..., expr=..., index=...)    rebuild statements bottom-up

`transform` walks a statement list depth first. For each statement it first rebuilds a loop's body,
then applies `index` to every Index the statement holds (store and load addresses, iota and concat
selectors; not loop extents), then `expr` to every expression bottom-up (operands before the
expression that uses them), and last `stmt` to the statement itself. `stmt` returns a statement, a
tuple of statements (spliced in its place: () deletes it), or the statement unchanged.

A pass is a named function LoopNest -> LoopNest (`Pass`), so a pipeline of passes can be listed and
traced (`run_passes(nest, passes, trace)`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from fusec.loops.ir import (
    AccUpdate,
    Expr,
    Index,
    IndexValue,
    Let,
    Load,
    Loop,
    LoopNest,
    Op,
    Piecewise,
    Stmt,
    Store,
    substitute,
)

StmtFn = Callable[[Stmt], "Stmt | tuple[Stmt, ...]"]
ExprFn = Callable[[Expr], Expr]
IndexFn = Callable[[Index], Index]


def map_expr(e: Expr, expr: ExprFn | None = None, index: IndexFn | None = None) -> Expr:
    """e rebuilt bottom-up: `index` on its indices, then `expr` on each subexpression."""
    if isinstance(e, Op):
        e = replace(e, args=tuple(map_expr(a, expr, index) for a in e.args))
    elif isinstance(e, Piecewise):
        e = replace(e, pieces=tuple(map_expr(p, expr, index) for p in e.pieces))
    if index is not None and isinstance(e, (Load, IndexValue, Piecewise)):
        e = replace(e, index=index(e.index))
    return expr(e) if expr is not None else e


def transform(stmts: tuple[Stmt, ...], stmt: StmtFn | None = None, expr: ExprFn | None = None,
              index: IndexFn | None = None) -> tuple[Stmt, ...]:
    """The statements rebuilt bottom-up (see the module docstring)."""
    out: list[Stmt] = []
    for s in stmts:
        if isinstance(s, Loop):
            s = replace(s, body=transform(s.body, stmt, expr, index))
        if isinstance(s, Store) and index is not None:
            s = replace(s, index=index(s.index))
        if isinstance(s, (Let, Store, AccUpdate)) and (expr is not None or index is not None):
            s = replace(s, value=map_expr(s.value, expr, index))
        result = stmt(s) if stmt is not None else s
        out.extend(result if isinstance(result, tuple) else (result,))
    return tuple(out)


def rename_index_var(stmts: tuple[Stmt, ...], old: str, by: Index) -> tuple[Stmt, ...]:
    """Every index (addresses, LetIndex values, loop extents) with loop variable `old` replaced by `by`."""
    env = {old: by}

    def fix(s: Stmt) -> Stmt:
        if isinstance(s, Loop):
            return replace(s, extent=substitute(s.extent, env), start=substitute(s.start, env))
        if hasattr(s, "value") and isinstance(s.value, Index):  # LetIndex
            return replace(s, value=substitute(s.value, env))
        return s

    return transform(stmts, stmt=fix, index=lambda ix: substitute(ix, env))


# ----------------------------------------------------------------------------------------------
# named passes


@dataclass(frozen=True)
class Pass:
    """A loop-IR pass with a name, so a pipeline of passes can be printed and traced."""

    name: str
    run: Callable[[LoopNest], LoopNest]
    doc: str = ""

    def __call__(self, nest: LoopNest) -> LoopNest:
        return self.run(nest)


def run_passes(nest: LoopNest, passes: Sequence[Pass], trace: list | None = None) -> LoopNest:
    """Apply passes in order; `trace` (a list) receives (pass name, nest after it) for each pass
    that changed the nest."""
    for p in passes:
        before, nest = nest, p(nest)
        if trace is not None and nest != before:
            trace.append((p.name, nest))
    return nest
