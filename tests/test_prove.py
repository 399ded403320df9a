"""`fusec rules prove`: rewrite rules proved over IEEE-754 with Z3 (skipped without the prove extra)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from conftest import ROOT

z3 = pytest.importorskip("z3")

import fusec  # noqa: E402
from fusec.interp import interpret  # noqa: E402
from fusec.rewrite import parse_rules, rule_named, standard_rules  # noqa: E402
from fusec.rewrite.prove import ProofCache, prove_rule, prove_rules  # noqa: E402
from fusec.rewrite.smt_axioms import AXIOMS  # noqa: E402
from fusec.tolerance import compare  # noqa: E402


def verdicts(rule, dtypes=("f32", "f64")):
    return {p.dtype: p for p in prove_rule(rule, dtypes)}


def one(text):
    (rule,) = parse_rules(text)
    return rule


@pytest.mark.parametrize(
    "name",
    ["mul_one", "add_neg_zero", "sub_zero", "neg_neg", "sub_neg", "mul_neg_neg", "abs_square", "relu", "where_same",
     "cast_f64_f32", "sub_const", "rsqrt", "maximum_self"],
)
def test_library_exact_rules_are_proved(name):
    for dtype, p in verdicts(rule_named(name)).items():
        assert p.verdict == "proved", f"{name} at {dtype}: {p.line()}"
        assert p.seconds < 10


def test_a_definition_axiom_is_named_in_the_proof():
    proofs = verdicts(rule_named("sigmoid"))
    assert all(p.verdict == "proved" and p.axioms == ["sigmoid_def"] for p in proofs.values())
    p = verdicts(rule_named("pow_zero"), ("f32",))["f32"]
    assert p.verdict == "proved" and p.axioms == ["pow_zero"]


def test_unit_axis_rule_uses_properties_of_exp_and_log():
    p = verdicts(rule_named("log_softmax_unit_axis"), ("f32",))["f32"]
    assert p.verdict == "proved", p.line()
    assert {"exp_zero", "log_one"} <= set(p.axioms)


def test_a_composite_is_expanded_from_the_op_table():
    rule = one("""rule softmax_spelled exact e / sum(e, axis=a, keepdims=true) -> softmax(x, axis=a)
                  with e = exp(x - max(x, axis=a, keepdims=true))""")
    p = verdicts(rule, ("f64",))["f64"]
    assert p.verdict == "proved" and "reductions are opaque values" in " ".join(p.notes)


def test_x_times_zero_as_exact_gets_a_counterexample_with_nan_or_inf():
    rule = one("rule mul_zero_everywhere exact x * 0 -> 0")
    for _dtype, p in verdicts(rule).items():
        assert p.verdict == "counterexample", p.line()
        assert p.counterexample["inputs"]["x"] in ("nan", "inf", "-inf"), p.counterexample
        assert p.counterexample["before"] == "nan" and p.counterexample["after"] == "0.0"


def test_add_zero_fails_at_negative_zero_and_add_negative_zero_holds():
    p = verdicts(one("rule add_zero_everywhere exact x + 0 -> x"), ("f32",))["f32"]
    assert p.verdict == "counterexample"
    assert p.counterexample == {"inputs": {"x": "-0.0"}, "before": "0.0", "after": "-0.0", "ulps": 0}
    assert verdicts(one("rule add_neg_zero exact x + -0.0 -> x"), ("f32",))["f32"].verdict == "proved"


def test_a_bool_domain_keeps_the_values_its_interval_holds():
    # `fusec rules prove` over the library reported div_self (x / x -> 1, assuming x in [1e-30, 1e30])
    # false at bool x = False, which the domain excludes: the bool domain was ignored
    div_self = one("rule div_self unsafe x / x -> 1 assuming x in [1e-30, 1e30]")
    assert verdicts(div_self, ("bool",))["bool"].verdict == "proved"
    anywhere = one("rule div_self_anywhere unsafe x / x -> 1 assuming x in [0, 1]")
    p = verdicts(anywhere, ("bool",))["bool"]
    assert p.verdict == "counterexample" and p.counterexample["inputs"]["x"] == "False"


def test_integers_wrap_as_numpy_does():
    assert all(p.verdict == "proved" for p in prove_rule(rule_named("add_const_chain_int"), ("i32", "i64")))
    p = prove_rule(one("rule relu_abs_int exact relu(abs(x)) -> abs(x)"), ("i32",))[0]
    assert p.verdict == "counterexample" and p.counterexample["inputs"]["x"] == str(np.iinfo(np.int32).min)
    # a float-only rule has no integer instance at all
    assert prove_rule(rule_named("div_neg_neg"), ("i32", "bool")) == []


def test_an_uninterpreted_function_does_not_give_false_counterexamples():
    # tanh(-x) -> -tanh(x) needs the tanh_odd axiom; exp(x) -> exp(x) * 1 needs nothing
    p = verdicts(one("rule tanh_odd_rule exact tanh(-x) -> -tanh(x)"), ("f32",))["f32"]
    assert p.verdict == "proved" and p.axioms == ["tanh_odd"]
    p = verdicts(one("rule erf_odd exact erf(-x) -> -erf(x)"), ("f32",))["f32"]
    assert p.verdict == "unknown" and "not confirmed" in p.reason
    assert verdicts(one("rule exp_one exact exp(x) * 1 -> exp(x)"), ("f64",))["f64"].verdict == "proved"


@pytest.mark.parametrize("name", ["reshape_reshape", "reshape_noop", "squeeze_expand_dims", "slice_to_end"])
def test_layout_rules_are_proved_at_every_rank_and_shape(name):
    for p in prove_rule(rule_named(name), ("f32", "f64", "i32", "bool")):
        assert p.verdict == "proved" and p.claim == "bit for bit, every input of every rank and shape", p.line()


def test_transposes_are_proved_rank_by_rank_and_say_so():
    for name in ("transpose_transpose", "transpose_identity"):
        (p,) = prove_rule(rule_named(name), ("f32",))
        assert p.verdict == "bounded" and "rank <= 4" in p.claim, p.line()
        assert "not beyond" in p.reason


@pytest.mark.parametrize(
    "text",
    [
        "reshape(x, shape=s) -> x",
        "reshape(reshape(x, shape=s), shape=t) -> reshape(x, shape=s)",
        "slice(x, axis=a, start=1) -> x",
        "slice(x, axis=a, stop=e) -> x\n  if e >= dim(x, a) - 1",
        "transpose(x, perm=p) -> x",
        "transpose(transpose(x, perm=p), perm=q) -> transpose(x, perm=compose(q, p, rank(x)))",
        "squeeze(expand_dims(x, axis=a), axis=b) -> x",
    ],
)
def test_a_wrong_layout_rule_is_not_proved(text):
    (p,) = prove_rule(one(f"rule wrong_layout exact {text}"), ("f32",))
    assert p.verdict == "unknown" and p.reason, p.line()


def test_a_layout_rule_that_holds_is_proved_even_when_unexpected():
    # squeeze at a normalises against rank r, expand_dims against (r - 1) + 1: the same axis
    (p,) = prove_rule(one("rule squeeze_then_expand exact expand_dims(squeeze(x, axis=a), axis=a) -> x"), ("f64",))
    assert p.verdict == "proved", p.line()


def test_rmsnorm_over_one_element_is_proved_part_by_part():
    for p in prove_rule(rule_named("rmsnorm_unit_axis"), ("f32", "f64")):
        assert p.verdict == "proved" and "part by part" in p.claim and p.seconds < 10, p.line()


def test_approx_rule_proved_within_tolerance_or_tested_only():
    p = verdicts(rule_named("add_zero"), ("f32",))["f32"]
    assert p.verdict == "proved" and p.claim == "within tolerance on finite inputs"
    p = verdicts(rule_named("pow_two"), ("f32",))["f32"]
    assert p.verdict == "unknown" and "tested only" in p.reason


def test_results_are_cached_and_a_corrupt_cache_is_ignored(tmp_path):
    path = tmp_path / "proofs.json"
    rule = rule_named("div_neg_neg")
    cache = ProofCache.open(path)
    first = prove_rule(rule, ("f32",), cache=cache)
    cache.save()
    start = time.perf_counter()
    again = prove_rule(rule, ("f32",), cache=ProofCache.open(path))
    assert time.perf_counter() - start < 0.5
    assert again[0].cached and again[0].verdict == first[0].verdict == "proved"
    path.write_text("{not json")
    with pytest.warns(UserWarning, match="corrupt proof cache"):
        cache = ProofCache.open(path)
    assert not cache.entries


def test_a_change_to_the_prover_is_not_answered_from_the_cache(tmp_path, monkeypatch):
    # the key holds a hash of fusec/rewrite and fusec/ir: a stale counterexample of div_self at bool
    # survived the fix of the bool domain while the key held only a hand-bumped version number
    from fusec.rewrite import prove

    path = tmp_path / "proofs.json"
    rule = rule_named("div_neg_neg")
    cache = ProofCache.open(path)
    prove_rule(rule, ("f32",), cache=cache)
    cache.save()
    assert prove_rule(rule, ("f32",), cache=ProofCache.open(path))[0].cached
    monkeypatch.setattr(prove, "_prover_source", lambda: "the prover after a fix")
    assert not prove_rule(rule, ("f32",), cache=ProofCache.open(path))[0].cached


def test_cli_json_reports_verdict_time_and_counterexample(tmp_path):
    rules = tmp_path / "wrong.rules"
    rules.write_text("rule mul_zero_everywhere exact x * 0 -> 0\nrule mul_one exact x * 1 -> x\n")
    env_cache = {"FUSEC_CACHE_DIR": str(tmp_path / "cache")}
    import os

    result = subprocess.run(
        [sys.executable, "-m", "fusec", "rules", "prove", "--rules", str(rules), "--dtype", "f32,f64", "--json"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env_cache},
    )
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["counterexamples"] == 1 and data["proved"] == 1
    wrong, right = data["results"]
    assert [p["dtype"] for p in wrong["proofs"]] == ["f32", "f64"]
    for p in wrong["proofs"]:
        assert p["verdict"] == "counterexample" and p["seconds"] >= 0 and p["counterexample"]["after"] == "0.0"
    assert all(p["verdict"] == "proved" and p["counterexample"] is None for p in right["proofs"])


# ------------------------------------------------------------------------------------------ axioms


def _specials(dt):
    fi = np.finfo(dt)
    v = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 20.0, -20.0, 100.0, 1e-3, float(fi.tiny), float(fi.smallest_subnormal),
         -float(fi.smallest_subnormal), float(fi.max), -float(fi.max), np.inf, -np.inf, np.nan]
    return np.array(v, dtype=dt)


# The C backend's f32 gelu is x * sigmoid(2z), one exp instead of a tanh (docs/c_backend.md): there the
# definition holds within the f32 tolerance, not bit for bit. The rewrite gelu_tanh is exact for the
# reference semantics (NumPy) that proofs are about; a compiled kernel may differ by a few ulps.
C_WITHIN_TOLERANCE = {("gelu_tanh_def", "f32")}

_CLASS = {"zero": lambda a: a == 0, "one": lambda a: a == 1, "nan": np.isnan}


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    both_nan = np.isnan(a) & np.isnan(b)
    return both_nan | (a.view(np.uint8).reshape(a.shape + (-1,)) == b.view(np.uint8).reshape(b.shape + (-1,))).all(-1)


@pytest.mark.parametrize("axiom", AXIOMS, ids=[a.name for a in AXIOMS])
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_axiom_holds_in_numpy_and_in_c(axiom, dtype):
    npdt = np.float32 if dtype == "f32" else np.float64
    s = _specials(npdt)
    xs, ys = np.meshgrid(s, s)
    x, y = xs.ravel(), ys.ravel()
    keep = np.ones(x.shape, bool)
    for var, cls in axiom.when:
        keep &= _CLASS[cls](x if var == "x" else y)
    x, y = x[keep], y[keep]
    uses_y = "y" in axiom.lhs
    params = f"x: {dtype}[N]" + (f", y: {dtype}[N]" if uses_y else "")
    literal = axiom.rhs in ("0", "1")
    body = f"a = {axiom.lhs}\n b = {'x' if literal else axiom.rhs}"
    graph = fusec.parse(f"graph ax<N={len(x)}>({params}) {{ {body}\n return a, b }}")
    args = (x, y) if uses_y else (x,)
    with np.errstate(all="ignore"):
        ref_a, ref_b = interpret(graph, *args)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c_a, c_b = fusec.compile(graph, backend="c", rewrite=None)(*args)
    if literal:
        ref_b = c_b = np.full_like(ref_a, float(axiom.rhs))
    assert _same_bits(ref_a, ref_b).all(), f"NumPy breaks {axiom.name} at {x[~_same_bits(ref_a, ref_b)]}"
    if (axiom.name, dtype) in C_WITHIN_TOLERANCE:
        assert compare(c_a, c_b) is None, f"C breaks {axiom.name} beyond the tolerance"
        assert not _same_bits(c_a, c_b).all(), f"C now keeps {axiom.name} bit for bit: drop it from C_WITHIN_TOLERANCE"
    else:
        assert _same_bits(c_a, c_b).all(), f"C breaks {axiom.name} at {x[~_same_bits(c_a, c_b)]}"


# ------------------------------------------------------------------------------------------ the whole library


def test_every_exact_float_rule_is_proved_or_has_a_reason():
    """The issue's acceptance, as written: every exact rule over floats is proved for f32 and f64 or
    reported with a reason; at least 90% are proved, each within 10 s. A rule counts as proved only
    if every float dtype it has is proved (not bounded) within 10 s."""
    exact = [r for r in standard_rules() if r.cls == "exact"]
    proved, total = [], 0
    for rule, proofs in prove_rules(exact, ("f32", "f64"), timeout=10.0, use_cache=False):
        if not proofs:
            continue  # no float instance (an integer-only rule)
        total += 1
        for p in proofs:
            assert p.verdict != "counterexample", p.line()
            assert p.verdict == "proved" or p.reason, p.line()
        if all(p.verdict == "proved" and p.seconds < 10 for p in proofs):
            proved.append(rule.name)
    assert len(proved) >= 0.9 * total, f"{len(proved)} of {total} exact float rules proved within 10 s"
