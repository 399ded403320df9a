"""Op makers for reductions: sum, max, mean and the rest over random axes, the statistics built
from them (argmax, argmin, var), and the composites that normalize (softmax, layernorm, ...).

Each needs attributes made for its operand (axes in range, a ddof the count allows, parameters of
the normalized axis's length), which is why they are kept apart from the elementwise makers.
"""

from __future__ import annotations

from fusec.ir.dtypes import BOOL, I64
from fusec.ir.ops import ops_where
from fusec.testing.choosers import Chooser
from fusec.testing.graphgen_state import GenState, Value, add_input, bound_of, emit, power_bound


def reduction_ops() -> tuple[str, ...]:
    return ops_where(lambda op: op.kind == "reduce" and not op.is_composite)


# statistics built from reductions (composites of kind reduce): make_statistic knows their attributes
STATISTIC_RECIPES = ("argmax", "argmin", "var")


def statistic_ops() -> tuple[str, ...]:
    return ops_where(lambda op: op.kind == "reduce" and op.is_composite and op.name in STATISTIC_RECIPES)


# composites need operands and attributes made for them: these are the ones make_composite knows how
# to build
COMPOSITE_RECIPES = ("softmax", "log_softmax", "logsumexp", "layernorm", "rmsnorm")


def composite_ops() -> tuple[str, ...]:
    return ops_where(lambda op: op.is_composite and op.name in COMPOSITE_RECIPES)


def _axes(c: Chooser, rank: int):
    """A reduction axis attribute: None (all), one axis (maybe negative) or a list of axes."""
    if rank == 0 or c.boolean(15):
        return None
    if c.boolean(60):
        a = c.integer(0, rank - 1)
        return a - rank if c.boolean(30) else a
    return c.subset(range(rank), at_least=1)


def make_reduce(s: GenState) -> Value | None:
    c = s.c
    op = c.choice(reduction_ops())
    x = s.pick(lambda v: v.type.rank > 0 and (op not in ("max", "min") or v.type.size > 0))
    if x is None:
        return None
    axis = _axes(c, x.type.rank)
    keepdims = c.boolean(50)
    axes = range(x.type.rank) if axis is None else ([axis] if isinstance(axis, int) else axis)
    n = 1
    for a in axes:
        n *= x.type.shape[a]
    if x.type.dtype.is_int or x.type.dtype == BOOL:
        b = bound_of(x)
        bound = {"sum": b * n, "prod": power_bound(b, n)}.get(op, b)
    else:
        bound = None
    return emit(s, op, [x], bound=bound, axis=axis, keepdims=keepdims)


def _exact(s: GenState, v: Value) -> bool:
    """Whether v's value is the same on every backend, bit for bit: an input, or layout ops of one.
    argmax of a computed float would depend on its last bit (two near-equal values), which the
    tolerance allows to differ."""
    node = s.g.node(v.name)
    while node.kind in ("layout", "broadcast") and node.args:
        node = s.g.node(node.args[0])
    return node.op == "input" or not v.type.dtype.is_float


def make_statistic(s: GenState) -> Value | None:
    c = s.c
    op = c.choice(statistic_ops())
    if op == "var":
        x = s.pick(lambda v: v.type.dtype.is_float and v.type.rank > 0 and v.type.size > 0)
        if x is None:
            return None
        axis = _axes(c, x.type.rank)
        axes = range(x.type.rank) if axis is None else ([axis] if isinstance(axis, int) else axis)
        count = 1
        for a in axes:
            count *= x.type.shape[a]
        ddof = 1 if count > 1 and c.boolean(40) else 0
        return emit(s, op, [x], axis=axis, keepdims=c.boolean(50), ddof=ddof)
    if not s.cfg.allowed(I64):
        return None  # positions are i64, which this configuration leaves out
    x = s.pick(lambda v: v.type.rank > 0 and v.type.size > 0 and v.type.dtype != BOOL and _exact(s, v))
    if x is None:
        return None
    axis = c.integer(-x.type.rank, x.type.rank - 1) if c.boolean(80) else None
    return emit(s, op, [x], bound=float(x.type.size), axis=axis, keepdims=c.boolean(50), last=c.boolean(25))


def make_composite(s: GenState) -> Value | None:
    c = s.c
    op = c.choice(composite_ops())
    x = s.pick(lambda v: v.type.dtype.is_float and v.type.rank > 0 and v.type.size > 0)
    if x is None:
        return None
    if op in ("softmax", "log_softmax"):
        return emit(s, op, [x], axis=c.integer(-x.type.rank, x.type.rank - 1))
    if op == "logsumexp":
        return emit(s, op, [x], axis=_axes(c, x.type.rank), keepdims=c.boolean())
    d = x.type.shape[-1]
    params = [add_input(s, (d,), x.type.dtype) if c.boolean(70) and len(s.g.inputs) < s.cfg.max_inputs + 2 else 1.0]
    if op == "layernorm":
        params.append(add_input(s, (d,), x.type.dtype) if c.boolean(50) else 0.0)
    eps = c.choice([None, 1e-5, 1e-3])
    return emit(s, op, [x] + params, **({} if eps is None else {"eps": eps}))
