"""A rule's two sides as terms, and those terms as Z3 formulas over IEEE-754 and bit-vectors.

The translation is driven by the op table (fusec.ir.ops.OPS): each op's row gives its kind, its
type rule (so a side that does not type-check at a dtype is not an instance of the rule) and, for
composites, its expansion, which is replayed here through a small graph-builder stand-in. What
the table cannot say, the exact arithmetic of an op, is in SEMANTICS (smt_ieee.py), by op name:

* floats: Z3's floating-point theory, rounding to nearest-even, with NaN, infinities and signed
  zeros; integers: bit-vectors that wrap as NumPy's do; bool: Z3 booleans.
* any elementwise float op not in SEMANTICS (exp, log, tanh, erf, sigmoid, gelu, pow, and any op a
  new table row adds) is an uninterpreted function, one per op, attributes and dtype: a rule
  that only moves it around is still provable; a property of it must come from a named axiom.
* a reduction (sum, max, ...) is abstracted to an opaque value per distinct (op, attributes,
  argument term): two sides reducing the same term over the same axes agree, and nothing else is
  assumed. Over an axis the guard says has one element, max/min give the element itself, sum
  +0 + the element, prod 1 * it and mean (+0 + it) / 1, as a reduction loop does; dividing by 1
  is exact in IEEE 754 (every value, NaN included, is its own quotient by 1), so a mean is +0 + it
  (which spares the solver a divider circuit: rmsnorm over one element proves in a second).
* layout ops (transpose, reshape, slice, ...) move elements between positions: TermBuilder raises
  MovesElements and smt_layout.py proves the rule over whole tensors instead. matmul sums
  products and is not modelled; a rule using it is reported unknown with the reason.

Values are modelled at one generic element: an elementwise expression's value at an index
depends only on its operands' values at the broadcast-projected index, the same on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import z3

from fusec.errors import FusecError
from fusec.ir.dtypes import BOOL, F32, DType, TensorType, promote
from fusec.ir.ops import OPS, literal_context_dtype
from fusec.rewrite.rule import (
    AttrLit,
    AttrVar,
    ConstVar,
    Lit,
    PConst,
    PLit,
    PNamed,
    POp,
    PVar,
    RAttr,
    RLit,
    ROp,
    RVar,
    Var,
)
from fusec.rewrite.smt_ieee import (  # noqa: F401 (re-exported: the prover's modules import them from here)
    BOOLEAN,
    FLOAT,
    INT,
    RNE,
    SEMANTICS,
    Unmodelled,
    _family,
    convert,
    same,
    sort_of,
    value_of,
)

LEAVES = ("var", "const", "lit")  # the ops of Terms that are not op-table rows
REDUCTIONS_ONE = {"max": "self", "min": "self", "sum": "plus_zero", "prod": "times_one", "mean": "plus_zero"}


class MovesElements(Unmodelled):
    """A layout op: smt_layout.py models the rule over whole tensors instead."""


class IllTyped(Exception):
    """This dtype assignment is not an instance of the rule (a side does not type-check)."""


@dataclass(frozen=True)
class Sym:
    """A symbolic attribute value: an attribute variable of the rule, or a constant used as one ($eps)."""

    name: str
    const: bool = False


@dataclass(frozen=True)
class Term:
    """A tensor expression. op is an op name, or 'var', 'const' ($c) or 'lit' (a literal, or a Sym used as a value)."""

    op: str
    args: tuple = ()
    attrs: tuple = ()
    dtype: DType = F32

    def attr(self, name: str) -> Any:
        return dict(self.attrs)[name]

    def leaves(self) -> frozenset[str]:
        if self.op in ("var", "const"):
            return frozenset([self.attr("name")])
        out: frozenset[str] = frozenset()
        for a in self.args:
            out |= a.leaves()
        return out


# ------------------------------------------------------------------------------------------ building terms


class _Stand:
    """Stand-in attribute values for the type rule when an attribute is symbolic."""

    by_type = {"int": -1, "axes": -1, "float": 1e-5, "bool": False, "str": "none", "scalar": 0.0, "shape": (1,), "ints": (0,)}


class TermBuilder:
    """Builds Terms from a rule's pattern and replacement at one dtype assignment."""

    def __init__(self, dtype: DType, var_types: dict[str, DType], attr_values: dict[str, Any]):
        self.dtype = dtype
        self.var_types = var_types
        self.attr_values = attr_values  # attribute variable -> concrete value or Sym
        self.named: dict[str, Term] = {}
        self.bound: dict[str, Term] = {}

    # -- the op table in action

    def op(self, name: str, args: list, attrs: dict) -> Term:
        opdef = OPS[name]
        if _is_whole(name, args, attrs):
            return args[0]  # a slice with the default bounds, or a concat of one tensor: the operand itself
        if opdef.kind in ("layout", "opaque") or (opdef.kind == "broadcast" and name != "broadcast_to"):
            raise MovesElements(f"{name} ({opdef.kind}) moves or combines elements across positions; not modelled")
        spec = {s.name: s for s in opdef.attrs}
        full = {s.name: attrs.get(s.name, s.default) for s in opdef.attrs}
        dtypes = [a.dtype if isinstance(a, Term) else None for a in args]
        ctx = literal_context_dtype(opdef, dtypes) or self.dtype
        terms = [a if isinstance(a, Term) else self.literal(a, ctx) for a in args]
        stand = {k: (_Stand.by_type.get(spec[k].type, v) if isinstance(v, Sym) else v) for k, v in full.items()}
        try:
            out = opdef.infer([TensorType(t.dtype, (1,)) for t in terms], stand)
        except FusecError as err:
            raise IllTyped(str(err)) from None
        if opdef.expand is not None:
            return opdef.expand(_Graph(self), terms, full)
        if name == "broadcast_to":
            return terms[0]  # at one element, a broadcast is its operand
        return Term(name, tuple(terms), tuple(sorted(full.items(), key=lambda kv: kv[0])), out.dtype)

    def literal(self, v: Any, ctx: DType) -> Term:
        if isinstance(v, Term):
            return v
        if isinstance(v, Sym) and v.const:
            c = self.bound[v.name]
            return c if c.dtype == ctx else Term("cast", (c,), (("dtype", ctx),), ctx)
        if isinstance(v, bool):
            return Term("lit", (), (("value", v),), BOOL)
        if ctx == BOOL and not isinstance(v, Sym):
            raise IllTyped(f"the number {v!r} in a bool context")
        if ctx.is_int and isinstance(v, float) and not (np.isfinite(v) and v == int(v) and not np.signbit(v)):
            raise IllTyped(f"{v!r} is not an integer constant")
        return Term("lit", (), (("value", v),), ctx)

    # -- pattern and replacement

    def pattern(self, p: Any) -> Term:
        if isinstance(p, PVar):
            t = self.bound.get(p.name) or Term("var", (), (("name", p.name),), self.var_types[p.name])
        elif isinstance(p, PConst):
            t = self.bound.get(p.name) or Term("const", (), (("name", p.name),), self.var_types[p.name])
        elif isinstance(p, PLit):
            return p.value  # a literal takes its dtype from the op around it
        elif isinstance(p, PNamed):
            t = self.named.get(p.name) or self.pattern(p.pattern)
            self.named[p.name] = t
        elif isinstance(p, POp):
            attrs = {k: self._attr(v) for k, v in p.attrs}
            t = self.op(p.op, [self.pattern(a) for a in p.args], attrs)
        else:  # pragma: no cover
            raise AssertionError(p)
        if isinstance(p, (PVar, PConst)):
            self.bound[p.name] = t
        return t

    def _attr(self, a: Any) -> Any:
        if isinstance(a, AttrLit):
            return a.value
        if isinstance(a, AttrVar):
            return self.attr_values.get(a.name, Sym(a.name))
        raise AssertionError(a)  # pragma: no cover

    def replacement(self, r: Any) -> Any:
        if isinstance(r, RVar):
            return self.named.get(r.name) or self.bound[r.name]
        if isinstance(r, RAttr):
            return self.attr_values.get(r.name, Sym(r.name))
        if isinstance(r, RLit):
            return r.value
        if isinstance(r, ROp):
            attrs = {k: self._attr_expr(e) for k, e in r.attrs}
            return self.op(r.op, [self.replacement(a) for a in r.args], attrs)
        raise AssertionError(r)  # pragma: no cover

    def _attr_expr(self, e: Any) -> Any:
        if isinstance(e, Lit):
            return e.value
        if isinstance(e, ConstVar):
            return Sym(e.name, const=True)
        if isinstance(e, Var):
            from fusec.ir.dtypes import DTYPES

            if e.name in DTYPES and e.name not in self.attr_values:
                return DTYPES[e.name]
            return self.attr_values.get(e.name, Sym(e.name))
        raise Unmodelled("an attribute computed by an expression (index arithmetic) is not modelled")


