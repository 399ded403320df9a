"""Random well-typed graphs and matching inputs, for property tests and the fuzzer.

One generator, two drivers. `build_graph(chooser, config)` makes every random decision through a
`Chooser`, so the same code runs under hypothesis (`graphs()`, which shrinks failures for free) and
under a plain seeded RNG (`random_graph(seed)`, used by tools/fuzz.py for long sessions, which
shrinks by replaying a shortened list of choices: see `ReplayChooser`).

The graphs are built through the Graph builder API only (`add_input`, `add`, `const`,
`set_outputs`), so every graph the generator makes passed the same checks as parsed source. They mix
every op kind: elementwise chains, broadcasting, reductions over random axes with and without
keepdims, layout ops, matmuls, composites, diamonds and shared subexpressions, several outputs, and
odd sizes (1, primes, sizes that are not a multiple of any tile).

Integer arithmetic is kept free of overflow: the generator tracks a bound on every integer value's
magnitude and refuses an op that could leave the dtype's range. Overflow wraps in NumPy but is
undefined behaviour in C, so a graph that overflowed would not have one right answer.
Float-to-integer casts are guarded the same way (|x| < 1000, NaN mapped to 0).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import numpy as np

from fusec.errors import FusecError
from fusec.ir.dtypes import BOOL, DTYPES, F32, F64, I32, I64, DType, TensorType, broadcast_shapes
from fusec.ir.graph import Graph
from fusec.ir.ops import REQUIRED, op_named, ops_in_family, ops_where

# sizes: 1 (broadcasts), small primes and sizes that are not a multiple of 4, 8 or 16, plus a few
# that are, so tiled code sees both full and ragged tiles
ODD_SIZES = (1, 2, 3, 5, 7, 8, 11, 13, 16, 17, 31, 33)



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


def reduction_ops() -> tuple[str, ...]:
    return ops_where(lambda op: op.kind == "reduce" and not op.is_composite)


def logical_ops() -> tuple[str, ...]:
    """and, or, xor and not of bools."""
    return ops_in_family("logical")


# statistics built from reductions (composites of kind reduce): _statistic knows their attributes
STATISTIC_RECIPES = ("argmax", "argmin", "var")


def statistic_ops() -> tuple[str, ...]:
    return ops_where(lambda op: op.kind == "reduce" and op.is_composite and op.name in STATISTIC_RECIPES)


# composite and layout ops need operands and attributes made for them: these are the ones _composite
# and _layout know how to build
COMPOSITE_RECIPES = ("softmax", "log_softmax", "logsumexp", "layernorm", "rmsnorm")
LAYOUT_RECIPES = ("transpose", "reshape", "broadcast_to", "expand_dims", "squeeze", "slice", "concat")


def composite_ops() -> tuple[str, ...]:
    return ops_where(lambda op: op.is_composite and op.name in COMPOSITE_RECIPES)


def layout_ops() -> tuple[str, ...]:
    return ops_where(lambda op: op.kind in ("layout", "broadcast") and op.name in LAYOUT_RECIPES)


# integer values stay below these magnitudes, so no op can overflow
INT_LIMIT = {"i32": 2**30, "i64": 2**62}


@dataclass(frozen=True)
class GenConfig:
    """What the generator may produce. The defaults exercise everything at small sizes."""

    max_ops: int = 8
    max_inputs: int = 3
    max_rank: int = 3
    max_elements: int = 2048  # per tensor, so interpreting a graph takes milliseconds
    sizes: tuple[int, ...] = ODD_SIZES
    dtypes: tuple[str, ...] = ("f32", "f64", "i32", "i64", "bool")
    float_weight: int = 4  # floats are where fusion bugs live: draw them this many times as often
    matmul: bool = True
    composites: bool = True
    layout: bool = True
    reductions: bool = True
    allow_empty: bool = False  # zero-size dimensions
    named_dims: bool = True  # some inputs written with dimension names (N, D)
    user_names: bool = True  # some values get user names, the rest compiler temporaries
    max_outputs: int = 3

    def allowed(self, dtype: DType) -> bool:
        return dtype.name in self.dtypes


# ------------------------------------------------------------------------------------------ choosers


class Chooser:
    """Where the generator's random decisions come from."""

    def integer(self, low: int, high: int) -> int:  # inclusive
        raise NotImplementedError

    def choice(self, seq):
        seq = list(seq)
        return seq[self.integer(0, len(seq) - 1)]

    def boolean(self, percent_true: int = 50) -> bool:
        return self.integer(0, 99) < percent_true

    def subset(self, seq, at_least: int = 0) -> list:
        seq = list(seq)
        picked = [x for x in seq if self.boolean(50)]
        while len(picked) < at_least:
            rest = [x for x in seq if x not in picked]
            picked.append(self.choice(rest))
        return [x for x in seq if x in picked]


