"""The rule language: parsing, the standard library's shape, and located errors for bad rule files."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusec.errors import FusecError, FusecSyntaxError
from fusec.rewrite import CLASSES, parse_rules, standard_rules
from fusec.rewrite.rule import AttrLit, AttrVar, PConst, PLit, PNamed, POp, PVar, RLit, ROp, RVar


def test_standard_library_has_at_least_40_rules_each_with_a_class():
    rules = standard_rules()
    assert len(rules) >= 40
    assert {r.cls for r in rules} == set(CLASSES)
    assert len({r.name for r in rules}) == len(rules)
    for r in rules:
        assert r.cls in CLASSES and r.doc and r.pattern_text and r.replacement_text


def test_standard_library_covers_the_rule_families_the_issue_asks_for():
    names = {r.name for r in standard_rules()}
    for required in [
        "add_zero", "mul_one", "neg_neg", "transpose_transpose", "reshape_reshape", "transpose_identity",
        "pow_two", "pow_half", "pow_neg_one", "div_sqrt", "exp_mul_exp", "mul_const_chain", "maximum_self",
        "sqrt_square", "sigmoid", "rsqrt", "gelu_tanh", "softmax_unit_axis",
    ]:
        assert required in names, required
    assert next(r for r in standard_rules() if r.name == "exp_mul_exp").cls == "unsafe"


def test_a_rule_parses_into_pattern_replacement_guard_and_class():
    (r,) = parse_rules('rule chain approx(rtol=1e-3, scale=operands) "doc" (x * $a) * $b -> x * ($a * $b) if is_float(x)')
    assert r.name == "chain" and r.cls == "approx" and r.doc == "doc"
    assert r.tolerance.rtol == 1e-3 and r.tolerance.atol is None and r.tolerance.scale == "operands"
    assert r.pattern == POp("mul", (POp("mul", (PVar("x"), PConst("$a")), ()), PConst("$b")), ())
    assert r.replacement == ROp("mul", (RVar("x"), ROp("mul", (RVar("$a"), RVar("$b")), ())), ())
    assert r.tensor_vars == ("x",) and r.const_vars == ("$a", "$b")
    assert r.text == ("(x * $a) * $b", "x * ($a * $b)", "is_float(x)")


def test_attributes_default_when_unmentioned_and_bind_when_named():
    (r,) = parse_rules("rule t exact transpose(transpose(x, perm=p), perm=[1, 0]) -> x")
    inner = r.pattern.args[0]
    assert dict(inner.attrs) == {"perm": AttrVar("p")}
    assert dict(r.pattern.attrs) == {"perm": AttrLit((1, 0))}
    (r,) = parse_rules("rule g exact gelu(x) -> x")
    assert dict(r.pattern.attrs) == {"approximate": AttrLit("none")}


def test_with_names_a_shared_subpattern_and_literals_keep_the_sign_of_zero():
    (r,) = parse_rules("rule s exact e / sum(e, axis=a, keepdims=true) -> x with e = exp(x) ")
    e = r.pattern.args[0]
    assert isinstance(e, PNamed) and e.name == "e" and r.pattern.args[1].args[0] is e
    (r,) = parse_rules("rule z exact x + -0.0 -> x")
    lit = r.pattern.args[1]
    assert isinstance(lit, PLit) and str(lit.value) == "-0.0"
    (r,) = parse_rules("rule one exact x ** 0 -> 1")
    assert r.replacement == RLit(1)


@pytest.mark.parametrize(
    "text, message, line, column",
    [
        ("rule a exact x * 1\n  x -> x", "unexpected 'x'", 2, 3),
        ("rule a exact foo(x) -> x", "unknown op 'foo'", 1, 14),
        ("rule a exact exp(x, y) -> x", "exp takes 1 operands, got 2", 1, 14),
        ("rule a exact exp(x) -> y", "'y' is not bound by the pattern", 1, 24),
        ("rule a exact exp(x) -> x if is_flaot(x)", "unknown guard function 'is_flaot'", 1, 29),
        ("rule a exact sum(x, axes=1) -> x", "sum has no attribute 'axes'", 1, 26),
        ("rule a exact(rtol=1) x * 1 -> x", "an exact rule has no tolerance", 1, 8),
        ("rule a approx(tol=1) x * 1 -> x", "unknown tolerance 'tol'", 1, 15),
        ("rule a exact x -> x", "a pattern must start with an op", 1, 14),
        ("rule a exact x * 1 -> x assuming x in [0, 1]", "only an unsafe rule can state a domain", 1, 25),
        ("rule a unsafe x * 1 -> x assuming x in [2, 1]", "the range of 'x' is empty", 1, 35),
        ("rule a exact x * 1 -> x\nrule a exact x + 0 -> x", "rule 'a' is defined twice", 2, 6),
        ("rule a exact exp(e) -> x with e = exp(e)", "'e' is defined in terms of itself", 1, 39),
        ("rule a exact x * 1 -> x with e = exp(x)", "'e' is defined with `with` but the pattern never uses it", 1, 14),
        ("rule a exact transpose(x, perm=x) -> x", "'x' is an operand variable; it cannot also be an attribute", 1, 32),
        ("rule a exact x * 1 -> x $", "unexpected character '$'", 1, 25),
    ],
)
def test_a_bad_rule_file_gets_a_located_message(text, message, line, column):
    with pytest.raises(FusecSyntaxError) as info:
        parse_rules(text, "bad.rules")
    err = info.value
    assert message in err.message
    assert (err.location.filename, err.location.line, err.location.column) == ("bad.rules", line, column)
    shown = str(err)
    assert shown.startswith(f"bad.rules:{line}:{column}: error: ")
    assert "^" in shown.splitlines()[-1]


def test_loading_a_missing_rule_file_is_a_user_error(tmp_path):
    from fusec.rewrite import load_rules

    with pytest.raises(FusecError, match="no such file"):
        load_rules(tmp_path / "none.rules")


def test_load_rules_combines_files_and_rejects_duplicate_names(tmp_path):
    from fusec.rewrite import load_rules

    path = tmp_path / "mine.rules"
    path.write_text("rule my_rule exact x * 1 -> x\n")
    rules = load_rules(path, standard=True)
    assert rules[-1].name == "my_rule" and len(rules) == len(standard_rules()) + 1
    path.write_text("rule mul_one exact x * 1 -> x\n")
    with pytest.raises(FusecError, match="defined twice"):
        load_rules(path, standard=True)


def test_the_chapter_documents_every_guard_function():
    from conftest import ROOT

    from fusec.rewrite.guards import FUNCTIONS

    text = (ROOT / "docs" / "rewrites.md").read_text()
    missing = [name for name in FUNCTIONS if f"`{name}" not in text]
    assert not missing, f"docs/rewrites.md does not mention the guard functions {missing}"


_TOKENS = [
    "rule", "r", "exact", "approx", "unsafe", "(", ")", "rtol", "=", "1e-3", ",", "x", "y", "$c", "+", "-", "*",
    "/", "**", "->", "exp", "sum", "axis", "keepdims", "true", "with", "if", "and", "not", "is_float", "assuming",
    "in", "[", "]", "0", "-0.0", '"doc"', "transpose", "perm", "p", "\n", "==", "nan", "foo", "@", "$",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=30))
def test_any_rule_text_parses_or_gives_a_located_error(tokens):
    text = " ".join(tokens)
    try:
        rules = parse_rules(text, "fuzz.rules")
    except FusecError as err:  # never any other exception, and always a place in the file
        assert err.location is not None and err.location.filename == "fuzz.rules"
    else:
        for r in rules:
            assert r.cls in CLASSES


_exprs = st.recursive(
    st.sampled_from(["x", "y", "$c", "0", "1", "-0.0", "2.5", "true", "a", "f32"]),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**", "==", "@"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["exp", "sum", "transpose", "where", "maximum", "cast", "softmax", "nope"]), st.lists(inner, max_size=3),
                  st.sampled_from(["", ", axis=a", ", perm=p", ", keepdims=true", ", dtype=f64", ", axis=x"])).map(
            lambda t: f"{t[0]}({', '.join(t[1])}{t[2] if t[1] else ''})"
        ),
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["exact", "approx", "unsafe"]), _exprs, _exprs, st.sampled_from(["", " if is_float(x)", " if rank(a) > 1", " if is_close($c, 0.5)"]))
def test_structured_random_rules_compile_or_give_a_located_error(cls, pattern, replacement, guard):
    text = f"rule r {cls}\n  {pattern} -> {replacement}{guard}\n"
    try:
        (rule,) = parse_rules(text, "fuzz.rules")
    except FusecError as err:
        assert err.location is not None and err.location.line in (1, 2)
    else:
        assert rule.pattern.op and rule.cls == cls
