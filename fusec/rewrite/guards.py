"""Evaluating guards and attribute expressions against a match.

A guard such as `is_float(x) and is_normal(1 / $c)` or an attribute such as
`perm=compose(p, q, rank(x))` is an expression over the match's bindings:

* a tensor variable evaluates to a `Value` (its name and type: functions ask for dtype, shape, rank);
* a constant variable `$c` evaluates to a NumPy scalar of the constant's dtype, so `1 / $c` is
  computed in f32 when the constant is f32, as the graph would compute it;
* an attribute variable evaluates to the attribute's value.

FUNCTIONS is the whole vocabulary; the parser checks guards against it, so a typo is a located error.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusec.errors import FusecError
from fusec.ir.dtypes import DTYPES, DType, TensorType, broadcast_shapes, dtype_of_numpy, normalize_axis
from fusec.ir.graph import Graph
from fusec.ir.ops import reduce_axes, resolve_reshape
from fusec.rewrite.rule import BoolOp, Call, ConstVar, ListExpr, Lit, Var


class GuardError(FusecError):
    """A guard could not be evaluated for this match (a wrong argument, say); the rule does not fire."""


@dataclass(frozen=True)
class Value:
    """A tensor variable in a guard: the node it matched and its type."""

    name: str
    type: TensorType
    is_const: bool = False


def _dtype(v: Any) -> DType:
    if isinstance(v, Value):
        return v.type.dtype
    if isinstance(v, np.generic):
        return dtype_of_numpy(v.dtype)
    raise GuardError(f"{v!r} has no dtype")


def _rank(v: Any) -> int:
    if isinstance(v, Value):
        return v.type.rank
    if isinstance(v, np.generic):
        return 0
    raise GuardError(f"{v!r} has no rank")


def _shape(v: Any) -> tuple[int, ...]:
    if isinstance(v, Value):
        return v.type.shape
    if isinstance(v, np.generic):
        return ()
    raise GuardError(f"{v!r} has no shape")


def _perm(p: Any, rank: int) -> tuple[int, ...]:
    """A transpose's perm attribute as a tuple; None (the default) reverses the axes."""
    if p is None:
        return tuple(reversed(range(rank)))
    if isinstance(p, int):
        p = (p,)
    p = tuple(int(i) for i in p)
    if sorted(p) != list(range(rank)):
        raise GuardError(f"{list(p)} is not a permutation of rank {rank}")
    return p


def _compose(p: Any, q: Any, rank: int) -> tuple[int, ...]:
    """The single perm r with transpose(transpose(x, p), q) == transpose(x, r): r[j] = p[q[j]]."""
    p, q = _perm(p, rank), _perm(q, rank)
    return tuple(p[j] for j in q)


def _is_identity(p: Any, rank: int) -> bool:
    return _perm(p, rank) == tuple(range(rank))


def _is_single_axis(a: Any) -> bool:
    return isinstance(a, int) and not isinstance(a, bool) or (isinstance(a, tuple) and len(a) == 1)


def _is_normal(v: Any) -> bool:
    """A finite, nonzero value that is not denormal in its own dtype."""
    a = np.asarray(v)
    if a.dtype.kind != "f":
        return bool(a != 0)
    return bool(np.isfinite(a) and np.abs(a) >= np.finfo(a.dtype).tiny)


def _is_finite(v: Any) -> bool:
    return bool(np.all(np.isfinite(np.asarray(v, dtype=np.float64) if np.asarray(v).dtype.kind != "f" else v)))


def _is_close(v: Any, target: float) -> bool:
    """v is within 2 ulps of `target` rounded to v's dtype: the same constant, written with fewer digits."""
    a = np.asarray(v)
    if a.dtype.kind != "f":
        return bool(a == target)
    t = a.dtype.type(target)
    return bool(np.abs(a - t) <= 2 * np.spacing(np.abs(t)))


def _dim(v: Any, axis: int) -> int:
    shape = _shape(v)
    return shape[normalize_axis(int(axis), len(shape))]


def _reduced_size(v: Any, axis: Any) -> int:
    """How many elements a reduction over `axis` combines into each result."""
    shape = _shape(v)
    n = 1
    for a in reduce_axes(axis, len(shape)):
        n *= shape[a]
    return n


def _noop_reshape(v: Any, shape: Any) -> bool:
    t = _shape(v)
    size = int(np.prod(t, dtype=np.int64))
    return resolve_reshape(tuple(shape), size) == t