class HypothesisChooser(Chooser):
    def __init__(self, draw):
        self.draw = draw

    def integer(self, low: int, high: int) -> int:
        from hypothesis import strategies as st

        return self.draw(st.integers(low, high))


class RandomChooser(Chooser):
    """A seeded RNG that records its choices, so a failing graph can be replayed and shrunk."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.record: list[int] = []

    def integer(self, low: int, high: int) -> int:
        v = self.rng.randint(low, high)
        self.record.append(v - low)  # recorded relative to `low`: 0 is always the simplest choice
        return v


class ReplayChooser(Chooser):
    """Replays recorded choices; past the end (or out of range) it takes the simplest one."""

    def __init__(self, record: list[int]):
        self.record = list(record)
        self.i = 0

    def integer(self, low: int, high: int) -> int:
        v = self.record[self.i] if self.i < len(self.record) else 0
        self.i += 1
        return low + min(max(v, 0), high - low)


# ------------------------------------------------------------------------------------------ the generator


@dataclass
class _Value:
    name: str
    type: TensorType
    bound: float | None = None  # for integers: a bound on |value|; None for floats and bools


@dataclass
class _State:
    g: Graph
    c: Chooser
    cfg: GenConfig
    values: list[_Value] = field(default_factory=list)
    n_user: int = 0

    def pick(self, pred=lambda v: True) -> _Value | None:
        candidates = [v for v in self.values if pred(v)]
        if not candidates:
            return None
        # prefer recent values (long chains, deep graphs) but reach back for diamonds
        if self.c.boolean(60):
            candidates = candidates[-3:]
        return self.c.choice(candidates)

    def name(self) -> str | None:
        if self.cfg.user_names and self.c.boolean(30):
            self.n_user += 1
            return f"v{self.n_user}"
        return None


def _dtype(c: Chooser, cfg: GenConfig) -> DType:
    weighted = []
    for name in cfg.dtypes:
        weighted += [DTYPES[name]] * (cfg.float_weight if DTYPES[name].is_float else 1)
    return c.choice(weighted)


def _size(c: Chooser, cfg: GenConfig) -> int:
    if cfg.allow_empty and c.boolean(5):
        return 0
    return c.choice(cfg.sizes)


def _fits(cfg: GenConfig, shape: tuple[int, ...]) -> bool:
    n = 1
    for d in shape:
        n *= d
    return n <= cfg.max_elements and len(shape) <= cfg.max_rank + 1


def _base_shape(c: Chooser, cfg: GenConfig) -> tuple[int, ...]:
    rank = c.integer(0, cfg.max_rank) if c.boolean(90) else 0
    shape = tuple(_size(c, cfg) for _ in range(rank))
    while not _fits(cfg, shape):
        shape = shape[1:]
    return shape


def _broadcastable_to(c: Chooser, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts against `shape`: a suffix of it with some dimensions set to 1."""
    k = c.integer(0, len(shape)) if c.boolean(40) else len(shape)
    suffix = shape[len(shape) - k :]
    return tuple(1 if c.boolean(20) else d for d in suffix)


