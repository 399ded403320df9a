"""Column reductions that stream memory: the reduced loops outside, the kept innermost axis inside.

A reduction that keeps the innermost axis (`sum(x, axis=0)` over f32[N, M], `max(x, axis=1)` over
[B, S, D]) lowers as "for each kept point: for each reduced index: acc += x[...]", so its inner loop
walks memory with a stride of M elements: a 2048x2048 column sum took 14-31 ms where the row sum of
the same array took 0.8 ms. `interchange_reduction(nest, var, width)` turns the loop over the kept
variable `var` inside out, as a BLAS column sum or XLA's column reduction emitter does: a tile of
`width` kept points keeps one accumulator per point (an accumulator row, a `LocalArray`), every
pass over the reduced axes walks the tile's rows, and the innermost loop runs along the row:

    parallel for i1_o in [0, 8):                         (each tile its own points)
      f32 acc_s[256]
      vector for i1_i in [0, 256):
        i1 = i1_o*256 + i1_i
        acc_s[i1_i] = 0.0
      for r0 in [0, 2048):
        vector for i1_i in [0, 256):
          i1 = i1_o*256 + i1_i
          acc_s[i1_i] = acc_s[i1_i] + x[i1 + r0*2048]
      vector for i1_i in [0, 256):
        i1 = i1_o*256 + i1_i
        s[i1] = acc_s[i1_i]

It is scalar expansion, loop distribution and interchange in one step, and it applies to whatever a
reduce kernel holds, because each kept point computes only its own values: every statement of the
row body that is not a loop (an accumulator's init and update, a row temporary, a store) goes into
a vector loop over the tile, in place, and a scalar that one such loop defines and another reads
becomes an array over the tile. So several reductions at one level, multi-pass kernels (a column
softmax: max row, then sum row, then the outputs), hoisted row values (`Let`), mean, keepdims and
epilogue outputs all come through. A float sum or product is blocked first (blocked.py), so the
f32 partial and the f64 total are both rows. An update becomes a store of the combined value:
`acc[k] = acc[k] + v` (integers wrap as the accumulators did), `acc[k] = maximum(v, acc[k])` for
max (NaN-propagating, ties keep the accumulator, as the scalar form), `|` / `&` for bool.

`column_var(nest)` says when it pays: a reduce nest whose loads run along its innermost kept
variable with unit stride more often than along its innermost reduced one. Two kinds of nest keep
the strided lowering: one with a donated (inout) buffer (its loads and stores would be reordered
across points), and one whose kept axis is shorter than a vector (MIN_VECTOR, below). The tile
loop is left serial here; the schedule makes the band's outermost loop parallel (schedule.py).
"""

from __future__ import annotations

from dataclasses import replace

from fusec.ir.dtypes import BOOL
from fusec.loops.blocked import BLOCKED_OPS
from fusec.loops.ir import (
    AccInit,
    AccUpdate,
    Const,
    Expr,
    Index,
    Let,
    LetIndex,
    Load,
    LocalArray,
    Loop,
    LoopNest,
    Min,
    Op,
    Ref,
    SplitInfo,
    Stmt,
    Store,
    expr_refs,
    stmt_exprs,
    walk,
    walk_expr,
)
from fusec.loops.simplify import used_index_vars
from fusec.loops.visit import map_expr

# bytes of accumulator rows per tile: they stay in L1 (48 KiB here) with room for the rows of input
ACC_ROW_BYTES = 32768
MIN_PARALLEL_TILE = 1024  # kept points per tile at least, for tiles side by side on two threads
MIN_ACC_ROW = 16  # kept points per tile at least: one AVX-512 vector of f32
# A kept axis shorter than this keeps the strided form: its inner loops would be too short for a
# vector, and gcc 12.2 at -O3 -march=native, left to vectorize such short plain loops itself
# (no `omp simd`), computes wrong values: an i32 column product over [36, 7] (or 3, 5, 6, 9, 15
# columns) read back in a later pass gave 180 of 252 outputs wrong, right at -O2, with
# -fno-tree-loop-vectorize or with `omp simd` on the inner loops (tests/test_c_columns.py keeps the
# case). Every inner loop of this form is therefore a vector loop.
MIN_VECTOR = 8
_COMBINE = {"sum": "add", "prod": "mul", "max": "maximum", "min": "minimum"}
_COMBINE_BOOL = {"sum": "maximum", "max": "maximum", "prod": "minimum", "min": "minimum"}  # | and &


