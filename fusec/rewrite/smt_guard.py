"""A rule's guard and domain as constraints, and a solver's counterexample checked with NumPy.

Guards (guards.py evaluates them against a match) say two kinds of things. Facts about types,
`is_float(x)` or `dtype($a) == dtype(x)`, are decided here for the dtype being proved: false means
this dtype is not an instance of the rule. Facts about constant values, `is_normal($a * $b)`,
`is_close($k, 0.7978845608028654)`, become constraints on the constants' symbolic values, with the
arithmetic done in the constant's dtype as guards.py does it. `reduced_size(x, a) == 1` and
`dim(x, -1) == 1` tell the translation that a reduction has one element. A conjunct that cannot
be modelled (`is_const(y)`) is left out and named in the report: leaving a conjunct out only
widens the set of inputs, so a proof still holds; a counterexample might fall outside the guard.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import z3

from fusec.ir.dtypes import BOOL, DTYPES, DType
from fusec.ir.ops import OPS
from fusec.rewrite.rule import BoolOp, Call, ConstVar, ListExpr, Lit, Var
from fusec.rewrite.smt_terms import FLOAT, INT, Sym, Term, convert, sort_of, value_of

_CMP = {"eq", "ne", "lt", "le", "gt", "ge"}


class NotModelled(Exception):
    pass


class _Num:
    """A symbolic number in a guard: a constant's value, or arithmetic on it, in a dtype."""

    def __init__(self, z: z3.ExprRef, dtype: DType):
        self.z, self.dtype = z, dtype


class GuardTranslator:
    def __init__(self, terms: dict[str, Term], tr, attr_values: dict[str, Any]):
        self.terms = terms  # tensor and constant variables -> their Terms
        self.tr = tr  # the Z3Translator (consts are translated through it)
        self.attr_values = attr_values
        self.units: set = set()
        self.dropped: list[str] = []

    def constraints(self, guard) -> z3.BoolRef | bool:
        """The guard as a Z3 constraint, or False when it is statically false at this dtype."""
        parts = []
        for conj in _conjuncts(guard):
            try:
                v = self._bool(conj)
            except NotModelled as err:
                self.dropped.append(str(err))
                continue
            if v is False:
                return False
            if v is not True:
                parts.append(v)
        return z3.And(*parts) if parts else True

    def _bool(self, e) -> Any:
        v = self.eval(e)
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, z3.BoolRef):
            return v
        raise NotModelled(f"guard value {v!r} is not a truth value")

    def eval(self, e) -> Any:
        if isinstance(e, Lit):
            return e.value
        if isinstance(e, ListExpr):
            return tuple(self.eval(i) for i in e.items)
        if isinstance(e, ConstVar):
            t = self.terms[e.name]
            return _Num(self.tr(t), t.dtype)
        if isinstance(e, Var):
            if e.name in self.terms:
                return self.terms[e.name]
            if e.name in self.attr_values:
                return self.attr_values[e.name]
            if e.name in DTYPES:
                return DTYPES[e.name]
            return Sym(e.name)
        if isinstance(e, BoolOp):
            args = [self._bool(a) for a in e.args]
            if e.op == "not":
                return (not args[0]) if isinstance(args[0], bool) else z3.Not(args[0])
            if all(isinstance(a, bool) for a in args):
                return all(args) if e.op == "and" else any(args)
            return z3.And(*args) if e.op == "and" else z3.Or(*args)
        if isinstance(e, Call):
            return self._call(e)
        raise NotModelled(f"{e!r}")

    def _call(self, e: Call) -> Any:
        if e.fn == "eq" and _is_unit_claim(e):
            size_of, one = e.args
            x = self.eval(size_of.args[0])
            axis = self.eval(size_of.args[1])
            if isinstance(x, Term):
                self.units.add((x.leaves(), axis))
                return True
        args = [self.eval(a) for a in e.args]
        fn = e.fn
        if fn in ("is_float", "is_int"):
            dt = _dtype(args[0])
            return dt.is_float if fn == "is_float" else dt.is_int
        if fn == "dtype":
            return _dtype(args[0])
        if fn == "is_const":
            if isinstance(args[0], _Num):
                return True
            raise NotModelled(f"is_const({_shown(e.args[0])}): whether a value is a constant node")
        if fn in ("is_normal", "is_finite", "is_close", "abs"):
            x = args[0]
            if not isinstance(x, _Num) or not x.dtype.is_float:
                raise NotModelled(f"{fn} of a non-float")
            if fn == "is_normal":
                return z3.fpIsNormal(x.z)
            if fn == "is_finite":
                return z3.Not(z3.Or(z3.fpIsInf(x.z), z3.fpIsNaN(x.z)))
            if fn == "abs":
                return _Num(z3.fpAbs(x.z), x.dtype)
            t = x.dtype.numpy.type(args[1])
            gap = 2 * np.spacing(np.abs(t))
            return z3.And(z3.fpGEQ(x.z, value_of(t - gap, x.dtype)), z3.fpLEQ(x.z, value_of(t + gap, x.dtype)))
        if fn == "neg" and isinstance(args[0], _Num):
            return _Num(z3.fpNeg(args[0].z) if args[0].dtype.is_float else -args[0].z, args[0].dtype)
        if fn in ("add", "sub", "mul", "div") or fn in _CMP:
            return self._binary(fn, *args)
        if fn == "is_single_axis" and not isinstance(args[0], Sym):
            return isinstance(args[0], int) or (isinstance(args[0], tuple) and len(args[0]) == 1)
        raise NotModelled(f"{fn}({', '.join(_shown(a) for a in e.args)})")

    def _binary(self, fn: str, a: Any, b: Any) -> Any:
        if not isinstance(a, _Num) and not isinstance(b, _Num):
            if any(isinstance(v, (Sym, Term)) for v in (a, b)):
                raise NotModelled(f"{fn} of symbolic attributes or shapes")
            ops = {"eq": lambda p, q: p == q, "ne": lambda p, q: p != q}
            if fn in ops:
                return ops[fn](a, b)
            raise NotModelled(f"{fn} of {a!r} and {b!r}")
        dt = a.dtype if isinstance(a, _Num) else b.dtype
        za = a.z if isinstance(a, _Num) else value_of(a, dt)
        zb = convert(b.z, b.dtype, dt) if isinstance(b, _Num) else value_of(b, dt)
        if isinstance(a, _Num) and a.dtype != dt:  # pragma: no cover
            za = convert(a.z, a.dtype, dt)
        table = FLOAT if dt.is_float else INT
        if fn not in table:
            raise NotModelled(f"{fn} on {dt} in a guard")
        out = table[fn](za, zb)
        return out if fn in _CMP else _Num(out, dt)


