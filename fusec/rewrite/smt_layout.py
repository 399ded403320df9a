"""Layout rules proved over whole tensors: transpose, reshape, expand_dims, squeeze and slice.

smt_terms.py models a rule at one generic element, which is right for elementwise ops and wrong
for ops that move elements between positions. Here a tensor is its shape and its elements, and
the two sides are equal when their shapes are equal and so are their elements. Two models:

* **every rank and shape** (verdict proved). A shape is a Z3 sequence of integers of symbolic
  length; a tensor's elements, in row-major order, are an opaque value. reshape, expand_dims and
  squeeze keep the row-major order, so they keep the elements and change only the shape:
  expand_dims and squeeze insert or remove a 1 at the normalised axis (Z3 reasons about the
  sequence); reshape's shape is an uninterpreted resolve(shape, size) whose size is the operand's,
  as its type rule says. A slice whose bounds resolve (Python's slice.indices, in integer
  arithmetic) to the whole axis is its operand; any other slice is an opaque function of its
  operand and bounds. The pattern's type rules (axes in range, squeezed dims 1, sizes matching)
  are assumptions; the replacement's are proved along with the equality.
* **ranks 0 to MAX_RANK** (verdict bounded). A permutation attribute is a list of symbolic length
  that a sequence model cannot compose, so a rule with a transpose is proved rank by rank for
  every permutation (and None, which reverses the axes): a tensor of rank r is an uninterpreted
  function of r integer indices with symbolic dims, a transpose maps output index i to input
  index k with k[perm[j]] = i[j], and the sides must have the same dims and the same value at a
  symbolic in-range index. This does not cover rank MAX_RANK + 1, and the verdict says so.

The element type plays no part: a layout proof is the same at every dtype.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import z3

from fusec.errors import FusecError
from fusec.ir.dtypes import DTYPES, DType
from fusec.ir.ops import OPS
from fusec.rewrite.rule import AttrLit, AttrVar, BoolOp, Call, ListExpr, Lit, PNamed, POp, PVar, ROp, Rule, RVar, Var

MAX_RANK = 4
ARRAY = z3.ArraySort(z3.IntSort(), z3.IntSort())
ELEMS = z3.DeclareSort("Elems")
INT = z3.IntSort()
SIZE = z3.Function("size", ARRAY, INT, INT)  # of a shape: its dims and rank
RESOLVE = z3.Function("resolve_reshape", ARRAY, INT, INT, ARRAY)  # the dims reshape(shape, size) gives
RESHAPES = z3.Function("reshapes", ARRAY, INT, INT, z3.BoolSort())  # reshape(shape, size) type-checks
SLICED = z3.Function("sliced", ELEMS, ARRAY, INT, INT, INT, INT, ELEMS)  # elems, dims, rank, axis, start, step


class NotLayout(Exception):
    """This model cannot express the rule (the message says why)."""


class IllTyped(Exception):
    pass


@dataclass
class Tensor:
    shape: Any  # a Z3 sequence (every rank) or a tuple of Z3 ints (one rank)
    elems: Any  # a Z3 value of sort Elems (every rank) or a function of an index tuple (one rank)


def _attr_types(node, out: dict[str, set]) -> dict[str, set]:
    if isinstance(node, (POp, ROp)):
        specs = {s.name: s.type for s in OPS[node.op].attrs}
        for k, v in node.attrs:
            if isinstance(v, (AttrVar, Var)):
                out.setdefault(v.name, set()).add(specs[k])
        for a in node.args:
            _attr_types(a, out)
    elif isinstance(node, PNamed):
        _attr_types(node.pattern, out)
    return out


class _Side:
    """Builds one side of a rule in one of the two models; `facts` are its type rules."""

    def __init__(self, model, attrs: dict[str, Any]):
        self.m, self.attrs, self.facts, self.named = model, attrs, [], {}

    def pattern(self, p) -> Tensor:
        if isinstance(p, PVar):
            return self.m.leaf(p.name)
        if isinstance(p, PNamed):
            self.named[p.name] = self.named.get(p.name) or self.pattern(p.pattern)
            return self.named[p.name]
        if isinstance(p, POp):
            attrs = {k: v.value if isinstance(v, AttrLit) else self.attrs[v.name] for k, v in p.attrs}
            return self.op(p.op, [self.pattern(a) for a in p.args], attrs)
        raise NotLayout(f"{p!r} in a layout rule")

    def replacement(self, r, guard) -> Tensor:
        if isinstance(r, RVar):
            return self.named.get(r.name) or self.m.leaf(r.name)
        if isinstance(r, ROp):
            attrs = {k: guard.eval(e) for k, e in r.attrs}
            return self.op(r.op, [self.replacement(a, guard) for a in r.args], attrs)
        raise NotLayout(f"{r!r} in a layout rule")

    def op(self, name: str, args: list, attrs: dict) -> Tensor:
        full = {s.name: attrs.get(s.name, s.default) for s in OPS[name].attrs}
        fn = getattr(self.m, "op_" + name, None)
        if fn is None or len(args) != 1:
            raise NotLayout(f"{name} in a layout rule is not modelled")
        return fn(self.facts, args[0], **full)


# ------------------------------------------------------------------------------------------ every rank


def _norm(a, rank):
    return z3.If(a >= 0, a, a + rank)


@dataclass(frozen=True)
class _Axes:
    name: str


def _int(v, what: str):
    if isinstance(v, _Axes):
        raise NotLayout(f"the {what} {v.name} may be a list of axes or None")
    if isinstance(v, z3.ArithRef):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return z3.IntVal(v)
    raise NotLayout(f"{what} {v!r} is not a single axis")


@dataclass(frozen=True)
class Shape:
    """A shape of symbolic rank: its rank and its dims, an integer array read at 0 .. rank - 1."""

    rank: Any
    dims: Any

    def __getitem__(self, k):
        return z3.Select(self.dims, k)


def _shape(v) -> Shape:
    if isinstance(v, Shape):
        return v
    if isinstance(v, (tuple, list)):
        j = z3.Int("j")
        dims = z3.IntVal(0)
        for n, d in reversed(list(enumerate(v))):
            dims = z3.If(j == n, z3.IntVal(int(d)), dims)
        return Shape(z3.IntVal(len(v)), z3.Lambda([j], dims))
    raise NotLayout(f"shape {v!r}")


def _size(s: Shape):
    return SIZE(s.dims, s.rank)


def _resolve(s: Shape, n) -> Shape:
    return Shape(s.rank, RESOLVE(s.dims, s.rank, n))


class EveryRank:
    """Shapes of symbolic rank, elements as opaque values (see the module docstring)."""

    claim = "bit for bit, every input of every rank and shape"

    def __init__(self, dt: DType):
        self.dt = dt

    def leaf(self, name: str) -> Tensor:
        return Tensor(Shape(z3.Int(f"rank({name})"), z3.Array(f"shape({name})", z3.IntSort(), z3.IntSort())),
                      z3.Const(name, ELEMS))

    def symbol(self, name: str, types: set):
        if "shape" in types:
            return Shape(z3.Int(f"len({name})"), z3.Array(name, z3.IntSort(), z3.IntSort()))
        if "int" in types:  # used as one axis somewhere, so one axis everywhere
            return z3.Int(name)
        return _Axes(name)  # a permutation, a list of axes or None: no model at every rank

    def op_reshape(self, facts, t, shape):
        s, n = _shape(shape), _size(t.shape)
        facts.append(RESHAPES(s.dims, s.rank, n))
        out = _resolve(s, n)
        facts.append(z3.Implies(RESHAPES(s.dims, s.rank, n), _size(out) == n))  # what resolve_reshape guarantees
        return Tensor(out, t.elems)

    def op_expand_dims(self, facts, t, axis):
        a, r, j = _int(axis, "axis"), t.shape.rank, z3.Int("j")
        k = _norm(a, r + 1)
        facts += [r >= 0, a >= -(r + 1), a <= r]
        out = Shape(r + 1, z3.Lambda([j], z3.If(j < k, t.shape[j], z3.If(j == k, 1, t.shape[j - 1]))))
        facts.append(_size(out) == _size(t.shape))
        return Tensor(out, t.elems)

    def op_squeeze(self, facts, t, axis):
        a, r, j = _int(axis, "squeeze axis"), t.shape.rank, z3.Int("j")
        k = _norm(a, r)
        facts += [a >= -r, a < r, t.shape[k] == 1]
        out = Shape(r - 1, z3.Lambda([j], z3.If(j < k, t.shape[j], t.shape[j + 1])))
        facts.append(_size(out) == _size(t.shape))
        return Tensor(out, t.elems)

    def op_slice(self, facts, t, axis, start, stop, step):
        if not (isinstance(step, int) and step > 0):
            raise NotLayout(f"a slice with step {step!r} (only a positive literal step is modelled)")
        a, r, j = _int(axis, "axis"), t.shape.rank, z3.Int("j")
        k = _norm(a, r)
        n = t.shape[k]
        facts += [r >= 1, a >= -r, a < r, n >= 0]
        lo, hi = (_clamp(_int(v, "slice bound"), n) for v in (start, stop))
        length = z3.If(hi > lo, (hi - lo + step - 1) / step, 0)
        out = Shape(r, z3.Lambda([j], z3.If(j == k, length, t.shape[j])))
        whole = z3.And(lo == 0, length == n) if step == 1 else z3.BoolVal(False)
        return Tensor(out, z3.If(whole, t.elems, SLICED(t.elems, t.shape.dims, r, k, lo, z3.IntVal(step))))

    def op_transpose(self, facts, t, perm):
        raise NotLayout("a transpose's permutation has no model at every rank")

    def equal(self, lhs: Tensor, rhs: Tensor):
        """Same rank, the same dim at a symbolic axis j (so at every axis), the same elements."""
        j = z3.FreshInt("axis")
        dims = z3.Implies(z3.And(0 <= j, j < lhs.shape.rank), lhs.shape[j] == rhs.shape[j])
        return z3.And(lhs.shape.rank == rhs.shape.rank, dims, lhs.elems == rhs.elems)


def _clamp(v, n):
    """Python's slice.indices for a positive step: negative counts from the end, then clamp to [0, n]."""
    return z3.If(v < 0, z3.If(v + n < 0, 0, v + n), z3.If(v > n, n, v))