def kept_band(nest: LoopNest) -> list[Loop]:
    """The perfectly nested loops over the kept variables, outermost first ([] if not so)."""
    kept = {d.var for d in nest.dims if not d.reduced}
    band: list[Loop] = []
    body = nest.body
    while len(body) == 1 and isinstance(body[0], Loop) and body[0].var in kept:
        band.append(body[0])
        body = body[0].body
    return band if kept and {lp.var for lp in band} == kept else []


def column_var(nest: LoopNest) -> str | None:
    """The innermost kept variable, when interchange_reduction makes this reduce nest walk memory
    contiguously: its loads run along that variable with unit stride more often than along the
    innermost reduced one. None for any other nest."""
    if nest.kind != "reduce" or nest.matmul is not None or any(b.role == "inout" for b in nest.buffers):
        return None
    band = kept_band(nest)
    reduced = [d.var for d in nest.dims if d.reduced]
    if not band or not reduced or not band[-1].extent.is_const or band[-1].extent.const < MIN_VECTOR:
        return None
    var, inner_reduced = band[-1].var, reduced[-1]
    loads = [e for s in walk(band[-1].body) for top in stmt_exprs(s) for e in walk_expr(top) if isinstance(e, Load)]
    along_kept = sum(ld.index.coef(var) == 1 for ld in loads)
    along_reduced = sum(ld.index.coef(inner_reduced) == 1 for ld in loads)
    return var if along_kept > along_reduced else None


