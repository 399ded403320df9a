"""Random cases for the verifier: a rule's pattern built as a small graph, with inputs chosen to break it.

A case is one instance of a rule's pattern: a random shape (with broadcasting), a dtype the pattern
allows, random attribute values, commutative operands in random order, and input values drawn from
a pool of troublemakers (0, -0, +-inf, NaN, denormals, the largest and smallest normal numbers,
the edges of exp, tanh and erf) mixed with ordinary and very large or small numbers. The real
matcher finds the match and the real builder builds the replacement, so the verifier checks the
code that rewrites graphs, not a copy of it. verify.py compares the two results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fusec.errors import FusecError
from fusec.ir.dtypes import BOOL, F32, F64, I32, I64, DType, literal_dtype
from fusec.ir.graph import Graph
from fusec.ir.ops import OPS, literal_context_dtype
from fusec.rewrite.apply import NotApplicable, instantiate
from fusec.rewrite.match import BITWISE_COMMUTATIVE, Matcher
from fusec.rewrite.rule import AttrLit, Call, ConstVar, Lit, PConst, PLit, PNamed, POp, PVar, Rule

VERIFY_DTYPES = (F32, F64, I32, I64)


# ------------------------------------------------------------------------------------------ inputs


def float_pool(dt: np.dtype, finite: bool) -> np.ndarray:
    """Values that break float identities: zeros, ones, specials, denormals, domain edges."""
    fi = np.finfo(dt)
    edges = [88.72283, -87.33655, -103.97208, 709.78, -708.39, -745.13]  # exp overflow/underflow (f32, f64)
    values = [
        0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, 10.0, 100.0, -1e4,
        float(fi.eps), 1.0 + float(fi.eps), 1.0 - float(fi.epsneg), 1e-8, -1e-8,
        float(fi.tiny), -float(fi.tiny), float(fi.smallest_subnormal), -float(fi.smallest_subnormal),
        float(fi.tiny) - float(fi.smallest_subnormal), float(fi.max), -float(fi.max),
        math.sqrt(float(fi.max)), -math.sqrt(float(fi.max)), 1.0 / math.sqrt(float(fi.max)),
        9.01, -9.01, 20.0, 4.0, -4.0, 6.0, math.pi,  # tanh and erf saturate
    ] + edges
    if not finite:
        values += [math.inf, -math.inf, math.nan, math.inf, -math.inf, math.nan]
    with np.errstate(over="ignore"):
        return np.array(values, dtype=np.float64).astype(dt)


def _random_floats(n: int, dt: np.dtype, finite: bool, rng: np.random.Generator) -> np.ndarray:
    pool = float_pool(dt, finite)
    span = 12 if dt == np.float32 else 30
    kind = rng.random(n)
    out = np.empty(n, dtype=np.float64)
    special = kind < 0.4
    out[special] = pool[rng.integers(0, len(pool), int(special.sum()))].astype(np.float64)
    normal = (kind >= 0.4) & (kind < 0.7)
    out[normal] = rng.standard_normal(int(normal.sum()))
    wide = kind >= 0.7
    signs = np.where(rng.random(int(wide.sum())) < 0.5, -1.0, 1.0)
    out[wide] = signs * 10.0 ** rng.uniform(-span, span, int(wide.sum()))
    return out.astype(dt)


def _domain_floats(n: int, dt: np.dtype, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """Values in [lo, hi]: the edges, zero if inside, uniform draws and log-uniform magnitudes."""
    kind = rng.random(n)
    out = rng.uniform(lo, hi, n)
    edge = kind < 0.15
    out[edge] = np.where(rng.random(int(edge.sum())) < 0.5, lo, hi)
    logs = kind > 0.55
    k = int(logs.sum())
    if k:
        top = max(abs(lo), abs(hi))
        bottom = max(min(abs(v) for v in (lo, hi) if v != 0) if lo * hi > 0 else 1e-30, 1e-300)
        mags = 10.0 ** rng.uniform(math.log10(bottom), math.log10(top), k)
        signs = np.where(rng.random(k) < 0.5, -1.0, 1.0) if lo < 0 < hi else np.full(k, 1.0 if hi > 0 else -1.0)
        out[logs] = np.clip(signs * mags, lo, hi)
    if lo <= 0 <= hi:
        out[kind < 0.03] = 0.0
    return np.clip(out.astype(dt), dt.type(lo) if dt.type(lo) >= lo else np.nextafter(dt.type(lo), dt.type(hi)), hi).astype(dt)


def _random_ints(n: int, dt: np.dtype, rng: np.random.Generator) -> np.ndarray:
    info = np.iinfo(dt)
    pool = np.array([0, 1, -1, 2, -2, 3, 7, -8, 100, info.max, info.min, info.max - 1, info.min + 1], dtype=dt)
    kind = rng.random(n)
    out = rng.integers(-100, 101, n).astype(dt)
    special = kind < 0.35
    out[special] = pool[rng.integers(0, len(pool), int(special.sum()))]
    full = kind > 0.85
    out[full] = rng.integers(info.min, info.max, int(full.sum()), dtype=dt, endpoint=True)
    return out


def _values(shape: tuple[int, ...], dtype: DType, finite: bool, domain: tuple[float, float] | None, rng) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    if dtype == BOOL:
        flat = rng.random(n) < 0.5
    elif dtype.is_int:
        flat = _random_ints(n, dtype.numpy, rng)
        if domain is not None:  # the integers inside the domain
            info = np.iinfo(dtype.numpy)
            lo, hi = max(math.ceil(domain[0]), int(info.min)), min(math.floor(domain[1]), int(info.max))
            flat = rng.integers(lo, hi, n, endpoint=True, dtype=dtype.numpy) if lo <= hi else flat[:0]
    elif domain is not None:
        flat = _domain_floats(n, dtype.numpy, domain[0], domain[1], rng)
    else:
        flat = _random_floats(n, dtype.numpy, finite, rng)
    return np.array(np.asarray(flat, dtype=dtype.numpy).reshape(shape), order="C")  # ascontiguousarray makes 0-d 1-d


def _constant(dtype: DType, finite: bool, domain: tuple[float, float] | None, rng) -> bool | int | float:
    if dtype == BOOL:
        return bool(rng.random() < 0.5)
    return _values((1,), dtype, finite, domain, rng)[0].item()


# ------------------------------------------------------------------------------------------ cases


@dataclass
class Case:
    graph: Graph
    root: str
    replacement: str
    inputs: list[np.ndarray]
    dtype: DType
    values: dict[str, Any] = field(default_factory=dict)  # for the counterexample: name -> array or value


def _guard_numbers(e: Any, out: dict[str, list[float]]) -> dict[str, list[float]]:
    """Numbers a guard compares a constant with (is_close($c, 0.0447), $c > 2): the constant is
    also drawn near them. Numbers not tied to one constant are listed under ""."""
    if isinstance(e, Call) and len(e.args) == 2:
        a, b = e.args
        if isinstance(a, ConstVar) and isinstance(b, Lit) and isinstance(b.value, (int, float)) and not isinstance(b.value, bool):
            out.setdefault(a.name, []).append(float(b.value))
            return out
    if isinstance(e, Lit) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool):
        out.setdefault("", []).append(float(e.value))
    for child in getattr(e, "args", ()) or ():
        _guard_numbers(child, out)
    return out


def _condition_vars(p: Any, out: set[str]) -> set[str]:
    """Tensor variables used as where's condition: they must be bool."""
    if isinstance(p, PNamed):
        _condition_vars(p.pattern, out)
    elif isinstance(p, POp):
        if p.op == "where" and isinstance(p.args[0], PVar):
            out.add(p.args[0].name)
        for a in p.args:
            _condition_vars(a, out)
    return out


