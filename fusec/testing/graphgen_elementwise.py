"""Op makers for elementwise ops: unary and binary arithmetic, comparisons, where, casts, logical
ops and named constants.

Each maker takes the generator's state, picks operands and attributes through its chooser, and adds
one op (or None when nothing fits). The ops come from the op table by kind and family, so a newly
registered elementwise op appears in random graphs without a change here.
"""

from __future__ import annotations

from fusec.ir.dtypes import BOOL, I32, I64, TensorType
from fusec.ir.ops import REQUIRED, op_named, ops_in_family, ops_where
from fusec.testing.choosers import Chooser
from fusec.testing.graphgen_state import (
    INT_LIMIT,
    GenState,
    Value,
    bound_of,
    emit,
    literal,
    partner,
    power_bound,
    random_dtype,
)


# The ops come from the op table, by kind and family, so a newly registered op appears in random
# graphs. Each is a function: rows registered after import (by a test) are seen.
def unary_float_ops() -> tuple[str, ...]:
    """Unary functions of floats (exp, sigmoid, gelu, ...)."""
    return ops_where(lambda op: op.kind == "elementwise" and op.arity == 1 and "float_math" in op.families)


def unary_numeric_ops() -> tuple[str, ...]:
    """Unary functions of numbers (neg, abs, relu, ...)."""
    return ops_where(lambda op: op.kind == "elementwise" and op.arity == 1 and "numeric" in op.families)


def binary_arith_ops() -> tuple[str, ...]:
    return ops_where(lambda op: op.kind == "elementwise" and op.arity == 2 and "arithmetic" in op.families)


def comparison_ops() -> tuple[str, ...]:
    return ops_in_family("comparison")


def logical_ops() -> tuple[str, ...]:
    """and, or, xor and not of bools."""
    return ops_in_family("logical")


def make_unary(s: GenState) -> Value | None:
    c = s.c
    if c.boolean(60):
        x = s.pick(lambda v: v.type.dtype.is_float)
        if x is None:
            return None
        op = c.choice(unary_float_ops())
        return emit(s, op, [x], **_choose_attrs(c, op))
    x = s.pick(lambda v: v.type.dtype != BOOL)
    if x is None:
        return None
    op = c.choice(unary_numeric_ops())
    return emit(s, op, [x], bound=x.bound, **_choose_attrs(c, op))


def _choose_attrs(c: Chooser, op: str) -> dict:
    """Attributes of an elementwise op: one of the choices where the row lists them, else the default."""
    attrs = {}
    for spec in op_named(op).attrs:
        if spec.choices is not None:
            attrs[spec.name] = c.choice(spec.choices)
        elif spec.default is REQUIRED:
            raise ValueError(f"graphgen cannot choose the attribute '{spec.name}' of {op}: give it choices or a default")
    return attrs


def make_binary(s: GenState) -> Value | None:
    c = s.c
    x = s.pick(lambda v: v.type.dtype != BOOL or c.boolean(20))
    if x is None:
        return None
    y = partner(s, x)
    args = [x, y] if c.boolean(75) else [y, x]
    if c.boolean(25):
        return emit(s, c.choice(comparison_ops()), args)
    op = c.choice(binary_arith_ops())
    bx, by = bound_of(args[0]), bound_of(args[1])
    bound = {"add": bx + by, "sub": bx + by, "mul": bx * by, "maximum": max(bx, by), "minimum": max(bx, by)}.get(op)
    if op == "pow":
        # integer powers: only small literal exponents, so the bound stays known
        if isinstance(args[1], int) and not isinstance(args[1], bool) and 0 <= args[1] <= 3:
            bound = power_bound(bx, args[1])
        elif isinstance(args[1], float) and isinstance(args[0], Value) and args[0].type.dtype.is_float:
            bound = None
        else:
            bound = float("inf")  # refused below if the result is an integer
    return emit(s, op, args, bound=bound)


def _some_bool(s: GenState) -> Value | None:
    """A bool value: one made already, or a comparison of a number with a literal."""
    cond = s.pick(lambda v: v.type.dtype == BOOL)
    if cond is None:
        x = s.pick(lambda v: v.type.dtype != BOOL)
        if x is None:
            return None
        cond = emit(s, s.c.choice(comparison_ops()), [x, literal(s, x.type.dtype)])
    return cond


def make_where(s: GenState) -> Value | None:
    c = s.c
    cond = _some_bool(s)
    if cond is None:
        return None
    a = partner(s, cond)
    if isinstance(a, Value) and a.type.dtype == BOOL and c.boolean(70):
        a = s.pick(lambda v: v.type.dtype != BOOL) or 1.5
    b = partner(s, a) if isinstance(a, Value) else (-float("inf") if c.boolean(20) else 0.0)
    if isinstance(a, bool) and isinstance(b, float):
        a = 1.0
    if isinstance(a, Value) and a.type.dtype.is_int and isinstance(b, float):
        b = 0
    bound = max(bound_of(a), bound_of(b))
    return emit(s, "where", [cond, a, b], bound=bound)


def make_cast(s: GenState) -> Value | None:
    c = s.c
    x = s.pick()
    if x is None:
        return None
    target = random_dtype(c, s.cfg)
    if target.is_int and x.type.dtype.is_float:
        # guard: NaN, inf and huge floats have no integer value (C leaves the cast undefined)
        small = emit(s, "lt", [emit(s, "abs", [x]), 1000.0])
        if small is None:
            return None
        x = emit(s, "where", [small, x, 0.0])
        if x is None:
            return None
        return emit(s, "cast", [x], bound=1000.0, dtype=target)
    if target.is_int:
        bound = x.bound if x.bound is not None else 1.0
        if x.type.dtype == I64 and target == I32 and bound >= INT_LIMIT["i32"]:
            return None
        return emit(s, "cast", [x], bound=bound, dtype=target)
    return emit(s, "cast", [x], dtype=target)


def make_logical(s: GenState) -> Value | None:
    """A logical op of bool values; a comparison makes the first bool when there is none yet."""
    c = s.c
    x = _some_bool(s)
    if x is None:
        return None
    op = c.choice(logical_ops())
    if op_named(op).arity == 1:
        return emit(s, op, [x])
    other = partner(s, x, same_dtype=True)
    if isinstance(other, Value) and other.type.dtype != BOOL:
        other = c.boolean()
    return emit(s, op, [x, other] if c.boolean(75) else [other, x])


def make_typed_const(s: GenState) -> Value | None:
    """A named constant binding (`c = f64(0.5)`) used later, sometimes by several ops."""
    c = s.c
    dtype = random_dtype(c, s.cfg)
    value = literal(s, dtype)
    if dtype.is_float and c.boolean(10):
        value = c.choice([float("inf"), -float("inf"), float("nan")])
    name = s.name()
    out = s.g.const(value, dtype, name=name)
    v = Value(out, TensorType(dtype, ()), float(abs(value)) if dtype.is_int else None)
    s.values.append(v)
    return v
