"""A solver's counterexample, confirmed (or not) by evaluating both sides with NumPy.

The solver's model assigns every input a value, and every uninterpreted function (exp, tanh, ...)
and opaque reduction whatever values suit it. So before a counterexample is reported, both sides
are evaluated at the model's inputs with the op table's NumPy references: only if they really
differ (in the rule's class's sense) is it a counterexample. Otherwise the verdict is unknown, and
the reason names what the solver had to assume.
"""

from __future__ import annotations

import math

import numpy as np

from fusec.ir.dtypes import DType
from fusec.rewrite.rule import Rule
from fusec.rewrite.smt_guard import model_value, numpy_value
from fusec.rewrite.smt_terms import Sym
from fusec.tolerance import ATOL, RTOL, ulp_distance


def _fmt(v) -> str:
    v = np.asarray(v).item()
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    return repr(v)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.kind == "f" and np.isnan(a) and np.isnan(b):
        return True
    return a.tobytes() == b.tobytes()


def _acceptable(rule: Rule, dt: DType, before: np.ndarray, after: np.ndarray, inputs: dict) -> bool:
    """Does this element keep the rule's promise (the verifier's comparison, at one element)?"""
    if _same(before, after):
        return True
    if rule.cls == "exact" or not dt.is_float:
        return False
    if np.isinf(before) or any(isinstance(v, np.floating) and not np.isfinite(v) for v in inputs.values()):
        return True  # an original overflow, or an input outside the finite range the rule speaks for
    if np.isnan(before) != np.isnan(after):
        return False
    rtol = rule.tolerance.rtol if rule.tolerance.rtol is not None else RTOL[dt.name]
    atol = rule.tolerance.atol if rule.tolerance.atol is not None else ATOL[dt.name]
    scale = abs(float(before))
    if rule.tolerance.scale == "operands":
        scale = max([scale] + [abs(float(v)) for v in inputs.values() if isinstance(v, np.floating)])
    return abs(float(before) - float(after)) <= atol + rtol * scale


def confirm(proof, rule: Rule, dt: DType, model, tr, terms: dict, lhs, rhs):
    env = {}
    for name, t in terms.items():
        env[name] = model_value(model, tr(t), t.dtype)
    for t in list(tr.memo):
        if t.op == "lit" and isinstance(t.attr("value"), Sym):
            v = t.attr("value")
            env[f"{v.name}:{t.dtype.name}"] = model_value(model, tr(t), t.dtype)
    shown = {("$" + n if n in rule.const_vars else n): _fmt(v) for n, v in env.items()}
    if tr.abstracted:
        proof.reason = (f"the solver's counterexample ({', '.join(f'{k} = {v}' for k, v in shown.items())}) "
                        "treats reductions as free values; not confirmed")
        return proof
    before, after = numpy_value(lhs, env), numpy_value(rhs, env)
    inputs = {n: env[n] for n in terms}
    if _acceptable(rule, dt, before, after, inputs):
        funcs = ", ".join(sorted(tr.functions)) or "none"
        proof.reason = (f"the solver's counterexample ({', '.join(f'{k} = {v}' for k, v in shown.items())}) needs "
                        f"uninterpreted functions ({funcs}) to take values NumPy's do not; not confirmed")
        if rule.cls != "exact":
            proof.reason += "; tested only"
        return proof
    ulps = None
    if dt.is_float and np.isfinite(before) and np.isfinite(after):
        ulps = int(ulp_distance(np.asarray(after), np.asarray(before)))
    elif not dt.is_float and dt.is_int:
        ulps = abs(int(before) - int(after))
    proof.verdict = "counterexample"
    proof.reason = "confirmed with NumPy"
    proof.counterexample = {"inputs": shown, "before": _fmt(before), "after": _fmt(after), "ulps": ulps}
    return proof
