"""Parser-level edges (issue 10 items 3 and 7, issue 9 item 3): names that shadow literals are
refused where they are declared, common mistakes get a hint in the user's terms, and a value the
user did not name gets a readable name everywhere it is shown."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from fusec.errors import FusecError
from fusec.frontend import parse
from fusec.ir.printer import print_graph


def _error(text: str) -> FusecError:
    with pytest.raises(FusecError) as info:
        parse(text, "e.fg")
    return info.value


# ------------------------------------------------------------------ names that are literals (item 3)


@pytest.mark.parametrize("name", ["inf", "nan", "true", "false"])
@pytest.mark.parametrize(
    "template, what, column",
    [
        ("graph g({n}: f32[3]) {{ return {n} * 2 }}", "an input", 9),
        ("graph g<{n}=3>(x: f32[3]) {{ return x }}", "a dimension", 9),
        ("graph g(x: f32[3]) {{\n  {n} = x * 2\n  return x\n}}", "a value", 3),
        ("graph g(x: f32[3]) {{\n  return {n} = x * 2\n}}", "a value", 10),
    ],
)
def test_a_name_that_is_a_literal_is_refused_where_it_is_declared(name, template, what, column):
    err = _error(template.format(n=name))
    assert f"'{name}' is a literal and cannot name {what}" in err.message
    assert err.location.column == column and err.location.filename == "e.fg"
    assert "^" in str(err)


def test_inf_as_a_value_still_reads_as_the_literal():
    g = parse("graph g(x: f32[3]) { return x * inf }")
    assert g.type_of(g.outputs[0]).shape == (3,)


# ------------------------------------------------------------------ hints for common mistakes (item 7)


@pytest.mark.parametrize("op, other", [("max", "maximum"), ("min", "minimum")])
def test_a_reduction_with_two_operands_suggests_the_elementwise_op(op, other):
    err = _error(f"graph g(a: f32[3], b: f32[3]) {{\n  return {op}(a, b)\n}}")
    assert f"write {other}(a, b)" in err.message
    assert (err.location.line, err.location.column) == (2, 10)


def test_an_unquoted_attribute_choice_suggests_the_quoted_form():
    err = _error("graph g(x: f32[3]) {\n  return gelu(x, approximate=tanh)\n}")
    assert "'tanh' is not a dimension or a dtype" in err.message
    assert 'approximate="tanh"' in err.message
    assert (err.location.line, err.location.column) == (2, 30)
    other = _error("graph g(x: f32[3]) {\n  return gelu(x, approximate=tan)\n}")
    assert "quoted" not in other.message  # only a name among the choices gets the hint


@pytest.mark.parametrize(
    "expr, example",
    [
        ("a[0]", "slice(a, axis=0, start=0, stop=1)"),
        ("a[2]", "slice(a, axis=0, start=2, stop=3)"),
        ("a[1:3]", "slice(a, axis=0, start=1, stop=3)"),
        ("a[:2]", "slice(a, axis=0, start=0, stop=2)"),
    ],
)
def test_indexing_says_how_to_write_a_slice(expr, example):
    err = _error(f"graph g(a: f32[4]) {{\n  return {expr}\n}}")
    assert example in err.message and "expected" not in err.message
    assert (err.location.line, err.location.column) == (2, 10)


def test_a_string_or_a_list_is_only_an_attribute():
    assert "a string can only be an attribute value" in _error('graph g(x: f32[3]) { return x + "a" }').message
    assert "a list can only be an attribute value" in _error("graph g(x: f32[3]) { return x + [1] }").message


def test_rule_files_read_expressions_and_errors_the_same_way():
    from fusec.rewrite.parse import parse_rules

    with pytest.raises(FusecError) as info:
        parse_rules("rule a exact x[0] -> x", "r.rules")
    assert "slice(x, axis=0, start=0, stop=1)" in info.value.message
    assert str(info.value).startswith("r.rules:1:14: error: ")
    fg = _error("graph g(x: f32[3]) { return x + }")
    with pytest.raises(FusecError) as rules:
        parse_rules("rule a exact x + ) -> x", "a.rules")
    assert fg.message.startswith("unexpected '}'; expected ")
    assert rules.value.message.startswith("unexpected ')'; expected ")


# ------------------------------------------------------------------ unnamed values get names (issue 9 item 3)

_UNNAMED = "graph g(x: f32[4]) {\n  return exp(x), x * 2, exp(x + 1)\n}\n"


def test_an_unnamed_output_is_named_after_its_op_and_still_prints_inline():
    g = parse(_UNNAMED)
    assert g.outputs == ["exp", "mul", "exp_2"]
    assert print_graph(g).endswith("  return exp(x), x * 2, exp(x + 1)\n}\n")
    assert parse(print_graph(g)) == g


def _fusec(*args, cwd):
    return subprocess.run([sys.executable, "-m", "fusec", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_no_percent_name_reaches_explain_code_or_out_files(tmp_path, backend):
    (tmp_path / "u.fg").write_text(_UNNAMED)
    shown = []
    for args in (["explain", "u.fg"], ["compile", "u.fg", "--backend", backend, "--show", "groups,loops,source"]):
        r = _fusec(*args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        shown.append(r.stdout)
    r = _fusec("run", "u.fg", "--backend", backend, "--out", "out.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "out.npz") as saved:
        assert sorted(saved.files) == ["exp", "exp_2", "mul"]
    shown.append(r.stdout)
    for text in shown:
        assert not re.search(r"%\d", text), text
