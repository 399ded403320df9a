"""Prove rewrite rules over IEEE-754 with Z3: `fusec rules prove`.

For each rule and dtype, smt_terms.py translates both sides into Z3 terms and the solver looks for
an input in the rule's domain on which they differ, bit for bit with NaN equal to NaN (rounding to
nearest-even). None: **proved**. One: a **counterexample**, re-evaluated with the op table's NumPy
references before it is reported, so that a value the solver chose for an uninterpreted exp (say)
is never reported as a bug. Neither within the time limit, or an op the translation does not model:
**unknown**, with the reason.

An exact rule must be equal everywhere. An approx rule is proved in the strongest form that holds:
bit for bit everywhere, bit for bit on finite inputs, or within its tolerance on finite inputs
(where the original overflows to inf the element is not compared, as the verifier does); an unsafe
rule the same on its `assuming` domain. When none can be shown the report says "tested only".

Results are cached by the rule's text, the dtype, the axioms and the solver's version in
`<fusec cache dir>/proofs.json`, so a second run is fast. Needs the `prove` extra (z3-solver).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fusec.errors import FusecError
from fusec.ir.dtypes import BOOL, DTYPES, F32, DType
from fusec.rewrite.rule import AttrVar, POp, Rule
from fusec.runtime.files import new_file_mode

PROVER_VERSION = 3  # 2: layout rules over whole tensors, part-by-part proofs; 3: rounding, sign, logical ops
DEFAULT_TIMEOUT = 10.0
DEFAULT_DTYPES = ("f32", "f64", "i32", "i64", "bool")


def z3_module():
    try:
        import z3
    except ImportError:
        raise FusecError("`fusec rules prove` needs the prove extra: pip install 'fusec[prove]' (z3-solver)") from None
    return z3


@dataclass
class Proof:
    """One rule at one dtype."""

    rule: str
    cls: str
    dtype: str
    verdict: str  # proved, counterexample or unknown
    claim: str = ""  # what was proved, or what was looked for
    seconds: float = 0.0
    reason: str = ""
    axioms: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counterexample: dict | None = None
    cached: bool = False

    def to_json(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        head = f"{self.dtype}: {self.verdict}"
        if self.claim:
            head += f", {self.claim}"
        head += f" ({self.seconds:.2f} s{', cached' if self.cached else ''})"
        out = [head]
        if self.reason:
            out.append(f"  {self.reason}")
        if self.axioms:
            out.append("  axioms used: " + ", ".join(self.axioms))
        for n in self.notes:
            out.append(f"  note: {n}")
        if self.counterexample:
            c = self.counterexample
            for k, v in c["inputs"].items():
                out.append(f"  {k} = {v}")
            out.append(f"  pattern gives     {c['before']}")
            out.append(f"  replacement gives {c['after']}")
            if c.get("ulps") is not None:
                out.append(f"  difference: {c['ulps']} ulps")
        return "\n".join(out)


# ------------------------------------------------------------------------------------------ instances


def _attr_types(p, out: dict[str, str]) -> dict[str, str]:
    if isinstance(p, POp):
        from fusec.ir.ops import OPS

        specs = {s.name: s.type for s in OPS[p.op].attrs}
        for k, v in p.attrs:
            if isinstance(v, AttrVar):
                out[v.name] = specs[k]
        for a in p.args:
            _attr_types(a, out)
    elif hasattr(p, "pattern"):
        _attr_types(p.pattern, out)
    return out


def _instances(rule: Rule, dt: DType):
    """(var types, attribute values, lhs, rhs, builder) for each typing of the rule at dtype dt."""
    from fusec.rewrite.smt_terms import IllTyped, TermBuilder

    enum = [n for n, t in _attr_types(rule.pattern, {}).items() if t == "dtype"]
    names = list(rule.tensor_vars) + list(rule.const_vars)
    for attr_combo in itertools.product(*[list(DTYPES.values())] * len(enum)):
        attrs = dict(zip(enum, attr_combo))
        for types in itertools.product(*[[dt] if dt == BOOL or n in rule.const_vars else [dt, BOOL] for n in names]):
            var_types = dict(zip(names, types))
            b = TermBuilder(dt, var_types, attrs)
            try:
                lhs = b.pattern(rule.pattern)
                rhs = b.literal(b.replacement(rule.replacement), lhs.dtype)
            except IllTyped:
                continue
            if rhs.dtype != lhs.dtype:
                continue
            yield var_types, attrs, lhs, rhs, b
            break  # the first typing of the variables (dt before bool) is the instance


# ------------------------------------------------------------------------------------------ proving


def prove_rule(rule: Rule, dtypes=DEFAULT_DTYPES, timeout: float = DEFAULT_TIMEOUT, cache: ProofCache | None = None) -> list[Proof]:
    """Prove one rule at each dtype that is an instance of it (dtypes it does not type-check at are left out)."""
    z3_module()
    from fusec.rewrite.smt_terms import MovesElements, Unmodelled

    out = []
    for name in dtypes:
        dt = DTYPES[name]
        key = cache.key(rule, name) if cache else None
        if cache and key in cache:
            out.append(cache[key])
            continue
        start = time.perf_counter()
        try:
            found = [_prove_instance(rule, dt, inst, timeout) for inst in _instances(rule, dt)]
        except MovesElements:
            found = [_prove_layout(rule, dt, timeout)]
        except Unmodelled as err:
            found = [Proof(rule.name, rule.cls, name, "unknown", reason=f"not modelled: {err}")]
        found = [p for p in found if p.verdict != "n/a"]
        if not found:
            continue  # no instance of the rule at this dtype (its guard or types rule it out)
        order = {"counterexample": 0, "unknown": 1, "bounded": 2, "proved": 3}
        p = min(found, key=lambda q: order[q.verdict])
        p.seconds = time.perf_counter() - start
        if cache is not None and "gave up" not in p.reason:
            cache[key] = p
        out.append(p)
    return out


def _prove_layout(rule: Rule, dt: DType, timeout: float) -> Proof:
    from fusec.rewrite.smt_layout import prove_layout

    verdict, claim, reason = prove_layout(rule, dt, timeout)
    return Proof(rule.name, rule.cls, dt.name, verdict, claim=claim, reason=reason)


def _prove_instance(rule: Rule, dt: DType, inst, timeout: float) -> Proof:
    import z3

    from fusec.rewrite.smt_axioms import instantiate
    from fusec.rewrite.smt_guard import GuardTranslator, domain_constraints
    from fusec.rewrite.smt_terms import Z3Translator

    var_types, attrs, lhs, rhs, builder = inst
    terms = dict(builder.bound)
    # the guard first: it may say a reduction has one element, which the translation must know
    probe = GuardTranslator(terms, Z3Translator(), attrs)
    guard = probe.constraints(rule.guard)
    proof = Proof(rule.name, rule.cls, dt.name, "unknown")
    if guard is False:
        return Proof(rule.name, rule.cls, dt.name, "n/a")
    tr = Z3Translator(probe.units)
    gt = GuardTranslator(terms, tr, attrs)
    guard = gt.constraints(rule.guard)
    proof.notes += [f"guard not modelled, left out: {d}" for d in gt.dropped]
    a, b = tr(lhs), tr(rhs)
    axioms = instantiate(tr, dt)
    if tr.abstracted:
        proof.notes.append("reductions are opaque values: " + ", ".join(sorted(set(tr.abstracted))))
    base = [guard] if guard is not True else []
    floats = [tr(t) for t in terms.values() if t.dtype.is_float]
    finite = [z3.Not(z3.Or(z3.fpIsInf(v), z3.fpIsNaN(v))) for v in floats]
    attempts = [("bit for bit, every input", base, z3.Not(a == b), timeout)]
    if rule.cls != "exact":
        where = "on finite inputs" if rule.cls == "approx" else "on its domain"
        assume = base + finite + domain_constraints(rule.domain, terms, tr)
        attempts = [("bit for bit, every input", base, z3.Not(a == b), timeout / 4)]
        attempts.append((f"bit for bit {where}", assume, z3.Not(a == b), timeout / 4))
        if dt.is_float and not tr.functions:
            attempts.append((f"within tolerance {where}", assume, z3.Not(_within(rule, dt, a, b, floats)), timeout / 2))
        elif dt.is_float:
            proof.notes.append("no error bound: it would depend on the values of " + ", ".join(sorted(tr.functions)))
    same_terms = _same_after_definitions(z3, a, b, axioms)
    if same_terms is not None and not base:
        proof.verdict, proof.claim, proof.axioms = "proved", "bit for bit, every input (the same term)", same_terms
        return proof
    by_parts = _prove_by_congruence(z3, a, b, base, axioms, timeout, [app for _, app in tr.applications])
    if by_parts is not None:
        proof.verdict, proof.claim, proof.axioms = "proved", "bit for bit, every input (part by part)", by_parts
        return proof
    last = None
    for claim, assume, goal, seconds in attempts:
        result, model, used = _check(z3, assume + [goal], axioms, seconds, [app for _, app in tr.applications])
        if result == "unsat":
            proof.verdict, proof.claim, proof.axioms = "proved", claim, used
            return proof
        last = (claim, result, model, assume)
    claim, result, model, assume = last
    proof.claim = claim
    if result == "sat" and rule.cls == "exact" and finite:
        # prefer a counterexample at an infinity or NaN when there is one: the most telling kind
        special, better, _ = _check(z3, assume + [goal, z3.Not(z3.And(*finite))], axioms, timeout / 2, [app for _, app in tr.applications])
        if special == "sat":
            model = better
    if result == "unknown":
        proof.reason = f"solver gave up (timeout {timeout:g} s in all)" + ("; tested only" if rule.cls != "exact" else "")
        return proof
    from fusec.rewrite.smt_check import confirm

    return confirm(proof, rule, dt, model, tr, terms, lhs, rhs)


def _within(rule: Rule, dt: DType, a, b, inputs):
    """|a - b| <= atol + rtol * scale, in a wider format; an original that overflowed is not compared."""
    import z3

    from fusec.tolerance import ATOL, RTOL

    if not (z3.is_fp(a) and z3.is_fp(b)):  # a bool or integer result (a comparison of floats): no tolerance
        return a == b
    wide = z3.Float64() if dt == F32 else z3.FPSort(15, 113)
    rtol = rule.tolerance.rtol if rule.tolerance.rtol is not None else RTOL[dt.name]
    atol = rule.tolerance.atol if rule.tolerance.atol is not None else ATOL[dt.name]
    rne = z3.RNE()
    wa, wb = z3.fpToFP(rne, a, wide), z3.fpToFP(rne, b, wide)
    scale = z3.fpAbs(wa)
    if rule.tolerance.scale == "operands":
        for v in inputs:
            w = z3.fpAbs(z3.fpToFP(rne, v, wide))
            scale = z3.If(z3.fpGT(w, scale), w, scale)
    bound = z3.fpAdd(rne, z3.FPVal(atol, wide), z3.fpMul(rne, z3.FPVal(rtol, wide), scale))
    close = z3.fpLEQ(z3.fpAbs(z3.fpSub(rne, wa, wb)), bound)
    both_nan = z3.And(z3.fpIsNaN(a), z3.fpIsNaN(b))
    return z3.Or(z3.fpIsInf(a), both_nan, a == b, z3.And(z3.Not(z3.fpIsNaN(b)), close))


def _same_after_definitions(z3, a, b, axioms) -> list[str] | None:
    """A fast path: the two sides are one term once unconditional axioms (definitions) are applied."""
    if a.eq(b):
        return []
    used = []
    for _ in range(3):  # a definition may bring in an op another defines (silu is x * sigmoid(x))
        changed = False
        for name, _, definition in axioms:
            if definition is None:
                continue
            a2, b2 = (z3.substitute(t, definition) for t in (a, b))
            if not (a2.eq(a) and b2.eq(b)):
                used.append(name)
                changed = True
            a, b = a2, b2
            if z3.simplify(a).eq(z3.simplify(b)):
                return sorted(set(used))
        if not changed:
            break
    return None


def _differences(a, b, out: list) -> bool:
    """The outermost pairs of subterms where a and b differ, if they differ only below a shared
    root: then a == b follows from each pair being equal (congruence)."""
    if a.eq(b):
        return True
    if not (z3_module().is_app(a) and a.decl().eq(b.decl()) and a.num_args() == b.num_args() and a.num_args()):
        return False
    for x, y in zip(a.children(), b.children()):
        if not x.eq(y) and not _differences(x, y, out):
            out.append((x, y))
    return True


def _prove_by_congruence(z3, a, b, base, axioms, timeout, apps) -> list[str] | None:
    """Prove a == b by proving each differing pair of subterms equal: rmsnorm over one element is
    x * rsqrt(m + e) * g on both sides once m == x * x is shown, without bit-blasting the sqrt."""
    pairs: list = []
    if not _differences(a, b, pairs) or not pairs:
        return None
    used: set[str] = set()
    deadline = time.perf_counter() + timeout / 2
    for x, y in pairs:
        left = deadline - time.perf_counter()
        if left <= 0:
            return None
        result, _, needed = _check(z3, base + [z3.Not(x == y)], axioms, left, apps)
        if result != "unsat":
            return None
        used.update(needed)
    return sorted(used)


def _ackermann(z3, apps) -> tuple[list, list]:
    """Uninterpreted applications as fresh constants, with f(a) == f(b) whenever a == b: the
    formula becomes pure bit-vector and float arithmetic, which bit-blasting decides quickly."""
    seen, subst, facts = {}, [], []
    for app in apps:
        if app.get_id() in seen:
            continue
        fresh = z3.FreshConst(app.sort(), str(app.decl()))
        for other, other_fresh in seen.values():
            if other.decl().eq(app.decl()):
                same_args = z3.And(*[a == b for a, b in zip(other.children(), app.children())])
                facts.append(z3.Implies(same_args, other_fresh == fresh))
        seen[app.get_id()] = (app, fresh)
        subst.append((app, fresh))
    return subst, facts


def _solve(z3, facts, timeout):
    s = z3.Then("simplify", "fpa2bv", "propagate-values", "simplify", "solve-eqs", "bit-blast", "sat").solver()
    s.set("timeout", max(1, int(timeout * 1000)))
    s.add(*facts)
    r = s.check()
    return ("unsat" if r == z3.unsat else "sat" if r == z3.sat else "unknown"), (s.model() if r == z3.sat else None)


def _check(z3, facts, axioms, timeout, apps=()):
    """unsat/sat/unknown, a model, and the axioms a proof needs (each left out in turn: still unsat?)."""
    subst, consistency = _ackermann(z3, list(apps))

    def run(names, seconds):
        chosen = [inst for name, inst, _ in axioms if name in names]
        formula = [z3.substitute(f, *subst) if subst else f for f in facts + chosen]
        return _solve(z3, formula + consistency, seconds)

    names = sorted({name for name, _, _ in axioms})
    deadline = time.perf_counter() + timeout
    result, model = run(set(names), timeout)
    if result != "unsat":
        return result, None if model is None else _Model(model, subst), []
    needed = list(names)
    for name in names:
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        if run(set(needed) - {name}, left)[0] == "unsat":
            needed.remove(name)
    return "unsat", None, needed


class _Model:
    """A model of the Ackermannized formula, read back in terms of the original applications."""

    def __init__(self, model, subst):
        self.model, self.subst = model, subst

    def eval(self, e, model_completion=True):
        import z3

        if self.subst:
            e = z3.substitute(e, *self.subst)
        return self.model.eval(e, model_completion=model_completion)


def prove_rules(rules, dtypes=DEFAULT_DTYPES, timeout: float = DEFAULT_TIMEOUT, use_cache: bool = True):
    """(rule, [Proof]) for each rule, using and updating the proof cache."""
    cache = ProofCache.open() if use_cache else None
    try:
        for r in rules:
            yield r, prove_rule(r, dtypes, timeout, cache)
    finally:
        if cache:
            cache.save()


# ------------------------------------------------------------------------------------------ the cache


@functools.lru_cache(maxsize=1)
def _prover_source() -> str:
    """A hash of the code a verdict depends on: the prover (fusec/rewrite), the op table and its NumPy
    references (fusec/ir). A fix there must not be answered from the cache (a stale counterexample of
    div_self at bool survived the fix of the bool domain until this was part of the key)."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted([*(root / "rewrite").glob("*.py"), *(root / "ir").glob("*.py")]):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