# ------------------------------------------------------------------------------------------ one rank


class OneRank:
    """Rank r exactly: dims are symbolic ints, a tensor an uninterpreted function of r indices."""

    def __init__(self, dt: DType, rank: int):
        self.dt, self.rank = dt, rank
        self.claim = f"bit for bit, every input of rank {rank}"

    def leaf(self, name: str) -> Tensor:
        dims = tuple(z3.Int(f"dim{j}({name})") for j in range(self.rank))
        f = z3.Function(name, *[z3.IntSort()] * self.rank, ELEMS) if self.rank else z3.Const(name, ELEMS)
        return Tensor(dims, (lambda i: f(*i)) if self.rank else (lambda i: f))

    def op_transpose(self, facts, t, perm):
        r = len(t.shape)
        p = tuple(reversed(range(r))) if perm is None else ((perm,) if isinstance(perm, int) else tuple(perm))
        if sorted(p) != list(range(r)):
            raise IllTyped(f"{list(p)} is not a permutation of rank {r}")

        def at(i):
            k = [None] * r
            for j, pj in enumerate(p):
                k[pj] = i[j]
            return t.elems(tuple(k))

        return Tensor(tuple(t.shape[j] for j in p), at)

    def equal(self, lhs: Tensor, rhs: Tensor):
        if len(lhs.shape) != len(rhs.shape):
            return z3.BoolVal(False)
        index = tuple(z3.Int(f"i{j}") for j in range(len(lhs.shape)))
        in_range = [z3.And(0 <= i, i < d) for i, d in zip(index, lhs.shape)]
        same = [a == b for a, b in zip(lhs.shape, rhs.shape)]
        return z3.And(*same, z3.Implies(z3.And(*in_range), lhs.elems(index) == rhs.elems(index)))