def _broadcasts_to(a: Any, b: Any) -> bool:
    try:
        return broadcast_shapes(_shape(a), _shape(b)) == _shape(b)
    except FusecError:
        return False


FUNCTIONS: dict[str, tuple[Callable, str]] = {
    "is_float": (lambda v: _dtype(v).is_float, "the value's dtype is f32 or f64"),
    "is_int": (lambda v: _dtype(v).is_int, "the value's dtype is i32 or i64"),
    "dtype": (_dtype, "the value's dtype, to compare with f32, f64, i32, i64, bool"),
    "rank": (_rank, "the number of dimensions"),
    "shape": (_shape, "the shape, as a list"),
    "dim": (_dim, "dim(x, axis): the size of one dimension"),
    "reduced_size": (_reduced_size, "reduced_size(x, axis): how many elements a reduction over axis combines"),
    "is_identity": (_is_identity, "is_identity(perm, rank): the permutation leaves every axis in place"),
    "compose": (_compose, "compose(p, q, rank): the one permutation equal to transposing by p then by q"),
    "is_single_axis": (_is_single_axis, "the axis attribute names exactly one axis"),
    "noop_reshape": (_noop_reshape, "noop_reshape(x, shape): reshaping x to shape leaves its shape unchanged"),
    "broadcasts_to": (_broadcasts_to, "broadcasts_to(a, b): a's shape broadcasts to b's shape"),
    "is_normal": (_is_normal, "a finite, nonzero, non-denormal number"),
    "is_finite": (_is_finite, "neither inf nor nan"),
    "is_close": (_is_close, "is_close($c, 0.7978845608028654): within 2 ulps of that number in $c's dtype"),
    "abs": (lambda v: abs(v), "absolute value of a number"),
    "is_const": (lambda v: isinstance(v, np.generic) or (isinstance(v, Value) and v.is_const), "the value is a constant"),
}

_BINARY: dict[str, Callable] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": operator.pow,
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
VALUE_OPERATORS = set(_BINARY) | {"neg"}


def _normalise(v: Any) -> Any:
    """Lists and tuples compare equal in guards (shape(x) == [2, 3])."""
    if isinstance(v, list):
        return tuple(_normalise(i) for i in v)
    return v


class Evaluator:
    """Evaluates expressions against one match: `bindings` maps variable names to node names or values."""

    def __init__(self, graph: Graph, bindings: dict[str, Any], attr_vars: frozenset[str] | set[str]):
        self.graph = graph
        self.bindings = bindings
        self.attr_vars = attr_vars

    def eval(self, e: Any) -> Any:
        with np.errstate(all="ignore"):
            return self._eval(e)

    def truth(self, e: Any) -> bool:
        return bool(self.eval(e))

    def _eval(self, e: Any) -> Any:
        if isinstance(e, Lit):
            return e.value
        if isinstance(e, ListExpr):
            return tuple(_normalise(self._eval(i)) for i in e.items)
        if isinstance(e, ConstVar):
            node = self.graph.node(self.bindings[e.name])
            return node.type.dtype.numpy.type(node.attrs["value"])
        if isinstance(e, Var):
            if e.name in self.attr_vars:
                return self.bindings[e.name]
            if e.name in self.bindings:
                node = self.graph.node(self.bindings[e.name])
                return Value(node.name, node.type, node.op == "const")
            if e.name in DTYPES:
                return DTYPES[e.name]
            raise GuardError(f"'{e.name}' is not bound")
        if isinstance(e, BoolOp):
            if e.op == "not":
                return not self.truth(e.args[0])
            if e.op == "and":
                return self.truth(e.args[0]) and self.truth(e.args[1])
            return self.truth(e.args[0]) or self.truth(e.args[1])
        if isinstance(e, Call):
            args = [self._eval(a) for a in e.args]
            if e.fn == "neg":
                return -args[0]
            if e.fn in _BINARY:
                a, b = (_normalise(x) for x in args)
                result = _BINARY[e.fn](a, b)
                return bool(result) if e.fn in ("eq", "ne", "lt", "le", "gt", "ge") else result
            fn = FUNCTIONS[e.fn][0]
            try:
                return fn(*args)
            except (TypeError, ValueError, IndexError) as err:
                raise GuardError(f"{e.fn}: {err}") from None
        raise AssertionError(e)  # pragma: no cover - the parser only builds the node types above