def _add_input(s: _State, shape: tuple[int, ...], dtype: DType | None = None) -> _Value:
    g, c = s.g, s.c
    dtype = dtype or _dtype(c, s.cfg)
    name = f"x{len(g.inputs)}"
    written = None
    if s.cfg.named_dims and shape and c.boolean(30):
        # write some dimensions by name, declaring each name once with its value
        written = []
        for d in shape:
            if c.boolean(50):
                dim = next((k for k, v in g.dims.items() if v == d), None)
                if dim is None:
                    dim = "NDKMPQRS"[len(g.dims) % 8] + ("" if len(g.dims) < 8 else str(len(g.dims)))
                    g.dims[dim] = d
                written.append(dim)
            else:
                written.append(d)
    g.add_input(name, dtype, shape, written=written)
    bound = None
    if dtype.is_int:
        bound = 10.0  # fusec.inputs and random_arrays draw integers from [-10, 10]
        g.input_ranges[name] = (-10, 10)
    elif dtype.is_float and c.boolean(15):
        g.input_ranges[name] = (0.0, 1.0) if c.boolean(50) else (-3.0, 3.0)
    v = _Value(name, TensorType(dtype, shape), bound)
    s.values.append(v)
    return v


def _int_ok(dtype: DType, bound: float | None) -> bool:
    return not dtype.is_int or (bound is not None and bound < INT_LIMIT[dtype.name])


def _emit(s: _State, op: str, args: list, bound: float | None = None, **attrs) -> _Value | None:
    """Add one op; None (and nothing added) if its type rule refuses the operands."""
    g = s.g
    names = [a.name if isinstance(a, _Value) else a for a in args]
    try:
        out = g.add(op, *names, name=s.name(), **attrs)
    except FusecError:
        _drop_orphans(g, {v.name for v in s.values})
        return None
    t = g.type_of(out)
    if t.dtype.is_int and not _int_ok(t.dtype, bound):
        _remove_tail(g, out, {v.name for v in s.values})
        return None
    if not _fits(s.cfg, t.shape):
        _remove_tail(g, out, {v.name for v in s.values})
        return None
    v = _Value(out, t, bound if t.dtype.is_int else None)
    s.values.append(v)
    return v


def _drop_orphans(g: Graph, keep: set[str]) -> None:
    """Remove constants a refused g.add left behind (they are created before the type check)."""
    for n in list(g.nx.nodes):
        if n not in keep and g.node(n).op == "const" and not any(True for _ in g.nx.successors(n)):
            g.remove(n)


def _remove_tail(g: Graph, out: str, keep: set[str]) -> None:
    g.remove(out)
    _drop_orphans(g, keep)


def _literal(s: _State, dtype: DType) -> bool | int | float:
    c = s.c
    if dtype == BOOL:
        return c.boolean()
    if dtype.is_int:
        return c.choice([0, 1, 2, 3, -1, 7])
    return c.choice([0.5, 2.0, -1.0, 1.0, 3.0, 0.125, -0.75, 1e-3, 0.0])


def _unary(s: _State) -> _Value | None:
    c = s.c
    if c.boolean(60):
        x = s.pick(lambda v: v.type.dtype.is_float)
        if x is None:
            return None
        op = c.choice(unary_float_ops())
        return _emit(s, op, [x], **_choose_attrs(c, op))
    x = s.pick(lambda v: v.type.dtype != BOOL)
    if x is None:
        return None
    op = c.choice(unary_numeric_ops())
    return _emit(s, op, [x], bound=x.bound, **_choose_attrs(c, op))


def _choose_attrs(c: Chooser, op: str) -> dict:
    """Attributes of an elementwise op: one of the choices where the row lists them, else the default."""
    attrs = {}
    for spec in op_named(op).attrs:
        if spec.choices is not None:
            attrs[spec.name] = c.choice(spec.choices)
        elif spec.default is REQUIRED:
            raise ValueError(f"graphgen cannot choose the attribute '{spec.name}' of {op}: give it choices or a default")
    return attrs


