"""The random-graph generator's state, and the one way it adds a value to the graph (`emit`).

Every op maker (graphgen_elementwise, graphgen_reductions, graphgen_layout) picks operands from the
values made so far (`GenState.pick`), draws literals, partners and new inputs here, and adds its op
with `emit`, which asks the Graph builder and takes the op back out if the type rule refuses it,
the result is too large, or an integer could overflow.

Integer arithmetic is kept free of overflow: every integer value carries a bound on its magnitude
(`Value.bound`) and `emit` refuses an op that could leave the dtype's range. Overflow wraps in
NumPy but is undefined behaviour in C, so a graph that overflowed would not have one right answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fusec.errors import FusecError
from fusec.ir.dtypes import BOOL, DTYPES, DType, TensorType, broadcast_shapes
from fusec.ir.graph import Graph
from fusec.testing.choosers import Chooser
from fusec.testing.graphgen_config import GenConfig

# integer values stay below these magnitudes, so no op can overflow
INT_LIMIT = {"i32": 2**30, "i64": 2**62}


@dataclass
class Value:
    name: str
    type: TensorType
    bound: float | None = None  # for integers: a bound on |value|; None for floats and bools


@dataclass
class GenState:
    g: Graph
    c: Chooser
    cfg: GenConfig
    values: list[Value] = field(default_factory=list)
    n_user: int = 0

    def pick(self, pred=lambda v: True) -> Value | None:
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


def random_dtype(c: Chooser, cfg: GenConfig) -> DType:
    weighted = []
    for name in cfg.dtypes:
        weighted += [DTYPES[name]] * (cfg.float_weight if DTYPES[name].is_float else 1)
    return c.choice(weighted)


def random_size(c: Chooser, cfg: GenConfig) -> int:
    if cfg.allow_empty and c.boolean(5):
        return 0
    return c.choice(cfg.sizes)


def fits(cfg: GenConfig, shape: tuple[int, ...]) -> bool:
    n = 1
    for d in shape:
        n *= d
    return n <= cfg.max_elements and len(shape) <= cfg.max_rank + 1


def base_shape(c: Chooser, cfg: GenConfig) -> tuple[int, ...]:
    rank = c.integer(0, cfg.max_rank) if c.boolean(90) else 0
    shape = tuple(random_size(c, cfg) for _ in range(rank))
    while not fits(cfg, shape):
        shape = shape[1:]
    return shape


def broadcastable_to(c: Chooser, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts against `shape`: a suffix of it with some dimensions set to 1."""
    k = c.integer(0, len(shape)) if c.boolean(40) else len(shape)
    suffix = shape[len(shape) - k :]
    return tuple(1 if c.boolean(20) else d for d in suffix)


def add_input(s: GenState, shape: tuple[int, ...], dtype: DType | None = None) -> Value:
    g, c = s.g, s.c
    dtype = dtype or random_dtype(c, s.cfg)
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
    v = Value(name, TensorType(dtype, shape), bound)
    s.values.append(v)
    return v


def _int_ok(dtype: DType, bound: float | None) -> bool:
    return not dtype.is_int or (bound is not None and bound < INT_LIMIT[dtype.name])


def emit(s: GenState, op: str, args: list, bound: float | None = None, **attrs) -> Value | None:
    """Add one op; None (and nothing added) if its type rule refuses the operands."""
    g = s.g
    names = [a.name if isinstance(a, Value) else a for a in args]
    try:
        out = g.add(op, *names, name=s.name(), **attrs)
    except FusecError:
        _drop_orphans(g, {v.name for v in s.values})
        return None
    t = g.type_of(out)
    if t.dtype.is_int and not _int_ok(t.dtype, bound):
        _remove_tail(g, out, {v.name for v in s.values})
        return None
    if not fits(s.cfg, t.shape):
        _remove_tail(g, out, {v.name for v in s.values})
        return None
    v = Value(out, t, bound if t.dtype.is_int else None)
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


def literal(s: GenState, dtype: DType) -> bool | int | float:
    c = s.c
    if dtype == BOOL:
        return c.boolean()
    if dtype.is_int:
        return c.choice([0, 1, 2, 3, -1, 7])
    return c.choice([0.5, 2.0, -1.0, 1.0, 3.0, 0.125, -0.75, 1e-3, 0.0])


def partner(s: GenState, x: Value, same_dtype: bool = False) -> Value | float | int | bool:
    """A second operand for x: a value whose shape broadcasts with x's, a literal, or a new input."""
    c = s.c

    def ok(v: Value) -> bool:
        if same_dtype and v.type.dtype != x.type.dtype:
            return False
        try:
            return fits(s.cfg, broadcast_shapes(v.type.shape, x.type.shape))
        except FusecError:
            return False

    r = c.integer(0, 9)
    if r < 3:
        return literal(s, x.type.dtype)
    if r < 5 and len(s.g.inputs) < s.cfg.max_inputs:
        return add_input(s, broadcastable_to(c, x.type.shape), x.type.dtype if same_dtype or c.boolean(70) else None)
    return s.pick(ok) or literal(s, x.type.dtype)


def bound_of(a) -> float:
    if isinstance(a, Value):
        return a.bound if a.bound is not None else 1.0
    return float(abs(a))


def power_bound(b: float, n: int) -> float:
    if b <= 1:
        return 1.0
    return float("inf") if n * np.log2(b) > 64 else float(b) ** n
