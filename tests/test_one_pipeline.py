"""One pipeline: every command reports the plan that is built.

`fusec check`, `fusec explain`, `fusec compile --show groups` and `fusec.compile(...)` all run
fusec.pipeline.compile_stages, so for every shipped example and for random graphs they count the
same kernels; and a `.fg` file's `assert kernels` is held to that count.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import EXAMPLES
from hypothesis import HealthCheck, given, settings

import fusec
from fusec.cli.main import main
from fusec.errors import FusecError
from fusec.ir.printer import print_graph
from fusec.pipeline import STAGES, compile_stages, lower_all
from fusec.testing.graphgen import GenConfig, graphs


def cli(capsys, *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, f"fusec {' '.join(argv)} exited {code}:\n{out}{err}"
    return out


def counts(capsys, path: Path) -> dict[str, int]:
    """The kernel count each way of asking reports for the .fg file at `path` (viz writes next to it)."""
    checked = cli(capsys, "check", str(path))
    m = re.search(r"\(plan: (\d+)\)$|plan: (\d+) kernels?$", checked.strip())
    assert m, checked
    explained = json.loads(cli(capsys, "explain", str(path), "--json"))
    compiled = cli(capsys, "compile", str(path), "--backend", "numpy", "--show", "groups")
    shown = re.search(r"-> (\d+) kernels?,", compiled)
    built = re.search(r"compiled graph \S+: (\d+) kernels?", compiled)
    assert shown and built, compiled
    drawn = re.search(r"^(\d+) kernels?, one colour each", cli(capsys, "viz", str(path), "-o", str(path.with_suffix(".dot"))), re.M)
    assert drawn
    return {
        "check": int(m.group(1) or m.group(2)),
        "explain": explained["kernels"],
        "compile --show groups": int(shown.group(1)),
        "compile": int(built.group(1)),
        "viz": int(drawn.group(1)),
        "fusec.compile": fusec.compile(path, backend="numpy", tune_db=False).kernels,
    }


def assert_all_equal(found: dict[str, int], what: str) -> None:
    assert len(set(found.values())) == 1, f"{what}: the kernel counts differ: {found}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_counts_the_same_kernels_every_way(capsys, tmp_path, path):
    copy = tmp_path / path.name
    copy.write_text(path.read_text())
    assert_all_equal(counts(capsys, copy), path.name)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(graphs(GenConfig(max_ops=6, max_rank=2, max_elements=256)))
def test_random_graphs_count_the_same_kernels_every_way(capsys, tmp_path, g):
    path = tmp_path / "g.fg"
    path.write_text(print_graph(g))
    assert_all_equal(counts(capsys, path), print_graph(g))


def test_check_holds_the_assert_to_the_plan_that_is_built(capsys, tmp_path):
    # the rewrite removes the double transpose, so the plan that is built has one kernel
    src = "graph t<N=8, M=6>(x: f32[N, M]) {{ y = exp(transpose(transpose(x))); assert kernels == {k}; return y }}\n"
    ok = tmp_path / "ok.fg"
    ok.write_text(src.format(k=1))
    assert "kernels == 1 (plan: 1)" in cli(capsys, "check", str(ok))
    assert fusec.compile(ok, backend="numpy").kernels == 1
    wrong = tmp_path / "wrong.fg"
    wrong.write_text(src.format(k=2))
    assert main(["check", str(wrong)]) == 2
    assert "expected kernels == 2, but the" in capsys.readouterr().err


def test_plan_only_commands_stop_before_the_backend():
    stages = compile_stages(EXAMPLES[0], backend="no such backend", stop_after="groups")
    assert stages.plan is not None and stages.kernel_count == 1
    assert stages.nests == [] and stages.kernels == []
    with pytest.raises(FusecError, match="stopped after 'groups'"):
        stages.show("source")
    with pytest.raises(FusecError, match="unknown stage"):
        compile_stages(EXAMPLES[0], stop_after="everything")


def test_every_stage_can_be_the_last(tmp_path):
    for stage in STAGES:
        stages = compile_stages(EXAMPLES[0], backend="numpy", sizes={"N": 8, "M": 8}, stop_after=stage)
        assert stages.show(stage)  # the last stage run can be printed


def test_the_options_reach_the_plan():
    path = EXAMPLES[3]  # layernorm: `d` feeds `var`
    assert "layernorm" in path.name
    sizes = {"N": 8, "D": 16}
    forbidden = compile_stages(path, sizes=sizes, rewrite_classes=None, forbid=["d,var"], stop_after="groups").plan
    assert forbidden.group_of("d") is not forbidden.group_of("var")
    assert fusec.compile(path, backend="numpy", sizes=sizes, rewrite=None, forbid=["d,var"]).kernels == forbidden.kernels


def test_an_explicit_rule_list_is_what_the_rewrite_draws_from():
    g = fusec.parse("graph t(x: f32[8, 6]) { y = exp(transpose(transpose(x))); return y }")
    assert compile_stages(g, stop_after="groups").kernel_count == 1  # transpose_transpose fires
    without = compile_stages(g, rules=[], stop_after="groups")
    assert "transpose_transpose" not in without.rewritten.fired()
    assert without.kernel_count == 2


def test_a_pair_the_rewrite_removed_is_named_as_such():
    src = "graph t(x: f32[4]) {\n  a = x * 1.0\n  b = exp(a)\n  return b\n}\n"
    with pytest.raises(FusecError, match="'a' is not in the graph that is planned: rule '.*' rewrote it"):
        compile_stages(fusec.parse(src), forbid=["a,b"], stop_after="groups")


def test_the_tuner_gets_the_kernels_compile_builds():
    sizes = {"N": 8, "M": 16}
    graph, kernels = lower_all(EXAMPLES[0], backend="numpy", sizes=sizes)
    built = compile_stages(EXAMPLES[0], backend="numpy", sizes=sizes, tune_db=False)
    assert graph == built.plan.graph
    assert [n for _, n in kernels] == [n for n in built.nests if n is not None]


def test_run_out_names_the_outputs_as_the_graph_does(capsys, tmp_path):
    import numpy as np

    path = EXAMPLES[6]  # adam: three named outputs
    out = tmp_path / "out.npz"
    cli(capsys, "run", str(path), "--set", "N=16", "--backend", "numpy", "--out", str(out))
    with np.load(out) as saved:
        names = sorted(saved.files)
    assert names == sorted(fusec.load(path, sizes={"N": 16}).outputs)
    assert not any(n.startswith("%") for n in names)