def _partner(s: _State, x: _Value, same_dtype: bool = False) -> _Value | float | int | bool:
    """A second operand for x: a value whose shape broadcasts with x's, a literal, or a new input."""
    c = s.c

    def ok(v: _Value) -> bool:
        if same_dtype and v.type.dtype != x.type.dtype:
            return False
        try:
            return _fits(s.cfg, broadcast_shapes(v.type.shape, x.type.shape))
        except FusecError:
            return False

    r = c.integer(0, 9)
    if r < 3:
        return _literal(s, x.type.dtype)
    if r < 5 and len(s.g.inputs) < s.cfg.max_inputs:
        return _add_input(s, _broadcastable_to(c, x.type.shape), x.type.dtype if same_dtype or c.boolean(70) else None)
    return s.pick(ok) or _literal(s, x.type.dtype)


def _bound_of(a) -> float:
    if isinstance(a, _Value):
        return a.bound if a.bound is not None else 1.0
    return float(abs(a))


def _binary(s: _State) -> _Value | None:
    c = s.c
    x = s.pick(lambda v: v.type.dtype != BOOL or c.boolean(20))
    if x is None:
        return None
    y = _partner(s, x)
    args = [x, y] if c.boolean(75) else [y, x]
    if c.boolean(25):
        return _emit(s, c.choice(comparison_ops()), args)
    op = c.choice(binary_arith_ops())
    bx, by = _bound_of(args[0]), _bound_of(args[1])
    bound = {"add": bx + by, "sub": bx + by, "mul": bx * by, "maximum": max(bx, by), "minimum": max(bx, by)}.get(op)
    if op == "pow":
        # integer powers: only small literal exponents, so the bound stays known
        if isinstance(args[1], int) and not isinstance(args[1], bool) and 0 <= args[1] <= 3:
            bound = _power_bound(bx, args[1])
        elif isinstance(args[1], float) and isinstance(args[0], _Value) and args[0].type.dtype.is_float:
            bound = None
        else:
            bound = float("inf")  # refused below if the result is an integer
    return _emit(s, op, args, bound=bound)


def _some_bool(s: _State) -> _Value | None:
    """A bool value: one made already, or a comparison of a number with a literal."""
    cond = s.pick(lambda v: v.type.dtype == BOOL)
    if cond is None:
        x = s.pick(lambda v: v.type.dtype != BOOL)
        if x is None:
            return None
        cond = _emit(s, s.c.choice(comparison_ops()), [x, _literal(s, x.type.dtype)])
    return cond


def _where(s: _State) -> _Value | None:
    c = s.c
    cond = _some_bool(s)
    if cond is None:
        return None
    a = _partner(s, cond)
    if isinstance(a, _Value) and a.type.dtype == BOOL and c.boolean(70):
        a = s.pick(lambda v: v.type.dtype != BOOL) or 1.5
    b = _partner(s, a) if isinstance(a, _Value) else (-float("inf") if c.boolean(20) else 0.0)
    if isinstance(a, bool) and isinstance(b, float):
        a = 1.0
    if isinstance(a, _Value) and a.type.dtype.is_int and isinstance(b, float):
        b = 0
    bound = max(_bound_of(a), _bound_of(b))
    return _emit(s, "where", [cond, a, b], bound=bound)


def _cast(s: _State) -> _Value | None:
    c = s.c
    x = s.pick()
    if x is None:
        return None
    target = _dtype(c, s.cfg)
    if target.is_int and x.type.dtype.is_float:
        # guard: NaN, inf and huge floats have no integer value (C leaves the cast undefined)
        small = _emit(s, "lt", [_emit(s, "abs", [x]), 1000.0])
        if small is None:
            return None
        x = _emit(s, "where", [small, x, 0.0])
        if x is None:
            return None
        return _emit(s, "cast", [x], bound=1000.0, dtype=target)
    if target.is_int:
        bound = x.bound if x.bound is not None else 1.0
        if x.type.dtype == I64 and target == I32 and bound >= INT_LIMIT["i32"]:
            return None
        return _emit(s, "cast", [x], bound=bound, dtype=target)
    return _emit(s, "cast", [x], dtype=target)


def _power_bound(b: float, n: int) -> float:
    if b <= 1:
        return 1.0
    return float("inf") if n * np.log2(b) > 64 else float(b) ** n


