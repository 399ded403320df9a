"""The verifier: every standard rule keeps its class's promise, and a wrong rule is caught."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fusec.rewrite import parse_rules, standard_rules, verify_rule
from fusec.rewrite.cases import float_pool
from fusec.rewrite.verify import DEFAULT_CASES

RULES = standard_rules()


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_every_standard_rule_keeps_its_promise(rule):
    result = verify_rule(rule, cases=DEFAULT_CASES)
    assert result.passed, str(result)  # the message carries the counterexample
    assert result.cases >= 200 and result.elements >= result.cases
    if rule.cls == "unsafe":  # and it is unsafe for a reason: it breaks somewhere outside its domain
        assert result.witness is not None, f"{rule.name} found no input that breaks it: is it really unsafe?"


def test_the_verifier_catches_x_plus_zero_claimed_exact_and_prints_the_counterexample():
    (wrong,) = parse_rules('rule wrong_add_zero exact "claims -0 + 0 is -0" x + 0 -> x')
    result = verify_rule(wrong)
    assert not result.passed
    ce = result.counterexample
    assert ce is not None and ce.dtype in ("f32", "f64")
    x = float(ce.values["x"])
    assert x == 0.0 and math.copysign(1.0, x) == -1.0  # the only input where it differs: -0
    text = str(result)
    print(text)
    assert text.startswith("FAIL wrong_add_zero [exact]")
    assert "x = -0.0" in text and "pattern gives     0.0" in text and "replacement gives -0.0" in text
    assert "not bit-identical" in text
    assert result.to_json()["counterexample"]["values"]["x"] == "-0.0"


def test_the_verifier_catches_a_plainly_wrong_approx_rule():
    (wrong,) = parse_rules("rule wrong approx x * 2 -> x + 1")
    result = verify_rule(wrong)
    assert not result.passed and "beyond the tolerance" in result.counterexample.reason


def test_an_unsafe_identity_claimed_exact_fails_on_special_values():
    (wrong,) = parse_rules("rule wrong exact exp(log(x)) -> x")
    result = verify_rule(wrong)
    assert not result.passed
    print(result)


def test_exp_mul_exp_really_is_unsafe_outside_its_domain():
    (as_approx,) = parse_rules("rule exp_mul_exp_everywhere approx exp(a) * exp(b) -> exp(a + b)")
    result = verify_rule(as_approx)
    assert not result.passed  # e.g. exp(100) * exp(-100) overflows to inf * 0 in f32


def test_a_guard_that_is_never_true_is_a_failure_not_a_pass():
    (never,) = parse_rules("rule never exact x * 1 -> x if rank(x) > 10")
    result = verify_rule(never, cases=20)
    assert not result.passed and "no applicable case" in result.error


def test_cases_are_deterministic_for_a_seed():
    rule = next(r for r in RULES if r.name == "div_const")
    a, b = verify_rule(rule, cases=30, seed=5), verify_rule(rule, cases=30, seed=5)
    assert (a.cases, a.elements, a.not_applicable) == (b.cases, b.elements, b.not_applicable)


def test_inputs_include_zeros_infinities_nan_and_denormals():
    pool = float_pool(np.dtype(np.float32), finite=False)
    assert np.any((pool == 0) & np.signbit(pool)) and np.any((pool == 0) & ~np.signbit(pool))
    assert np.isnan(pool).any() and np.isposinf(pool).any() and np.isneginf(pool).any()
    tiny = np.finfo(np.float32).tiny
    assert np.any((pool != 0) & (np.abs(pool) < tiny))  # denormals
    finite = float_pool(np.dtype(np.float64), finite=True)
    assert np.isfinite(finite).all()


def test_results_report_cases_dtypes_and_json():
    rule = next(r for r in RULES if r.name == "mul_one")
    result = verify_rule(rule, cases=25)
    data = result.to_json()
    assert data["passed"] and data["cases"] == 25 and data["class"] == "exact"
    assert set(data["dtypes"]) == {"f32", "f64", "i32", "i64"}
