"""The rule verifier: no rule ships unless a machine has checked it.

For each case the verifier builds a small graph from the rule's own pattern (random shapes, with
broadcasting; random dtypes the pattern allows; random attribute values; commutative operands in
random order), lets the real matcher find the match, builds the replacement with the real builder,
and evaluates both with the reference interpreter on inputs chosen to break things: 0, -0, +-inf,
NaN, denormals, the largest and smallest normal numbers, and values at the edges of each op's domain
(where exp overflows or underflows, where tanh saturates, where x*x overflows).

What each class promises, and how it is checked:

* exact: bit-identical results on every input, specials included. NaN counts as one value: IEEE
  754 leaves the payload (and the sign) of a NaN result unspecified, x86 and NumPy do not preserve
  them across equivalent expressions, and no fusec backend promises them, so any NaN equals any NaN.
  -0 and +0 are different.
* approx: on finite inputs, wherever the original gives a finite value or NaN, the rewritten
  graph gives the same NaN placement and a value within the rule's tolerance (by default the
  project's, fusec.tolerance). Where the original overflows to inf, that element is not compared:
  an approx rule may avoid an overflow, never introduce one (after inf where before was finite fails).
* unsafe: as approx, but only on the domain the rule states with `assuming`.

A case where the guard is false, or where the replacement would not have the same type as the
matched node, is "not applicable" and does not count towards the cases tried.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fusec.errors import FusecError
from fusec.interp import evaluate
from fusec.ir.dtypes import BOOL, F32, F64, I32, I64, DType, literal_dtype
from fusec.ir.graph import Graph
from fusec.ir.ops import OPS, literal_context_dtype
from fusec.rewrite.apply import NotApplicable, instantiate
from fusec.rewrite.match import BITWISE_COMMUTATIVE, Matcher
from fusec.rewrite.rule import AttrLit, Call, ConstVar, Lit, PConst, PLit, PNamed, POp, PVar, Rule
from fusec.tolerance import ATOL, RTOL, compare

DEFAULT_CASES = 200
VERIFY_DTYPES = (F32, F64, I32, I64)


# ------------------------------------------------------------------------------------------ results


def _fmt(v: Any) -> str:
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, DType):
        return v.name
    return repr(v)


@dataclass
class Counterexample:
    """One input on which a rule breaks its promise, with the values on both sides."""

    dtype: str
    shape: tuple[int, ...]
    index: tuple[int, ...]
    values: dict[str, Any]  # each variable's value at the failing element (constants, attributes)
    before: Any
    after: Any
    reason: str

    def __str__(self) -> str:
        where = f"[{', '.join(map(str, self.index))}]" if self.index else "(a scalar)"
        lines = [f"counterexample ({self.dtype}, result shape [{', '.join(map(str, self.shape))}], element {where}):"]
        for name, v in self.values.items():
            lines.append(f"  {name} = {_fmt(v)}")
        lines.append(f"  pattern gives     {_fmt(self.before)}")
        lines.append(f"  replacement gives {_fmt(self.after)}")
        lines.append(f"  {self.reason}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "dtype": self.dtype,
            "shape": list(self.shape),
            "index": list(self.index),
            "values": {k: _fmt(v) for k, v in self.values.items()},
            "before": _fmt(self.before),
            "after": _fmt(self.after),
            "reason": self.reason,
        }


@dataclass
class VerifyResult:
    rule: Rule
    passed: bool
    cases: int  # applicable cases checked
    elements: int = 0  # elements compared over all cases
    not_applicable: int = 0  # generated cases where the guard was false or the types did not fit
    excluded: int = 0  # elements not compared because the original overflowed (approx, unsafe)
    dtypes: tuple[str, ...] = ()
    counterexample: Counterexample | None = None
    error: str | None = None

    def __str__(self) -> str:
        head = "PASS" if self.passed else "FAIL"
        text = f"{head} {self.rule.name} [{self.rule.cls}]: {self.cases} cases, {self.elements} elements ({', '.join(self.dtypes) or 'no dtype'})"
        if self.error:
            text += f"\n  {self.error}"
        if self.counterexample is not None:
            text += "\n" + "\n".join("  " + line for line in str(self.counterexample).splitlines())
        return text

    def to_json(self) -> dict:
        return {
            "name": self.rule.name,
            "class": self.rule.cls,
            "passed": self.passed,
            "cases": self.cases,
            "elements": self.elements,
            "not_applicable": self.not_applicable,
            "excluded_overflow": self.excluded,
            "dtypes": list(self.dtypes),
            "error": self.error,
            "counterexample": self.counterexample.to_json() if self.counterexample else None,
        }


# ------------------------------------------------------------------------------------------ inputs


def _float_pool(dt: np.dtype, finite: bool) -> np.ndarray:
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
    pool = _float_pool(dt, finite)
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
class _Case:
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


class _SelfCheckError(Exception):
    """The verifier built the pattern, but the matcher did not recognise it: a bug, reported as a failure."""


class _CaseMaker:
    """Builds one random instance of a rule's pattern as a graph."""

    def __init__(self, rule: Rule, rng: np.random.Generator):
        self.rule = rule
        self.rng = rng
        self.bool_vars = _condition_vars(rule.pattern, set())
        self.domain = {name: (lo, hi) for name, lo, hi in rule.domain}
        self.finite = rule.cls != "exact"
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

    def make(self, dtype: DType) -> _Case | None:
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
            raise _SelfCheckError(f"the matcher does not match the pattern's own instance:\n{g}")
        bindings = matcher.first(rule, root)  # now with the guard
        if bindings is None:
            return None
        try:
            new, _ = instantiate(g, rule, bindings, root)
        except NotApplicable:
            return None
        g.set_outputs([root, new])
        return _Case(g, root, new, inputs, dtype, values)


