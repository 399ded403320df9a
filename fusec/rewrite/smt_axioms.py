"""Named axioms: the properties of uninterpreted ops that proofs may use.

exp, log, tanh, erf, pow, sigmoid and gelu are uninterpreted functions in a proof (smt_terms.py):
Z3 knows nothing of them but that equal arguments give equal results. A rule that needs more, that
exp(0) is 1 or that sigmoid(x) is 1 / (1 + exp(-x)) as the op table defines it, gets it from an
axiom below. Each axiom is an equation in rule syntax that holds for every x of a class (all, zero,
one or nan); tests/test_prove.py checks every axiom, bit for bit, against NumPy (the interpreter)
and the C backend (fusec_math.h) on zeros, infinities, NaN, denormals and ordinary numbers. A proof
reports the axioms it used (the solver's unsat core), so a reader knows what it rests on.

Axioms are instantiated, not quantified: for each application of an uninterpreted op in a formula,
an axiom whose left side matches it adds `condition(x) => lhs == rhs` for that application.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import z3

from fusec.rewrite.parse import parse_rules
from fusec.rewrite.rule import AttrLit, PNamed, POp, PVar, Rule
from fusec.rewrite.smt_terms import Term, TermBuilder, Z3Translator, same, value_of


@dataclass(frozen=True)
class Axiom:
    name: str
    lhs: str  # in rule (and .fg expression) syntax, over x (and y)
    rhs: str
    when: tuple[tuple[str, str], ...] = ()  # variable -> class: zero (+-0), one (1.0) or nan; others: any value
    doc: str = ""

    @property
    def text(self) -> str:
        cond = "".join(f" when {v} is {c}" for v, c in self.when)
        return f"{self.lhs} = {self.rhs}{cond}"


AXIOMS: tuple[Axiom, ...] = (
    Axiom("exp_zero", "exp(x)", "1", (("x", "zero"),), "exp(+-0) is 1 (C99 F.9.3.1)"),
    Axiom("exp_nan", "exp(x)", "x", (("x", "nan"),), "exp of NaN is NaN"),
    Axiom("log_one", "log(x)", "0", (("x", "one"),), "log(1) is +0 (C99 F.9.3.7)"),
    Axiom("log_nan", "log(x)", "x", (("x", "nan"),), "log of NaN is NaN"),
    Axiom("pow_zero", "x ** y", "1", (("y", "zero"),), "pow(x, +-0) is 1 for every x, even NaN (C99 F.9.4.4)"),
    Axiom("pow_one", "x ** y", "x", (("y", "one"),), "pow(x, 1) is x"),
    Axiom("tanh_odd", "tanh(-x)", "-tanh(x)", (), "tanh is odd"),
    Axiom("sigmoid_def", "sigmoid(x)", "1 / (1 + exp(-x))", (), "the op table's definition of sigmoid"),
    Axiom("silu_def", "silu(x)", "x * sigmoid(x)", (), "the op table's definition of silu"),
    Axiom(
        "gelu_tanh_def",
        'gelu(x, approximate="tanh")',
        "0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))",
        (),
        "the op table's definition of the tanh GELU",
    ),
    Axiom("gelu_erf_def", "gelu(x)", "0.5 * x * (1 + erf(x * 0.7071067811865476))", (), "the op table's definition of GELU"),
)


@lru_cache(maxsize=1)
def axiom_rules() -> tuple[tuple[Axiom, Rule], ...]:
    text = "\n".join(f"rule {a.name} exact {a.lhs} -> {a.rhs}" for a in AXIOMS)
    return tuple(zip(AXIOMS, parse_rules(text, "<axioms>")))


def _class(cls: str, v: z3.ExprRef, term: Term) -> z3.BoolRef:
    if cls == "zero":
        return z3.fpIsZero(v)
    if cls == "nan":
        return z3.fpIsNaN(v)
    if cls == "one":
        return v == value_of(1.0, term.dtype)
    raise AssertionError(cls)  # pragma: no cover


def _match(p, t: Term, out: dict[str, Term]) -> bool:
    """Structural match of an axiom's left side against a term."""
    while isinstance(p, PNamed):
        p = p.pattern
    if isinstance(p, PVar):
        if p.name in out:
            return out[p.name] == t
        out[p.name] = t
        return True
    if isinstance(p, POp):
        if p.op != t.op or len(p.args) != len(t.args):
            return False
        attrs = dict(t.attrs)
        if any(isinstance(v, AttrLit) and attrs.get(k) != v.value for k, v in p.attrs):
            return False
        return all(_match(a, b, out) for a, b in zip(p.args, t.args))
    return False


def instantiate(tr: Z3Translator, dtype, rounds: int = 3) -> list[tuple[str, z3.BoolRef, tuple | None]]:
    """Axiom instances for every uninterpreted application in `tr` (and those the instances add):
    (name, instance, (application, value) when the axiom holds unconditionally, else None)."""
    out: list[tuple[str, z3.BoolRef, tuple | None]] = []
    done = 0
    for _ in range(rounds):
        todo = tr.applications[done:]
        done = len(tr.applications)
        if not todo:
            break
        for term, app in todo:
            for axiom, rule in axiom_rules():
                bound: dict[str, Term] = {}
                if not _match(rule.pattern, term, bound):
                    continue
                b = TermBuilder(term.dtype, {}, {})
                b.bound = dict(bound)
                rhs = b.replacement(rule.replacement)
                rhs = b.literal(rhs, term.dtype)
                conds = [_class(c, tr(bound[v]), bound[v]) for v, c in axiom.when]
                definition = None if conds else (app, tr(rhs))
                out.append((axiom.name, z3.Implies(z3.And(*conds), same(app, tr(rhs))), definition))
    return out