def _axes(c: Chooser, rank: int):
    """A reduction axis attribute: None (all), one axis (maybe negative) or a list of axes."""
    if rank == 0 or c.boolean(15):
        return None
    if c.boolean(60):
        a = c.integer(0, rank - 1)
        return a - rank if c.boolean(30) else a
    return c.subset(range(rank), at_least=1)


def _reduce(s: _State) -> _Value | None:
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
        b = _bound_of(x)
        bound = {"sum": b * n, "prod": _power_bound(b, n)}.get(op, b)
    else:
        bound = None
    return _emit(s, op, [x], bound=bound, axis=axis, keepdims=keepdims)


def _logical(s: _State) -> _Value | None:
    """A logical op of bool values; a comparison makes the first bool when there is none yet."""
    c = s.c
    x = _some_bool(s)
    if x is None:
        return None
    op = c.choice(logical_ops())
    if op_named(op).arity == 1:
        return _emit(s, op, [x])
    other = _partner(s, x, same_dtype=True)
    if isinstance(other, _Value) and other.type.dtype != BOOL:
        other = c.boolean()
    return _emit(s, op, [x, other] if c.boolean(75) else [other, x])


def _exact(s: _State, v: _Value) -> bool:
    """Whether v's value is the same on every backend, bit for bit: an input, or layout ops of one.
    argmax of a computed float would depend on its last bit (two near-equal values), which the
    tolerance allows to differ."""
    node = s.g.node(v.name)
    while node.kind in ("layout", "broadcast") and node.args:
        node = s.g.node(node.args[0])
    return node.op == "input" or not v.type.dtype.is_float


def _statistic(s: _State) -> _Value | None:
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
        return _emit(s, op, [x], axis=axis, keepdims=c.boolean(50), ddof=ddof)
    if not s.cfg.allowed(I64):
        return None  # positions are i64, which this configuration leaves out
    x = s.pick(lambda v: v.type.rank > 0 and v.type.size > 0 and v.type.dtype != BOOL and _exact(s, v))
    if x is None:
        return None
    axis = c.integer(-x.type.rank, x.type.rank - 1) if c.boolean(80) else None
    return _emit(s, op, [x], bound=float(x.type.size), axis=axis, keepdims=c.boolean(50), last=c.boolean(25))


def _composite(s: _State) -> _Value | None:
    c = s.c
    op = c.choice(composite_ops())
    x = s.pick(lambda v: v.type.dtype.is_float and v.type.rank > 0 and v.type.size > 0)
    if x is None:
        return None
    if op in ("softmax", "log_softmax"):
        return _emit(s, op, [x], axis=c.integer(-x.type.rank, x.type.rank - 1))
    if op == "logsumexp":
        return _emit(s, op, [x], axis=_axes(c, x.type.rank), keepdims=c.boolean())
    d = x.type.shape[-1]
    params = [_add_input(s, (d,), x.type.dtype) if c.boolean(70) and len(s.g.inputs) < s.cfg.max_inputs + 2 else 1.0]
    if op == "layernorm":
        params.append(_add_input(s, (d,), x.type.dtype) if c.boolean(50) else 0.0)
    eps = c.choice([None, 1e-5, 1e-3])
    return _emit(s, op, [x] + params, **({} if eps is None else {"eps": eps}))