# ------------------------------------------------------------------------------------------ guards


class _Guard:
    """Guard and attribute expressions over a model's shapes and attributes."""

    def __init__(self, model, tensors: dict[str, Tensor], attrs: dict[str, Any], facts: list):
        self.m, self.tensors, self.attrs, self.facts = model, tensors, attrs, facts

    def eval(self, e) -> Any:
        from fusec.rewrite.guards import FUNCTIONS

        if isinstance(e, Lit):
            return e.value
        if isinstance(e, ListExpr):
            return tuple(self.eval(i) for i in e.items)
        if isinstance(e, Var):
            for table in (self.tensors, self.attrs, DTYPES):
                if e.name in table:
                    return table[e.name]
        if isinstance(e, BoolOp):
            args = [self.eval(a) for a in e.args]
            if e.op == "not":
                return z3.Not(args[0])
            return z3.And(*args) if e.op == "and" else z3.Or(*args)
        if not isinstance(e, Call):
            raise NotLayout(f"the guard term {e!r}")
        args = [self.eval(a) for a in e.args]
        cmp = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
               "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
               "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "neg": lambda a: -a}
        if e.fn in cmp:
            return cmp[e.fn](*args)
        if e.fn in ("is_float", "is_int") and isinstance(args[0], Tensor):
            return getattr(self.m.dt, e.fn)
        if isinstance(self.m, EveryRank) and args and isinstance(args[0], Tensor):
            shape = args[0].shape
            if e.fn == "rank":
                return shape.rank
            if e.fn == "dim":
                a, r = _int(args[1], "axis"), shape.rank
                self.facts += [a >= -r, a < r]  # else the guard raises and the rule does not fire
                return shape[_norm(a, r)]
            if e.fn == "noop_reshape":
                s, n = _shape(args[1]), _size(shape)
                self.facts.append(RESHAPES(s.dims, s.rank, n))
                out = _resolve(s, n)
                # the dims as arrays: beyond the rank they are free, so equal arrays lose nothing
                return z3.And(out.rank == shape.rank, out.dims == shape.dims)
        if isinstance(self.m, OneRank):
            if e.fn == "rank" and isinstance(args[0], Tensor):
                return len(args[0].shape)
            if all(isinstance(a, (int, tuple, type(None))) for a in args) and e.fn in FUNCTIONS:
                try:
                    return FUNCTIONS[e.fn][0](*args)
                except FusecError as err:
                    raise IllTyped(str(err)) from None
        raise NotLayout(f"the guard function {e.fn} in this model")


