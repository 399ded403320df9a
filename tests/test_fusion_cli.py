"""fusec explain / calibrate / viz and `fusec check` on kernel-count asserts, as a user meets them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import EXAMPLES, ROOT, small_sizes

import fusec
from fusec.cli.main import main
from fusec.errors import FusecError
from fusec.fusion import MachineModel, load_model, plan, save_model
from fusec.fusion.machine import model_path
from fusec.ir import dot as ir_dot


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEC_CACHE_DIR", str(tmp_path / "cache"))


def example(stem: str):
    return next(p for p in EXAMPLES if p.stem.endswith(stem))


def sets(path):
    return [a for k, v in small_sizes(path).items() for a in ("--set", f"{k}={v}")]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_json_has_the_promised_keys(capsys):
    code, out, _ = run(capsys, "explain", example("softmax"), "--json")
    assert code == 0
    r = json.loads(out)
    assert r["kernels"] == 1
    assert r["groups"][0]["ops"] == ["m", "e_sub", "e", "s", "y"]  # x - m, inside e = exp(x - m), is e_sub
    assert r["groups"][0]["outputs"] == ["y"] and r["groups"][0]["inputs"] == ["x"]
    assert r["bytes_fused"] < r["bytes_unfused"]
    assert r["predicted_ms_fused"] < r["predicted_ms_unfused"]
    assert r["not_fused"] == []


def test_explain_text_names_every_cut_edge(capsys):
    path = example("attention")
    code, out, _ = run(capsys, "explain", path, *sets(path))
    assert code == 0
    report = fusec.fusion.explain(plan(fusec.load(path, sizes=small_sizes(path))))
    assert report["not_fused"]
    for nf in report["not_fused"]:
        assert f"{nf['producer']} -> {nf['consumer']}: {nf['rule']}: " in out
    assert "predicted time: unfused" in out


@pytest.mark.parametrize("policy", ["greedy", "postdom", "table", "unfused"])
def test_explain_with_each_policy(capsys, policy):
    code, out, _ = run(capsys, "explain", example("layernorm"), "--policy", policy, "--json")
    assert code == 0
    assert json.loads(out)["policy"] == policy


def test_compare_lists_every_policy(capsys):
    code, out, _ = run(capsys, "explain", example("adam"), "--compare")
    assert code == 0
    for policy in ("greedy", "postdom", "table", "unfused"):
        assert any(line.startswith(policy) for line in out.splitlines())
    code, out, _ = run(capsys, "explain", example("adam"), "--compare", "--json")
    rows = json.loads(out)["policies"]
    assert {r["policy"]: r["kernels"] for r in rows}["unfused"] == 13  # one per op left by the rewrite (14 written)


def test_counterfactuals_show_the_prediction_against_the_planners_choice(capsys):
    path = example("softmax")
    code, out, _ = run(capsys, "explain", path, "--forbid", "e,s")
    assert code == 0
    assert "e -> s: forbidden: --forbid e,s keeps 'e' and 's' in different kernels" in out
    assert "counterfactual (--forbid e,s): predicted" in out and "slower" in out
    code, out, _ = run(capsys, "explain", path, "--forbid", "e,s", "--json")
    cf = json.loads(out)["counterfactual"]
    assert cf["planner_kernels"] == 1 and cf["delta_ms"] > 0


def test_user_mistakes_exit_2_with_one_message(capsys):
    code, _, err = run(capsys, "explain", example("softmax"), "--force-fuse", "e,nope")
    assert code == 2 and "no op named 'nope'" in err
    with pytest.raises(SystemExit) as exc:
        main(["explain", str(example("softmax")), "--forbid", "e"])
    assert exc.value.code == 2
    code, _, err = run(capsys, "viz", example("softmax"), "-o", "out.png")
    assert code == 2 and "must end in .svg, .dot or .html" in err


def test_check_fails_at_the_assert_when_the_plan_differs(tmp_path):
    src = example("chain").read_text().replace("assert kernels == 1", "assert kernels >= 2")
    bad = tmp_path / "bad.fg"
    bad.write_text(src)
    r = subprocess.run([sys.executable, "-m", "fusec", "check", str(bad)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    line = next(i for i, text in enumerate(src.splitlines(), 1) if "assert kernels" in text)
    assert r.stderr.startswith(f"{bad}:{line}:10: error: expected kernels >= 2, but the ")
    assert "assert kernels >= 2" in r.stderr and "^" in r.stderr


def test_check_reports_the_asserts_that_hold(capsys):
    code, out, _ = run(capsys, "check", example("adam"))
    assert code == 0 and out.rstrip().endswith("kernels == 1 (plan: 1)")


def test_machine_model_defaults_and_round_trip(tmp_path):
    assert load_model() == MachineModel()
    m = MachineModel(bandwidth_gbs=31.5, peak_gflops=99.0, kernel_overhead_us=3.0, source="test")
    path = save_model(m)
    assert path == model_path() and path.parent.name == "cache"
    assert load_model() == m
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # the temp file was renamed


def test_a_corrupt_model_file_is_a_clear_error(capsys):
    model_path().parent.mkdir(parents=True)
    model_path().write_text("{not json")
    with pytest.raises(FusecError, match="not valid JSON"):
        load_model()
    model_path().write_text(json.dumps({"bandwidth_gbs": -3}))
    code, _, err = run(capsys, "explain", example("chain"))
    assert code == 2 and "'bandwidth_gbs' must be a positive number" in err


def test_the_model_changes_decisions_through_the_cache_dir(capsys):
    # arithmetic so slow that recomputing a small producer at every point never pays
    save_model(MachineModel(bandwidth_gbs=1000.0, peak_gflops=0.05, kernel_overhead_us=0.01, source="test"))
    g = fusec.parse("graph r(x: f32[2048, 512], b: f32[512]) { c = b * 3\n y = x + c\n return y }")
    assert plan(g).kernels == 2
    save_model(MachineModel(source="test defaults"))
    assert plan(g).kernels == 1


def _load(monkeypatch, *values):
    """os.getloadavg returns each of `values` in turn (before measuring, after measuring)."""
    seq = iter(values)
    monkeypatch.setattr(os, "getloadavg", lambda: (next(seq), 0.0, 0.0))


def _fake_measure(monkeypatch):
    from fusec.fusion import calibrate as cal

    model = MachineModel(bandwidth_gbs=12.5, source="calibrated by a test")
    monkeypatch.setattr(cal, "_measure", lambda quick: cal.Calibration(model, "a test", ["measured nothing"]))


def test_calibrate_measures_and_stores_the_model(capsys, monkeypatch):
    _load(monkeypatch, 0.25, 0.5)  # a quiet machine (the real one may be busy)
    code, out, _ = run(capsys, "calibrate", "--quick")
    assert code == 0
    m = load_model()
    assert m.source.startswith("calibrated")
    assert m.calibration_load == 0.5 and "load average 0.25 before, 0.5 after" in out
    assert m.bandwidth_gbs > 0.1 and m.peak_gflops > 0.1 and m.kernel_overhead_us > 0
    assert f"wrote {model_path()}" in out
    if "generated C probes" not in m.source:  # no C compiler here: the fallback must say so
        assert "NumPy triad" in m.source and "NumPy triad" in out
    code, out, _ = run(capsys, "calibrate", "--show")
    assert code == 0 and f"bandwidth_gbs = {m.bandwidth_gbs}" in out


@pytest.mark.parametrize("loads", [(9.0, 0.1), (0.1, 9.0)], ids=["busy before", "busy after"])
def test_calibrate_refuses_to_store_figures_measured_under_load(capsys, monkeypatch, loads):
    _fake_measure(monkeypatch)
    _load(monkeypatch, *loads)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    code, out, err = run(capsys, "calibrate", "--quick")
    assert code == 2
    assert "12.5 GB/s" in out  # the figures are shown, not stored
    assert "load average was 9" in err and "on 2 cores" in err and "--force" in err
    assert "Traceback" not in err and not model_path().exists()


def test_calibrate_force_stores_busy_figures_with_their_load(capsys, monkeypatch):
    _fake_measure(monkeypatch)
    _load(monkeypatch, 3.5, 4.0)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    code, out, _ = run(capsys, "calibrate", "--quick", "--force")
    assert code == 0 and "warning: the load average was 4" in out and f"wrote {model_path()}" in out
    m = load_model()
    assert m.bandwidth_gbs == 12.5 and m.calibration_load == 4.0


def test_calibrate_stores_figures_at_half_the_cores(capsys, monkeypatch):
    _fake_measure(monkeypatch)
    _load(monkeypatch, 1.0, 1.0)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    code, out, _ = run(capsys, "calibrate")
    assert code == 0 and "warning" not in out and load_model().calibration_load == 1.0


@pytest.mark.parametrize("suffix", [".dot", ".svg", ".html"])
def test_viz_writes_each_format(capsys, tmp_path, suffix):
    out_file = tmp_path / f"plan{suffix}"
    path = example("layernorm")
    code, out, _ = run(capsys, "viz", path, *sets(path), "--forbid", "d,var_mul", "-o", out_file)
    assert code == 0
    text = out_file.read_text()
    assert "2 kernels, one colour each" in out
    if suffix == ".dot":
        assert text.startswith('digraph "layernorm"')
        assert text.count("style=dashed") == 2  # d -> var_mul and d -> y_mul cross between the two kernels
    elif suffix == ".svg":
        assert text.lstrip().startswith(("<svg", "<?xml"))
        if ir_dot.dot_program() is None:
            assert "built-in layout" in out and (tmp_path / "plan.dot").exists()
    else:
        assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "forbidden" in text


def test_builtin_svg_without_graphviz(monkeypatch):
    monkeypatch.setattr(ir_dot, "dot_program", lambda: None)
    g = fusec.load(example("softmax"), sizes=small_sizes(example("softmax")))
    svg = g._repr_svg_()
    assert svg.startswith("<svg") and svg.count("<rect") == len(g.ops())
    p = plan(g, forbid=["e,s"])
    svg = p._repr_svg_()
    assert svg.count('stroke-dasharray="6,4"') == len(p.not_fused) == 2  # e -> s and e -> y cross kernels
    colors = {line.split('fill="')[1].split('"')[0] for line in svg.splitlines() if "<rect" in line}
    assert len(colors) == p.kernels


def test_what_if_machine_flags_change_the_model_for_one_run(capsys):
    path = ROOT / "docs" / "snippets" / "fusion_bias.fg"
    code, out, _ = run(capsys, "explain", path, "--json")
    r = json.loads(out)  # tanh(b) recomputed at every point costs more than reading it back
    assert r["kernels"] == 2 and [nf["rule"] for nf in r["not_fused"]] == ["unprofitable"]
    code, out, _ = run(capsys, "explain", path, "--overhead", "100000", "--json")
    r = json.loads(out)  # with kernel starts that dear, one kernel wins
    assert r["kernels"] == 1 and r["model"]["kernel_overhead_us"] == 100000
    assert load_model() == MachineModel()  # nothing stored
    with pytest.raises(SystemExit):
        main(["explain", str(path), "--bandwidth", "-1"])