def _layout(s: _State) -> _Value | None:
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
        return _emit(s, op, [x], bound=b, perm=None if c.boolean(20) else perm)
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
        return _emit(s, op, [x], bound=b, shape=new)
    if op == "broadcast_to":
        target = list(shape)
        target = [c.choice(s.cfg.sizes) if d == 1 and c.boolean(60) else d for d in target]
        if c.boolean(40):
            target.insert(0, c.choice(s.cfg.sizes))
        if not _fits(s.cfg, tuple(target)):
            return None
        return _emit(s, op, [x], bound=b, shape=target)
    if op == "expand_dims":
        return _emit(s, op, [x], bound=b, axis=c.integer(-rank - 1, rank))
    if op == "squeeze":
        ones = [i for i, d in enumerate(shape) if d == 1]
        if not ones:
            return None
        return _emit(s, op, [x], bound=b, axis=None if c.boolean(40) else c.subset(ones, at_least=1))
    if op == "slice":
        axis = c.integer(0, rank - 1)
        n = shape[axis]
        start = c.integer(0, n)
        stop = c.integer(start, n) if c.boolean(70) else 2**62
        step = c.choice([1, 1, 2, 3])
        return _emit(s, op, [x], bound=b, axis=axis - rank if c.boolean(30) else axis, start=start, stop=stop, step=step)
    # concat: x with itself or a same-shaped partner along one axis
    axis = c.integer(0, rank - 1)
    others = [v for v in s.values if v.type.rank == rank and all(v.type.shape[i] == shape[i] for i in range(rank) if i != axis)]
    parts = [x] + [c.choice(others) for _ in range(c.integer(1, 2))]
    if x.type.dtype.is_int or any(p.type.dtype.is_int for p in parts):
        b = max(_bound_of(p) for p in parts)
    return _emit(s, op, parts, bound=b, axis=axis)


def _matmul(s: _State) -> _Value | None:
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
        w = _add_input(s, shape, dtype)
    if c.boolean(25):
        x, w = (w, x) if (w.type.rank >= 1 and x.type.rank >= 2 and w.type.shape[-1] == x.type.shape[-2]) else (x, w)
    bound = _bound_of(x) * _bound_of(w) * k
    return _emit(s, "matmul", [x, w], bound=bound)


def _iota(s: _State) -> _Value | None:
    c = s.c
    x = s.pick(lambda v: v.type.rank > 0)
    shape = x.type.shape if x is not None else (c.choice(s.cfg.sizes),)
    dtype = c.choice([d for d in (I32, I64, F32, F64) if s.cfg.allowed(d)] or [I32])
    return _emit(s, "iota", [], bound=float(max(shape)), shape=list(shape), axis=c.integer(0, len(shape) - 1), dtype=dtype)


def _typed_const(s: _State) -> _Value | None:
    """A named constant binding (`c = f64(0.5)`) used later, sometimes by several ops."""
    c = s.c
    dtype = _dtype(c, s.cfg)
    value = _literal(s, dtype)
    if dtype.is_float and c.boolean(10):
        value = c.choice([float("inf"), -float("inf"), float("nan")])
    name = s.name()
    out = s.g.const(value, dtype, name=name)
    v = _Value(out, TensorType(dtype, ()), float(abs(value)) if dtype.is_int else None)
    s.values.append(v)
    return v


def build_graph(c: Chooser, cfg: GenConfig = GenConfig()) -> Graph:
    """Make a random, verified graph from the choices `c` makes."""
    g = Graph(c.choice(["main", "fuzz", "g"]))
    s = _State(g, c, cfg)
    base = _base_shape(c, cfg)
    _add_input(s, base)
    for _ in range(c.integer(0, max(cfg.max_inputs - 1, 0))):
        if c.boolean(50):
            _add_input(s, _broadcastable_to(c, base))
    makers = [(_unary, 5), (_binary, 7), (_where, 1), (_cast, 1), (_typed_const, 1), (_logical, 1)]
    if cfg.reductions:
        makers += [(_reduce, 3), (_statistic, 1)]
    if cfg.composites:
        makers.append((_composite, 2))
    if cfg.layout:
        makers += [(_layout, 3), (_iota, 1)]
    if cfg.matmul:
        makers.append((_matmul, 2))
    weighted = [m for m, w in makers for _ in range(w)]
    n_ops = c.integer(1, max(cfg.max_ops, 1))
    made = 0
    for _ in range(n_ops * 3):  # some attempts are refused by the type rules; try again
        if made >= n_ops:
            break
        if c.choice(weighted)(s) is not None:
            made += 1
    _choose_outputs(s)
    g.dead_code_elimination()
    _forget_unused_dims(g)
    g.verify()
    return g