class _Graph:
    """What an op's `expand` needs of a graph: add(op, *args, **attrs)."""

    def __init__(self, builder: TermBuilder):
        self.b = builder

    def add(self, op: str, *args: Any, **attrs: Any) -> Term:
        return self.b.op(op, list(args), attrs)


# ------------------------------------------------------------------------------------------ terms to Z3


class Z3Translator:
    """Terms to Z3 expressions. Shared by both sides, so equal subterms get equal formulas."""

    def __init__(self, unit_reductions: set | None = None):
        self.memo: dict[Term, z3.ExprRef] = {}
        self.functions: dict[str, z3.FuncDeclRef] = {}
        self.applications: list[tuple[Term, z3.ExprRef]] = []  # uninterpreted applications, for axioms
        self.abstracted: list[str] = []  # reductions replaced by opaque values
        self.unit_reductions = unit_reductions or set()  # (leaves, axis) pairs the guard gives one element

    def __call__(self, t: Term) -> z3.ExprRef:
        if t not in self.memo:
            self.memo[t] = self._translate(t)
        return self.memo[t]

    def _translate(self, t: Term) -> z3.ExprRef:
        if t.op == "var":
            return z3.Const(t.attr("name"), sort_of(t.dtype))
        if t.op == "const":
            return z3.Const("$" + t.attr("name"), sort_of(t.dtype))
        if t.op == "lit":
            v = t.attr("value")
            if isinstance(v, Sym):  # an attribute used as a value: any value of the dtype
                return z3.Const(f"{v.name}:{t.dtype.name}", sort_of(t.dtype))
            return value_of(v, t.dtype)
        opdef = OPS[t.op]
        if opdef.kind == "reduce":
            return self._reduction(t)
        if t.op == "cast":
            return convert(self(t.args[0]), t.args[0].dtype, t.dtype)
        if t.op == "where":
            c, a, b = t.args
            return z3.If(self(c), convert(self(a), a.dtype, t.dtype), convert(self(b), b.dtype, t.dtype))
        if t.op.startswith("logical_"):
            work = BOOL  # NumPy's logical ops take each operand's truth value (NaN is true)
        elif "comparison" in opdef.families:
            work = promote(t.args[0].dtype, t.args[1].dtype)
        elif "computes_in_result_dtype" in opdef.families:
            work = t.dtype
        else:
            work = None
        args = [convert(self(a), a.dtype, work) if work else self(a) for a in t.args]
        table = SEMANTICS[_family(work or t.dtype)]
        if t.op in table:
            return table[t.op](*args)
        if t.dtype.is_float and all(a.dtype.is_float for a in t.args) and opdef.kind == "elementwise":
            return self._uninterpreted(t, args)
        raise Unmodelled(f"{t.op} on {t.dtype} is not modelled")

    def _uninterpreted(self, t: Term, args: list) -> z3.ExprRef:
        shown = "".join(f"[{k}={v}]" for k, v in t.attrs)
        name = f"{t.op}{shown}:{t.dtype.name}"
        if name not in self.functions:
            self.functions[name] = z3.Function(name, *[a.sort() for a in args], sort_of(t.dtype))
        app = self.functions[name](*args)
        self.applications.append((t, app))
        return app

    def _reduction(self, t: Term) -> z3.ExprRef:
        (arg,) = t.args
        axis, keep = t.attr("axis"), t.attr("keepdims")
        unit = any(leaves == arg.leaves() and ax == axis for leaves, ax in self.unit_reductions)
        if keep and unit and _keeps_shape(arg):
            x = self(arg)
            if t.op not in REDUCTIONS_ONE or t.dtype != arg.dtype:
                raise Unmodelled(f"{t.op} over one element on {arg.dtype}")
            kind = REDUCTIONS_ONE[t.op]
            if kind == "self":
                return x
            ops = SEMANTICS[_family(t.dtype)]
            zero, one = value_of(0, t.dtype), value_of(1, t.dtype)
            if kind == "plus_zero":  # sum, and mean: (+0 + x) / 1 is +0 + x exactly
                return ops["add"](zero, x)
            return ops["mul"](one, x)
        self.abstracted.append(t.op)
        return z3.Const(f"{t.op}#{len(self.memo)}:{t.dtype.name}", sort_of(t.dtype))


def _keeps_shape(t: Term) -> bool:
    """Every reduction inside keeps its dims, so t has the shape of its (broadcast) leaves."""
    if t.op in LEAVES:  # not op names, though an op may share one (var is also the variance)
        return True
    if OPS[t.op].kind == "reduce" and not t.attr("keepdims"):
        return False
    return all(_keeps_shape(a) for a in t.args)


def _is_whole(name: str, args: list, attrs: dict) -> bool:
    if not args or not isinstance(args[0], Term):
        return False
    if name == "concat":
        return len(args) == 1
    if name == "slice":
        defaults = {s.name: s.default for s in OPS[name].attrs}
        return all(attrs.get(k, defaults[k]) == defaults[k] for k in ("start", "stop", "step"))
    return False