def default_acc_row(nest: LoopNest) -> int:
    """Kept points per tile: as few tiles as keep each tile's accumulator rows within ACC_ROW_BYTES (a
    float sum or product keeps an f64 total beside its f32 partial), and two tiles, one per core, once
    each is at least MIN_PARALLEL_TILE points wide; equal tiles, a multiple of MIN_ACC_ROW points.

    Measured (column sums, 2 threads, medians of 10): 2048x2048 in tiles of 64/256/1024 points 0.92/
    0.88/0.70 ms, 4096x4096 in tiles of 1024/2048 2.90/2.78 ms; narrow tiles side by side make both
    threads read parts of the same rows: 65536x512 in two tiles of 256 took 13.4 ms, in one of 512 (one
    thread) 7.7 ms, and 262144x128 in four tiles of 32 17.5 ms, in one 6.8 ms."""
    n = kept_band(nest)[-1].extent.const
    per_point = sum(s.dtype.itemsize + (8 if s.op in BLOCKED_OPS and s.dtype.is_float else 0)
                    for s in walk(nest.body) if isinstance(s, AccInit))
    tiles = max(-(-n * max(per_point, 1) // ACC_ROW_BYTES), 2 if n >= 2 * MIN_PARALLEL_TILE else 1)
    width = -(-n // tiles)
    return min(n, -(-width // MIN_ACC_ROW) * MIN_ACC_ROW)


def interchange_reduction(nest: LoopNest, var: str, width: int) -> LoopNest:
    """The kept loop over `var` as tiles of `width` points, with every non-loop statement of its
    body in a vector loop over the tile and the scalars that cross such loops as arrays over it
    (see the module docstring). Raises ValueError when `var` is not the innermost kept loop."""
    band = kept_band(nest)
    if not band or band[-1].var != var or not band[-1].extent.is_const:
        raise ValueError(f"{nest.name}: '{var}' is not the innermost kept loop of a reduce nest")
    n = band[-1].extent.const
    width = max(1, min(width, n))
    outer, inner = f"{var}_o", f"{var}_i"
    single = width == n
    if single:
        inner = var
    row = band[-1].body
    groups = _groups(row, var)
    expanded = _crossing(groups)
    dtypes = {s.name: s.dtype if isinstance(s, AccInit) else s.value.dtype
              for s in walk(row) if isinstance(s, (AccInit, Let)) and s.name in expanded}
    local = Index.of(inner)

    def element(name: str) -> Load:
        return Load(name, local, dtypes[name])

    def value(e: Expr) -> Expr:
        return map_expr(e, expr=lambda x: element(x.name) if isinstance(x, Ref) and x.name in expanded else x)

    def point(s: Stmt) -> Stmt:
        if isinstance(s, AccInit) and s.name in expanded:
            return Store(s.name, local, Const(s.identity, s.dtype))
        if isinstance(s, AccUpdate) and s.name in expanded:
            dt = dtypes[s.name]
            fold = (_COMBINE_BOOL if dt == BOOL else _COMBINE)[s.op]
            args = (element(s.name), value(s.value)) if s.op in ("sum", "prod") else (value(s.value), element(s.name))
            return Store(s.name, local, Op(fold, args, dt))
        if isinstance(s, Let) and s.name in expanded:
            return Store(s.name, local, value(s.value))
        if isinstance(s, (Let, Store, AccUpdate)):
            return replace(s, value=value(s.value))
        return s

    if n % width == 0:
        extent = Index.of(width)
    else:  # the last tile is shorter, as in schedule.split
        extent = Index(((Min(Index.of(width), Index.of(n) - Index.of(outer) * width), 1),))
    define = LetIndex(var, Index.of(outer) * width + local)
    split: SplitInfo | None = SplitInfo(var, width, "inner")
    if single:  # one tile: its loops run over `var` itself, and the rows are indexed by it
        extent, split = Index.of(n), None

    def build(stmts: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
        out: list[Stmt] = []
        run: list[Stmt] = []

        def close() -> None:
            if run:
                body = tuple(point(s) for s in run)
                uses_var = not single and var in used_index_vars(body)
                out.append(Loop(inner, extent, ((define,) if uses_var else ()) + body, "vector", split))
                run.clear()

        for s in stmts:
            if isinstance(s, Loop):
                close()
                out.append(replace(s, body=build(s.body)))
            elif isinstance(s, LetIndex) and var not in s.value.variables():
                close()
                out.append(s)
            else:
                run.append(s)
        close()
        return tuple(out)

    arrays = tuple(LocalArray(name, dtypes[name], width, "accumulator row" if _is_acc(row, name) else "row values")
                   for name in dtypes)
    tiles = arrays + build(row)
    if not single:
        tiles = (Loop(outer, Index.of(-(-n // width)), tiles, "serial", SplitInfo(var, width, "outer")),)

    def rebuild(loops: list[Loop]) -> tuple[Stmt, ...]:
        if len(loops) == 1:
            return tiles
        return (replace(loops[0], body=rebuild(loops[1:])),)

    return nest.with_body(rebuild(band))


def _is_acc(stmts: tuple[Stmt, ...], name: str) -> bool:
    return any(isinstance(s, AccInit) and s.name == name for s in walk(stmts))


def _groups(stmts: tuple[Stmt, ...], var: str) -> list[list[Stmt]]:
    """The runs of non-loop statements that become one vector loop each, in program order."""
    groups: list[list[Stmt]] = []
    run: list[Stmt] = []
    for s in stmts:
        if isinstance(s, Loop) or (isinstance(s, LetIndex) and var not in s.value.variables()):
            if run:
                groups.append(run)
                run = []
            if isinstance(s, Loop):
                groups += _groups(s.body, var)
        else:
            run.append(s)
    if run:
        groups.append(run)
    return groups


def _crossing(groups: list[list[Stmt]]) -> set[str]:
    """Scalars (accumulators, temporaries) that one vector loop defines and another uses."""
    home: dict[str, int] = {}
    for k, group in enumerate(groups):
        for s in group:
            if isinstance(s, (AccInit, Let)):
                home[s.name] = k
    crossing: set[str] = set()
    for k, group in enumerate(groups):
        for s in group:
            used = set(expr_refs(s.value)) if isinstance(s, (Let, Store, AccUpdate)) else set()
            if isinstance(s, AccUpdate):
                used.add(s.name)
            crossing |= {name for name in used if name in home and home[name] != k}
    return crossing