def _choose_outputs(s: _State) -> None:
    g, c = s.g, s.c
    ops = [v.name for v in s.values if g.node(v.name).op not in ("input",)]
    if not ops:  # an identity graph: return an input
        g.set_outputs([g.inputs[0]])
        return
    sinks = [n for n in ops if not any(True for _ in g.nx.successors(n))]
    outs = [ops[-1]]
    for n in sinks:
        if n not in outs and len(outs) < s.cfg.max_outputs and c.boolean(50):
            outs.append(n)
    if c.boolean(15):
        extra = c.choice(ops)  # an interior value as an output too: it must be written and consumed
        if extra not in outs:
            outs.append(extra)
    if c.boolean(5):
        outs.append(outs[0])  # the same value returned twice
    g.set_outputs(outs)


def _forget_unused_dims(g: Graph) -> None:
    used = {w for ws in g.input_dims.values() for w in ws if isinstance(w, str)}
    for d in list(g.dims):
        if d not in used:
            del g.dims[d]


# ------------------------------------------------------------------------------------------ inputs

SPECIAL_FLOATS = (0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1e-40, -1e-45, 1e4, -1e4)


def random_arrays(graph: Graph, rng: np.random.Generator, special: float = 0.0) -> list[np.ndarray]:
    """Inputs for `graph`. A fraction `special` of float elements are 0, -0, inf, nan, denormals or
    large; the rest come from the input's declared range or a standard normal. Integers are drawn
    from [-10, 10] (the bound the generator assumes), bools are coin flips."""
    arrays = []
    for name in graph.inputs:
        t = graph.type_of(name)
        dt = t.dtype.numpy
        if t.dtype.is_float:
            low_high = graph.input_ranges.get(name)
            if low_high:
                a = rng.uniform(low_high[0], low_high[1], size=t.shape).astype(dt)
            else:
                a = rng.standard_normal(size=t.shape).astype(dt)
            if special > 0 and a.size:
                mask = rng.random(size=t.shape) < special
                with np.errstate(all="ignore"):
                    picks = np.array(SPECIAL_FLOATS, dtype=dt)[rng.integers(0, len(SPECIAL_FLOATS), size=t.shape)]
                a = np.where(mask, picks, a).astype(dt)
        elif t.dtype.is_int:
            low, high = graph.input_ranges.get(name, (-10, 10))
            a = rng.integers(int(low), int(high), size=t.shape, endpoint=True).astype(dt)
        else:
            a = rng.random(size=t.shape) < 0.5
        arrays.append(np.require(a, dtype=dt, requirements="C"))
    return arrays


# ------------------------------------------------------------------------------------------ drivers


def random_graph(seed: int, cfg: GenConfig = GenConfig()) -> tuple[Graph, list[int]]:
    """A graph from a seeded RNG, and the recorded choices that rebuild it (see `replay_graph`)."""
    c = RandomChooser(seed)
    return build_graph(c, cfg), c.record


def replay_graph(record: list[int], cfg: GenConfig = GenConfig()) -> Graph:
    return build_graph(ReplayChooser(record), cfg)


def graphs(cfg: GenConfig | None = None, **overrides):
    """A hypothesis strategy of random graphs: `graphs(max_ops=5, dtypes=("f32",))`."""
    from hypothesis import strategies as st

    config = replace(cfg or GenConfig(), **overrides)

    @st.composite
    def _graphs(draw):
        return build_graph(HypothesisChooser(draw), config)

    return _graphs()


def graphs_with_inputs(cfg: GenConfig | None = None, special: float = 0.0, **overrides):
    """A hypothesis strategy of (graph, input arrays) pairs."""
    from hypothesis import strategies as st

    @st.composite
    def _pairs(draw):
        g = draw(graphs(cfg, **overrides))
        seed = draw(st.integers(0, 2**32 - 1))
        return g, random_arrays(g, np.random.default_rng(seed), special)

    return _pairs()


__all__ = [
    "Chooser",
    "GenConfig",
    "HypothesisChooser",
    "RandomChooser",
    "ReplayChooser",
    "SPECIAL_FLOATS",
    "build_graph",
    "graphs",
    "graphs_with_inputs",
    "random_arrays",
    "random_graph",
    "replay_graph",
]