class SelfCheckError(Exception):
    """The verifier built the pattern, but the matcher did not recognise it: a bug, reported as a failure."""


class CaseMaker:
    """Builds one random instance of a rule's pattern as a graph."""

    def __init__(self, rule: Rule, rng: np.random.Generator, anywhere: bool = False):
        """anywhere=True ignores the rule's domain and draws specials too (to show why it is unsafe)."""
        self.rule = rule
        self.rng = rng
        self.bool_vars = _condition_vars(rule.pattern, set())
        self.domain = {} if anywhere else {name: (lo, hi) for name, lo, hi in rule.domain}
        self.finite = rule.cls != "exact" and not anywhere
        self.guard_numbers = _guard_numbers(rule.guard, {}) if rule.guard is not None else {}

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        rng = self.rng
        rank = int(rng.choice([0, 1, 2, 3], p=[0.1, 0.3, 0.35, 0.25]))
        base = tuple(int(d) for d in rng.choice([1, 2, 3, 4, 5], size=rank, p=[0.2, 0.25, 0.25, 0.15, 0.15]))
        shapes = {}
        for v in self.rule.tensor_vars:
            if rank and rng.random() < 0.35:  # a shape that broadcasts to the base shape
                drop = int(rng.integers(0, rank + 1))
                s = [1 if rng.random() < 0.3 else d for d in base[drop:]]
                shapes[v] = tuple(s)
            else:
                shapes[v] = base
        return shapes

    def _attr(self, op: str, spec, arg_types: list, generated: list) -> Any:
        rng = self.rng
        r = arg_types[0].rank if arg_types else 0
        shape = arg_types[0].shape if arg_types else ()
        if op == "transpose":
            options = [tuple(range(r)), tuple(int(i) for i in rng.permutation(r)), None]
            earlier = [g for g in generated if isinstance(g, tuple) and len(g) == r and sorted(g) == list(range(r))]
            if earlier:
                p = earlier[int(rng.integers(0, len(earlier)))]
                options.append(tuple(int(i) for i in np.argsort(p)))
            return options[int(rng.integers(0, len(options)))]
        if op == "reshape":
            n = int(np.prod(shape, dtype=np.int64))
            options = [tuple(shape), tuple(reversed(shape)), (n,), (-1,), (1, n), (n, 1) if n else (0,)]
            for d in (2, 3):
                if n and n % d == 0:
                    options.append((d, n // d))
                    options.append((d, -1))
            return options[int(rng.integers(0, len(options)))]
        if op == "broadcast_to":
            grown = tuple(int(rng.integers(2, 4)) if d == 1 and rng.random() < 0.5 else d for d in shape)
            lead = tuple(int(rng.integers(1, 4)) for _ in range(int(rng.integers(0, 2))))
            options = [tuple(shape), grown, lead + grown]
            return options[int(rng.integers(0, len(options)))]
        if spec.type == "axes":
            if r == 0 or rng.random() < 0.15:
                return None
            if rng.random() < 0.15 and r >= 2:
                return tuple(int(a) for a in rng.choice(r, size=2, replace=False))
            return int(rng.integers(-r, r))
        if spec.name == "axis":
            if op == "expand_dims":
                return int(rng.integers(-(r + 1), r + 1))
            return int(rng.integers(-r, r)) if r else 0
        if spec.type == "int":
            return int(rng.integers(-2, 7))
        if spec.type == "float":
            return float(rng.choice([1e-5, 1e-6, 0.1, 1.0]))
        if spec.type == "bool":
            return bool(rng.random() < 0.5)
        if spec.type == "dtype":
            return VERIFY_DTYPES[int(rng.integers(0, len(VERIFY_DTYPES)))]
        if spec.choices:
            return spec.choices[int(rng.integers(0, len(spec.choices)))]
        raise NotApplicable(f"cannot generate a value for attribute {spec.name} of {op}")

    def make(self, dtype: DType) -> Case | None:
        rule, rng = self.rule, self.rng
        g = Graph(f"verify_{rule.name}")
        shapes = self._shapes()
        values: dict[str, Any] = {}
        names: dict[str, str] = {}
        inputs = []
        for v in rule.tensor_vars:
            dt = BOOL if v in self.bool_vars else dtype
            g.add_input(v, dt, shapes[v])
            names[v] = v
            arr = _values(shapes[v], dt, self.finite, self.domain.get(v), rng)
            inputs.append(arr)
            values[v] = arr
        for c in rule.const_vars:
            value = _constant(dtype, self.finite, self.domain.get(c), rng)
            numbers = self.guard_numbers.get(c) or self.guard_numbers.get("")
            if numbers and dtype.is_float and rng.random() < (0.8 if c in self.guard_numbers else 0.3):
                # near a number the guard names, a few ulps either side
                near = dtype.numpy.type(numbers[int(rng.integers(0, len(numbers)))])
                value = (near + int(rng.integers(-3, 4)) * np.spacing(np.abs(near))).item()
            earlier = [values[k] for k in rule.const_vars if k in values]
            if earlier and c not in self.domain and rng.random() < 0.3:
                # constants related to each other are where identities break: a + (-a) cancels
                e = np.asarray(earlier[int(rng.integers(0, len(earlier)))], dtype=dtype.numpy)
                with np.errstate(all="ignore"):  # -(lowest int) wraps, 1/0 is inf: both are fine cases
                    related = [e, -e, np.reciprocal(e) if dtype.is_float else e]
                value = related[int(rng.integers(0, 3))].item()
            const_dtype = dtype
            if dtype.is_float and rng.random() < 0.15:  # a typed literal of the other float dtype: f64(0.5)
                const_dtype = F64 if dtype == F32 else F32
                with np.errstate(over="ignore"):
                    value = const_dtype.numpy.type(value).item()
            names[c] = g.const(value, const_dtype)
            values[c] = value
        attrs: dict[str, Any] = {}
        generated: list = []

        def build(p: Any) -> Any:
            if isinstance(p, (PVar, PConst)):
                return names[p.name]
            if isinstance(p, PLit):
                return p.value
            if isinstance(p, PNamed):
                if p.name not in names:
                    names[p.name] = build(p.pattern)
                return names[p.name]
            assert isinstance(p, POp)
            args = [build(a) for a in p.args]
            opdef = OPS[p.op]
            ctx = literal_context_dtype(opdef, [None if not isinstance(a, str) else g.type_of(a).dtype for a in args])
            args = [
                a if isinstance(a, str) else g.const(a, BOOL if isinstance(a, bool) else literal_dtype(a, ctx))
                for a in args
            ]
            if p.op in BITWISE_COMMUTATIVE and len(args) == 2 and rng.random() < 0.5:
                args.reverse()  # the matcher accepts either order, so the verifier tries both
            kw = {}
            for (key, ap), spec in zip(p.attrs, opdef.attrs):
                if isinstance(ap, AttrLit):
                    kw[key] = ap.value
                elif ap.name in attrs:
                    kw[key] = attrs[ap.name]
                else:
                    value = self._attr(p.op, spec, [g.type_of(a) for a in args], generated)
                    attrs[ap.name] = kw[key] = value
                    generated.append(value)
            return g.add(p.op, *args, **kw)

        try:
            root = build(rule.pattern)
        except (FusecError, NotApplicable):
            return None
        values.update(attrs)
        g.set_outputs([root])
        matcher = Matcher(g)
        if next(matcher._match(rule.pattern, root, {}), None) is None:
            raise SelfCheckError(f"the matcher does not match the pattern's own instance:\n{g}")
        bindings = matcher.first(rule, root)  # now with the guard
        if bindings is None:
            return None
        try:
            new, _ = instantiate(g, rule, bindings, root)
        except NotApplicable:
            return None
        g.set_outputs([root, new])
        return Case(g, root, new, inputs, dtype, values)