# ------------------------------------------------------------------------------------------ proving


def prove_layout(rule: Rule, dt: DType, timeout: float):
    """(verdict, claim, reason) for a layout rule at dtype dt."""
    types = {}
    _attr_types(rule.pattern, types)
    _attr_types(rule.replacement, types)
    deadline = time.perf_counter() + timeout
    try:
        model = EveryRank(dt)
        attrs = {n: model.symbol(n, t) for n, t in types.items()}
        result = _prove(rule, model, attrs, timeout)
        if result == "unsat":
            return "proved", model.claim, ""
        if result == "sat":
            return "unknown", model.claim, "the solver finds shapes and attributes where the sides differ (not confirmed with NumPy)"
        return "unknown", model.claim, f"the solver gave up at every rank and shape (timeout {timeout:g} s)"
    except NotLayout as err:
        why = str(err)
    perms = [n for n, t in types.items() if t == {"axes"}]
    for rank in range(MAX_RANK + 1):
        model = OneRank(dt, rank)
        choices = [None] + list(itertools.permutations(range(rank)))
        for combo in itertools.product(choices, repeat=len(perms)):
            left = deadline - time.perf_counter()
            try:
                attrs = {n: _Axes(n) for n in types} | dict(zip(perms, combo))
                result = "unknown" if left <= 0 else _prove(rule, model, attrs, left)
            except NotLayout as err:
                return "unknown", "", f"not modelled: {why}; {err}"
            if result is None:
                continue  # no instance: the pattern does not type-check or the guard is false
            if result != "unsat":
                shown = ", ".join(f"{n}={list(v) if v is not None else None}" for n, v in zip(perms, combo))
                found = "the sides differ (not confirmed with NumPy)" if result == "sat" else "the solver gave up"
                return "unknown", model.claim, f"not proved at rank {rank} ({shown}): {found}"
    return "bounded", f"bit for bit, every input of rank <= {MAX_RANK}", (
        f"proved for ranks 0 to {MAX_RANK} with every permutation, not beyond: {why}")


def _prove(rule: Rule, model, attrs: dict, timeout: float):
    """unsat (proved), sat, unknown, or None when this choice of attributes is no instance of the rule."""
    lhs_side = _Side(model, attrs)
    try:
        lhs = lhs_side.pattern(rule.pattern)
    except IllTyped:
        return None
    tensors = {n: model.leaf(n) for n in rule.tensor_vars}
    assumptions: list = []
    guard = _Guard(model, tensors, attrs, assumptions)
    if rule.guard is not None:
        try:
            g = guard.eval(rule.guard)
        except IllTyped:
            return None
        if g is False:
            return None
        if g is not True:
            assumptions.append(g)
    rhs_side = _Side(model, attrs)
    rhs_side.named = lhs_side.named
    try:
        rhs = rhs_side.replacement(rule.replacement, guard)
    except IllTyped:
        return "sat"  # the replacement does not type-check where the pattern does
    goal = z3.And(*rhs_side.facts, model.equal(lhs, rhs))
    if z3.is_true(z3.simplify(goal)):
        return "unsat"
    s = z3.Solver()
    s.set("timeout", max(1, int(timeout * 1000)))
    s.add(*lhs_side.facts, *assumptions, z3.Not(goal))
    r = s.check()
    return "unsat" if r == z3.unsat else ("sat" if r == z3.sat else "unknown")