def _conjuncts(g) -> list:
    if g is None:
        return []
    if isinstance(g, BoolOp) and g.op == "and":
        return _conjuncts(g.args[0]) + _conjuncts(g.args[1])
    return [g]


def _is_unit_claim(e: Call) -> bool:
    size_of, one = e.args
    return isinstance(size_of, Call) and size_of.fn in ("reduced_size", "dim") and isinstance(one, Lit) and one.value == 1


def _dtype(v: Any) -> DType:
    if isinstance(v, (Term, _Num)):
        return v.dtype
    raise NotModelled(f"dtype of {v!r}")


def _shown(e: Any) -> str:
    if isinstance(e, Var):
        return e.name
    if isinstance(e, ConstVar):
        return "$" + e.name
    if isinstance(e, Lit):
        return repr(e.value)
    if isinstance(e, Call):
        return f"{e.fn}(...)"
    return "..."


def domain_constraints(domain, terms: dict[str, Term], tr) -> list[z3.BoolRef]:
    """`assuming x in [lo, hi]`: lo <= x <= hi, the bounds rounded to x's dtype."""
    out = []
    for name, lo, hi in domain:
        t = terms[name]
        z = tr(t)
        if t.dtype.is_float:
            out += [z3.fpGEQ(z, value_of(lo, t.dtype)), z3.fpLEQ(z, value_of(hi, t.dtype))]
        elif t.dtype != BOOL:
            out += [z >= value_of(math.ceil(lo), t.dtype), z <= value_of(math.floor(hi), t.dtype)]
        else:  # a bool is 0 or 1 in arithmetic: keep the values the interval holds (div_self's [1e-30, 1e30]: true only)
            allowed = [z == z3.BoolVal(v) for v in (False, True) if lo <= int(v) <= hi]
            out.append(z3.Or(*allowed) if allowed else z3.BoolVal(False))
    return out


# ------------------------------------------------------------------------------------------ checking a model


def model_value(model: z3.ModelRef, z: z3.ExprRef, dt: DType) -> Any:
    """A Z3 model's value as a NumPy scalar of dtype dt."""
    v = model.eval(z, model_completion=True)
    if dt == BOOL:
        return np.bool_(z3.is_true(v))
    if not dt.is_float:
        return dt.numpy.type(np.array(v.as_signed_long()).astype(dt.numpy))
    if z3.is_true(z3.simplify(z3.fpIsNaN(v))):
        return dt.numpy.type("nan")
    bits = z3.simplify(z3.fpToIEEEBV(v)).as_long()
    width = 8 * dt.itemsize
    return np.array([bits], dtype=np.uint32 if width == 32 else np.uint64).view(dt.numpy)[0]


def numpy_value(t: Term, env: dict[str, Any]) -> np.ndarray:
    """A term evaluated with the op table's NumPy references (the interpreter's code), at one element."""
    if t.op in ("var", "const"):
        return np.asarray(env[t.attr("name")], dtype=t.dtype.numpy)
    if t.op == "lit":
        v = t.attr("value")
        with np.errstate(all="ignore"):
            return np.asarray(env[f"{v.name}:{t.dtype.name}"] if isinstance(v, Sym) else v).astype(t.dtype.numpy)
    opdef = OPS[t.op]
    args = [numpy_value(a, env) for a in t.args]
    if "computes_in_result_dtype" in opdef.families:
        args = [a.astype(t.dtype.numpy) for a in args]
    elif "comparison" in opdef.families:
        want = np.result_type(args[0].dtype, args[1].dtype)
        args = [a.astype(want) for a in args]
    elif t.op == "where":
        args = [args[0]] + [a.astype(t.dtype.numpy) for a in args[1:]]
    with np.errstate(all="ignore"):
        return np.asarray(opdef.numpy(args, dict(t.attrs))).astype(t.dtype.numpy)


def sort_name(dt: DType) -> str:
    return str(sort_of(dt))
