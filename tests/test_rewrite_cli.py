"""The rewrite CLI: `fusec rules list`, `fusec rules verify`, `fusec rewrite`."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

import fusec
from fusec.cli.main import main
from fusec.ir.printer import print_graph
from fusec.rewrite import rewrite


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_rules_list_json_has_at_least_40_rules_with_classes(capsys):
    code, out, _ = run(capsys, "rules", "list", "--json")
    data = json.loads(out)
    assert code == 0 and data["count"] >= 40 and len(data["rules"]) == data["count"]
    for r in data["rules"]:
        assert r["class"] in ("exact", "approx", "unsafe") and r["pattern"] and r["replacement"]
    classes = {r["class"] for r in data["rules"]}
    assert classes == {"exact", "approx", "unsafe"}


def test_rules_list_text_shows_pattern_and_replacement(capsys):
    code, out, _ = run(capsys, "rules", "list", "--class", "unsafe")
    assert code == 0
    assert "exp_mul_exp" in out and "exp(a) * exp(b)  ->  exp(a + b)" in out
    assert out.strip().splitlines()[-1].endswith("0 exact, 0 approx, 11 unsafe)")  # mul_reciprocal joined the unsafe class


def test_rules_list_long_shows_description_tolerance_domain_and_source(capsys):
    code, out, _ = run(capsys, "rules", "list", "--long", "exp_log", "add_const_chain")
    assert code == 0
    assert "exp(log(x)) is x for positive x" in out and "assuming x in [1e-30, 1e+30]" in out
    assert "tolerance: scale=operands" in out and "50_constants.rules:" in out


def test_rules_verify_json_reports_cases_and_exits_zero(capsys):
    code, out, _ = run(capsys, "rules", "verify", "mul_one", "gelu_tanh", "add_const_chain", "--json")
    data = json.loads(out)
    assert code == 0 and data["failed"] == 0 and data["rules"] == 3
    for r in data["results"]:
        assert r["passed"] and r["cases"] >= 200 and r["class"]


def test_rules_verify_fails_with_a_counterexample_for_a_wrong_rule_file(capsys, tmp_path):
    path = tmp_path / "wrong.rules"
    path.write_text("rule good exact x * 1 -> x\nrule bad exact x + 0 -> x\n")
    code, out, _ = run(capsys, "rules", "verify", "--rules", str(path), "--cases", "50")
    assert code == 1
    assert "PASS good [exact]: 50 cases" in out
    assert "FAIL bad [exact]" in out and "x = -0.0" in out and "not bit-identical" in out
    assert "1 of 2 rules verified" in out
    code, out, _ = run(capsys, "rules", "verify", "--rules", str(path), "--cases", "50", "--json")
    data = json.loads(out)
    assert code == 1 and data["failed"] == 1
    bad = next(r for r in data["results"] if r["name"] == "bad")
    assert bad["counterexample"]["values"]["x"] == "-0.0"


def test_rule_file_errors_and_unknown_names_exit_2_without_traceback(capsys, tmp_path):
    path = tmp_path / "broken.rules"
    path.write_text("rule r exact\n  expp(x) -> x\n")
    code, _, err = run(capsys, "rules", "list", "--rules", str(path))
    assert code == 2 and f"{path}:2:3: error: unknown op 'expp' (did you mean 'exp'?)" in err and "Traceback" not in err
    code, _, err = run(capsys, "rules", "verify", "mul_onee")
    assert code == 2 and "no rule named 'mul_onee' (did you mean 'mul_one'?)" in err
    code, _, err = run(capsys, "rules", "verify", "mul_one", "--cases", "0")
    assert code == 2 and "--cases must be at least 1" in err


def test_rewrite_prints_a_graph_that_parses_back_with_the_trace_as_comments(capsys):
    path = ROOT / "examples" / "07_adam.fg"
    code, out, _ = run(capsys, "rewrite", str(path), "--set", "N=16", "--trace")
    assert code == 0
    assert "# [1] div_const at m_hat" in out and out.rstrip().splitlines()[-1].startswith("# ")
    reparsed = fusec.parse(out)
    expected = rewrite(fusec.load(path, sizes={"N": 16})).graph
    assert reparsed == expected  # graph equality ignores comments, and the trace is comments
    assert "# [1] div_const at m_hat" in print_graph(reparsed)  # which survive a round trip


def test_rewrite_classes_flag(capsys):
    path = ROOT / "examples" / "07_adam.fg"
    code, out, _ = run(capsys, "rewrite", str(path), "--set", "N=16", "--classes", "exact")
    assert code == 0 and "m_hat = m_new / 0.6513215599" in out and "# [" not in out  # no trace
    code, _, err = run(capsys, "rewrite", str(path), "--classes", "")
    assert code == 2 and "--classes needs at least one" in err


def test_rewrite_with_unsafe_rules(capsys, tmp_path):
    path = tmp_path / "g.fg"
    path.write_text("graph g(a: f32[3], b: f32[3]) {\n  y = exp(a) * exp(b)\n  return y\n}\n")
    code, out, _ = run(capsys, "rewrite", str(path), "--classes", "exact,approx,unsafe", "--trace")
    assert code == 0 and "y = exp(a + b)" in out and "exp_mul_exp at y" in out
    code, out, _ = run(capsys, "rewrite", str(path))
    assert "y = exp(a) * exp(b)" in out


@pytest.mark.parametrize("argv", [["rules"], ["rules", "frobnicate"], ["rewrite"]])
def test_bad_command_lines_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
