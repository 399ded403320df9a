"""Op makers for the ops that move elements rather than compute them: layout ops (transpose,
reshape, broadcast_to, expand_dims, squeeze, slice, concat), iota, and matmul.

Each needs a shape-aware recipe (a permutation, a divisor of the size, a slice inside the axis, a
weight whose inner dimension matches), which is why they are kept apart from the elementwise makers.
"""

from __future__ import annotations

from fusec.ir.dtypes import BOOL, F32, F64, I32, I64
from fusec.ir.ops import ops_where
from fusec.testing.graphgen_state import GenState, Value, add_input, bound_of, emit, fits

# layout ops need operands and attributes made for them: these are the ones make_layout knows how to
# build
LAYOUT_RECIPES = ("transpose", "reshape", "broadcast_to", "expand_dims", "squeeze", "slice", "concat")


def layout_ops() -> tuple[str, ...]:
    return ops_where(lambda op: op.kind in ("layout", "broadcast") and op.name in LAYOUT_RECIPES)


def make_layout(s: GenState) -> Value | None:
    c = s.c
    op = c.choice(layout_ops())
    if op == "squeeze":
        x = s.pick(lambda v: 1 in v.type.shape)
    elif op in ("expand_dims", "broadcast_to"):
        x = s.pick()
    else:
        x = s.pick(lambda v: v.type.rank > 0)
    if x is None:
        return None
    shape, rank = x.type.shape, x.type.rank
    b = x.bound
    if op == "transpose":
        perm = list(range(rank))
        for i in range(rank - 1, 0, -1):  # Fisher-Yates through the chooser
            j = c.integer(0, i)
            perm[i], perm[j] = perm[j], perm[i]
        return emit(s, op, [x], bound=b, perm=None if c.boolean(20) else perm)
    if op == "reshape":
        size = x.type.size
        divisors = [d for d in range(1, size + 1) if size and size % d == 0]
        if not divisors or c.boolean(30):
            new = [size]
        else:
            d = c.choice(divisors)
            new = [d, size // d]
        if c.boolean(30):
            new[c.integer(0, len(new) - 1)] = -1 if size else new[0]
        return emit(s, op, [x], bound=b, shape=new)
    if op == "broadcast_to":
        target = list(shape)
        target = [c.choice(s.cfg.sizes) if d == 1 and c.boolean(60) else d for d in target]
        if c.boolean(40):
            target.insert(0, c.choice(s.cfg.sizes))
        if not fits(s.cfg, tuple(target)):
            return None
        return emit(s, op, [x], bound=b, shape=target)
    if op == "expand_dims":
        return emit(s, op, [x], bound=b, axis=c.integer(-rank - 1, rank))
    if op == "squeeze":
        ones = [i for i, d in enumerate(shape) if d == 1]
        if not ones:
            return None
        return emit(s, op, [x], bound=b, axis=None if c.boolean(40) else c.subset(ones, at_least=1))
    if op == "slice":
        axis = c.integer(0, rank - 1)
        n = shape[axis]
        start = c.integer(0, n)
        stop = c.integer(start, n) if c.boolean(70) else 2**62
        step = c.choice([1, 1, 2, 3])
        return emit(s, op, [x], bound=b, axis=axis - rank if c.boolean(30) else axis, start=start, stop=stop, step=step)
    # concat: x with itself or a same-shaped partner along one axis
    axis = c.integer(0, rank - 1)
    others = [v for v in s.values if v.type.rank == rank and all(v.type.shape[i] == shape[i] for i in range(rank) if i != axis)]
    parts = [x] + [c.choice(others) for _ in range(c.integer(1, 2))]
    if x.type.dtype.is_int or any(p.type.dtype.is_int for p in parts):
        b = max(bound_of(p) for p in parts)
    return emit(s, op, parts, bound=b, axis=axis)


def make_matmul(s: GenState) -> Value | None:
    c = s.c
    x = s.pick(lambda v: v.type.rank > 0 and v.type.dtype != BOOL)
    if x is None:
        return None
    k = x.type.shape[-1]
    dtype = x.type.dtype
    # the right operand: an existing value whose inner dimension matches, or a fresh weight input
    ok = [v for v in s.values if v.type.rank >= 2 and v.type.shape[-2] == k and v.type.dtype != BOOL]
    if x.type.rank == 1:
        ok += [v for v in s.values if v.type.rank == 1 and v.type.shape[0] == k and v.type.dtype != BOOL]
    if ok and c.boolean(40):
        w = c.choice(ok)
    else:
        shape = (k, c.choice(s.cfg.sizes)) if c.boolean(80) else (k,)
        if x.type.rank >= 3 and c.boolean(30):
            shape = x.type.shape[:-2] + shape
        w = add_input(s, shape, dtype)
    if c.boolean(25):
        x, w = (w, x) if (w.type.rank >= 1 and x.type.rank >= 2 and w.type.shape[-1] == x.type.shape[-2]) else (x, w)
    bound = bound_of(x) * bound_of(w) * k
    return emit(s, "matmul", [x, w], bound=bound)


def make_iota(s: GenState) -> Value | None:
    c = s.c
    x = s.pick(lambda v: v.type.rank > 0)
    shape = x.type.shape if x is not None else (c.choice(s.cfg.sizes),)
    dtype = c.choice([d for d in (I32, I64, F32, F64) if s.cfg.allowed(d)] or [I32])
    return emit(s, "iota", [], bound=float(max(shape)), shape=list(shape), axis=c.integer(0, len(shape) - 1), dtype=dtype)
