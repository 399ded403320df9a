"""No `%N` name reaches a learner: explain, rewrite --trace and bisect name every value the user did
not name after what it feeds and its op (`v_hat_div`, `y_tanh`), as the printer and planner do."""

from __future__ import annotations

import re

import pytest
from conftest import EXAMPLES, small_sizes
from test_fuzz_bisect import _cli

import fusec
from fusec.bisect import compile_with
from fusec.cli.main import main

NUMBERED = re.compile(r"%\d")


def sets(path):
    return [a for k, v in small_sizes(path).items() for a in ("--set", f"{k}={v}")]


@pytest.mark.parametrize("command", [["explain"], ["rewrite", "--trace"]], ids=" ".join)
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_no_numbered_names_in_explain_and_rewrite_trace(path, command, capsys):
    assert main([command[0], str(path), *command[1:], *sets(path)]) == 0
    out = capsys.readouterr().out
    assert out and not NUMBERED.search(out), out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_bisect_names_every_planned_value(path):
    """bisect reports a group's ops and a fusion edge (two ops of one group) by the planned names."""
    g = fusec.load(path, sizes=small_sizes(path))
    groups = compile_with(g, "numpy", stop_after="groups").plan.groups
    members = [n for grp in groups for n in grp.nodes]
    assert members and not [n for n in members if NUMBERED.match(n)]


def test_rewrite_trace_names_temporaries_after_what_they_feed(capsys):
    assert main(["rewrite", "examples/07_adam.fg", "--set", "N=8", "--trace"]) == 0
    out = capsys.readouterr().out
    assert "# [1] constant-fold at v_hat_div: div(1.0, 0.009955119790251765) => 100.4508285522461" in out
    assert "at p_new_mul: mul(0.001, m_hat)" in out


def test_cli_bisect_of_a_seeded_mismatch_names_values(tmp_path):
    patch = ("import dataclasses\nfrom fusec.ir.ops import OPS\n"
             "OPS['tanh'] = dataclasses.replace(OPS['tanh'], numpy_code='np.sinh({0}, out={out})')")
    r = _cli(tmp_path, patch, "run", "g.fg", "--backend", "numpy", "--verify", "--bisect")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "(elementwise: y_tanh = tanh, y = mul, z_exp = exp, z = add) diverges first" in r.stdout
    assert not NUMBERED.search(r.stdout + r.stderr), r.stdout