# ------------------------------------------------------------------------------------------ checking


def _bitwise_mismatch(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Elements that are not bit-identical; any NaN equals any NaN."""
    if before.dtype.kind == "f":
        bits = before.dtype.str.replace("f", "u")
        same = (before.view(bits) == after.view(bits)) | (np.isnan(before) & np.isnan(after))
        return ~same
    return before != after


def _tolerances(rule: Rule, dtype: np.dtype) -> tuple[float, float]:
    name = "f32" if dtype == np.float32 else "f64"
    rtol = rule.tolerance.rtol if rule.tolerance.rtol is not None else RTOL[name]
    atol = rule.tolerance.atol if rule.tolerance.atol is not None else ATOL[name]
    return rtol, atol


def _check(rule: Rule, case: _Case, before: np.ndarray, after: np.ndarray) -> tuple[int, int, tuple | None, str]:
    """(elements compared, elements excluded, failing index or None, reason)."""
    if before.shape != after.shape or before.dtype != after.dtype:
        return 0, 0, (), f"the replacement is {after.dtype}{list(after.shape)}, the pattern {before.dtype}{list(before.shape)}"
    if rule.cls == "exact":
        bad = _bitwise_mismatch(before, after)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return before.size, 0, idx, "exact rule: the results are not bit-identical"
        return before.size, 0, None, ""
    excluded = np.isinf(before) if before.dtype.kind == "f" else np.zeros(before.shape, dtype=bool)
    keep = ~excluded
    b, a = before[keep], after[keep]
    positions = np.argwhere(keep)
    if before.dtype.kind != "f":
        m = compare(a, b)
        if m is not None:
            return int(keep.sum()), int(excluded.sum()), tuple(int(i) for i in positions[m.index[0]]), f"{rule.cls} rule: integer results differ"
        return int(keep.sum()), int(excluded.sum()), None, ""
    rtol, atol = _tolerances(rule, before.dtype)
    if rule.tolerance.scale == "result":
        m = compare(a, b, rtol=rtol, atol=atol)
        reason = f"{rule.cls} rule: {m.reason} (rtol={rtol:g}, atol={atol:g})" if m else ""
    else:
        m = compare(a, b, rtol=np.inf, atol=np.inf)  # NaN and inf placement only
        reason = f"{rule.cls} rule: {m.reason}" if m else ""
        if m is None:
            scale = np.abs(before.astype(np.float64))
            for v in case.values.values():
                arr = np.asarray(v)
                if arr.dtype.kind in "fiu":
                    try:
                        mag = np.broadcast_to(np.abs(arr.astype(np.float64)), before.shape)
                    except ValueError:
                        continue
                    scale = np.maximum(scale, np.where(np.isfinite(mag), mag, 0.0))
            with np.errstate(all="ignore"):
                err = np.abs(a.astype(np.float64) - b.astype(np.float64))
                over = np.isfinite(b) & (err > atol + rtol * scale[keep])
            if over.any():
                i = int(np.argmax(np.where(over, err, -1.0)))
                return int(keep.sum()), int(excluded.sum()), tuple(int(j) for j in positions[i]), (
                    f"{rule.cls} rule: error {err[i]:.3g} exceeds {atol:g} + {rtol:g} x {scale[keep][i]:.3g} (the largest operand)"
                )
    if m is not None:
        return int(keep.sum()), int(excluded.sum()), tuple(int(j) for j in positions[m.index[0]]), reason
    return int(keep.sum()), int(excluded.sum()), None, ""


def _counterexample(case: _Case, before: np.ndarray, after: np.ndarray, index: tuple, reason: str) -> Counterexample:
    values = {}
    for name, v in case.values.items():
        arr = np.asarray(v) if not isinstance(v, (tuple, DType)) and v is not None else None
        if arr is not None and arr.dtype.kind in "fiub" and arr.ndim > 0:
            try:
                values[name] = np.broadcast_to(arr, before.shape)[index]
            except ValueError:
                values[name] = arr
        else:
            values[name] = v
    b = before[index] if before.ndim else before
    a = after[index] if after.ndim else after
    return Counterexample(case.dtype.name, tuple(before.shape), tuple(index), values, b, a, reason)


def _allowed_dtypes(rule: Rule, maker: _CaseMaker) -> list[DType]:
    allowed = []
    for dt in VERIFY_DTYPES:
        try:
            if any(maker.make(dt) is not None for _ in range(40)):
                allowed.append(dt)
        except _SelfCheckError:
            allowed.append(dt)  # verify_rule meets the same error and reports it
    return allowed


def verify_rule(rule: Rule, cases: int = DEFAULT_CASES, seed: int = 0) -> VerifyResult:
    """Check `rule` against the interpreter on `cases` applicable random cases.

    Returns a VerifyResult: passed, the number of cases tried and, on failure, a counterexample.
    """
    if cases < 1:
        raise FusecError(f"--cases must be at least 1, got {cases}")
    rng = np.random.default_rng([seed, zlib.crc32(rule.name.encode())])
    maker = _CaseMaker(rule, rng)
    allowed = _allowed_dtypes(rule, maker)
    result = VerifyResult(rule, passed=False, cases=0, dtypes=tuple(d.name for d in allowed))
    if not allowed:
        result.error = "no applicable case: for every dtype the pattern does not type-check or the guard is false"
        return result
    attempts = 0
    while result.cases < cases and attempts < cases * 40:
        attempts += 1
        dtype = allowed[int(rng.integers(0, len(allowed)))]
        try:
            case = maker.make(dtype)
        except _SelfCheckError as err:
            result.error = str(err)
            return result
        if case is None:
            result.not_applicable += 1
            continue
        values = evaluate(case.graph, case.inputs)
        before, after = np.asarray(values[case.root]), np.asarray(values[case.replacement])
        compared, excluded, index, reason = _check(rule, case, before, after)
        result.cases += 1
        result.elements += compared
        result.excluded += excluded
        if index is not None:
            result.counterexample = _counterexample(case, before, after, index, reason)
            return result
    if result.cases < cases:
        result.error = f"only {result.cases} applicable cases in {attempts} attempts (wanted {cases}); the guard is rarely true"
        return result
    result.passed = True
    return result


def verify_rules(rules: list[Rule], cases: int = DEFAULT_CASES, seed: int = 0) -> list[VerifyResult]:
    return [verify_rule(r, cases=cases, seed=seed) for r in rules]