class ProofCache:
    """Proof results by the rule's text, the dtype, the axioms and the solver version, in one JSON file."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, dict] = {}
        self.dirty = False

    @classmethod
    def open(cls, path: Path | None = None) -> ProofCache:
        if path is None:
            from fusec.runtime.cache import default_cache_dir

            path = default_cache_dir() / "proofs.json"
        cache = cls(Path(path))
        try:
            data = json.loads(cache.path.read_text())
            if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
                raise ValueError("not a proof cache")
            cache.entries = data["entries"]
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as err:
            warnings.warn(f"ignoring the corrupt proof cache {cache.path}: {err}", stacklevel=2)
        return cache

    def key(self, rule: Rule, dtype: str) -> str:
        import z3

        from fusec.rewrite.smt_axioms import AXIOMS

        text = [PROVER_VERSION, _prover_source(), z3.get_version_string(), dtype, rule.name, rule.cls, list(rule.text),
                [list(d) for d in rule.domain], str(rule.tolerance), rule.tolerance.scale, [a.text for a in AXIOMS]]
        return hashlib.sha256(json.dumps(text).encode()).hexdigest()

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __getitem__(self, key: str) -> Proof:
        p = Proof(**self.entries[key])
        p.cached = True
        return p

    def __setitem__(self, key: str, proof: Proof) -> None:
        self.entries[key] = {k: v for k, v in proof.to_json().items() if k != "cached"}
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".proofs-", dir=self.path.parent)
            os.fchmod(fd, new_file_mode())  # plain verdicts (ProofCache.open takes any path): as open() makes it
            with os.fdopen(fd, "w") as f:
                json.dump({"version": PROVER_VERSION, "entries": self.entries}, f)
            os.replace(tmp, self.path)
        except OSError as err:
            warnings.warn(f"could not write the proof cache {self.path}: {err}", stacklevel=2)
