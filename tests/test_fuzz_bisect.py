"""`fusec run --verify --bisect` and fusec.bisect: on a mismatch, name the first fused group that
diverges (with the error in ulps) and the rewrite rule or fusion decision that causes it.

The bugs here are planted on purpose (a wrong rewrite rule, a wrong NumPy spelling of tanh), so the
test knows the right answer.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fusec
from fusec.bisect import bisect, check
from fusec.rewrite.parse import parse_rules

ROOT = Path(__file__).resolve().parent.parent

WRONG_RULE = 'rule wrong_mul_two exact "deliberately wrong: x * 2 is not x + x + 1"\n  x * 2 -> x + x + 1\n'

GRAPH = """graph g<N=37>(x: f32[N]) {
  y = tanh(x) * 2
  z = exp(y) + x
  return z
}
"""


@pytest.fixture
def wrong_rule(monkeypatch):
    import fusec.rewrite.library as library

    standard = library.standard_rules
    monkeypatch.setattr(library, "standard_rules", lambda: standard() + parse_rules(WRONG_RULE))


@pytest.fixture
def wrong_tanh(monkeypatch):
    from fusec.ir.ops import OPS

    monkeypatch.setitem(OPS, "tanh", dataclasses.replace(OPS["tanh"], numpy_code="np.sinh({0}, out={out})"))


def _inputs(g):
    return [np.random.default_rng(0).standard_normal(g.type_of(n).shape).astype(g.type_of(n).dtype.numpy) for n in g.inputs]


def test_no_mismatch_no_blame():
    g = fusec.parse(GRAPH)
    report = bisect(g, _inputs(g), backend="numpy")
    assert report.failure is None
    assert "no mismatch" in str(report)


def test_a_wrong_rewrite_rule_is_named(wrong_rule):
    g = fusec.parse(GRAPH)
    x = _inputs(g)
    assert check(g, x, "numpy").kind == "mismatch"
    report = bisect(g, x, backend="numpy")
    assert report.rewrite_rule == "wrong_mul_two", str(report)
    assert "rewrite rule 'wrong_mul_two'" in str(report)


def test_a_wrong_kernel_is_named_with_its_error_in_ulps(wrong_tanh):
    g = fusec.parse(GRAPH)
    x = _inputs(g)
    report = bisect(g, x, backend="numpy")
    assert report.failure is not None and report.failure.kind == "mismatch"
    assert report.rewrite_rule is None
    grp = report.group
    assert grp is not None, str(report)
    assert any("tanh" in op for op in grp.ops)
    assert grp.mismatch.max_ulp_error > 1000  # sinh vs tanh: far more than rounding
    assert "ulps" in str(report)


def test_only_the_first_divergent_group_is_blamed(monkeypatch):
    # exp is wrong in the first kernel; the matmul kernel after it is right when fed exact inputs,
    # so it is not blamed although its output is wrong too in the full run
    from fusec.ir.ops import OPS

    monkeypatch.setitem(OPS, "exp", dataclasses.replace(OPS["exp"], numpy_code="np.expm1({0}, out={out})"))
    g = fusec.parse("graph g(a: f32[5, 7], w: f32[7, 3]) {\n  h = exp(a) @ w\n  return tanh(h)\n}\n")
    report = bisect(g, _inputs(g), backend="numpy")
    assert report.group is not None, str(report)
    assert report.group.group == 0
    assert any("exp" in op for op in report.group.ops) and not any("matmul" in op for op in report.group.ops)


def _cli(tmp_path, patch: str, *args):
    (tmp_path / "g.fg").write_text(GRAPH)
    code = patch + "\nimport sys\nfrom fusec.cli.main import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )


def test_cli_verify_bisect_names_the_rule(tmp_path):
    patch = (
        "import fusec.rewrite.library as L\nfrom fusec.rewrite.parse import parse_rules\n"
        f"_s = L.standard_rules\nL.standard_rules = lambda: _s() + parse_rules({WRONG_RULE!r})"
    )
    r = _cli(tmp_path, patch, "run", "g.fg", "--backend", "numpy", "--verify", "--bisect")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "verify: FAILED" in r.stdout
    assert "rewrite rule 'wrong_mul_two' causes it" in r.stdout
    assert "Traceback" not in r.stderr


def test_cli_verify_bisect_names_the_group(tmp_path):
    patch = (
        "import dataclasses\nfrom fusec.ir.ops import OPS\n"
        "OPS['tanh'] = dataclasses.replace(OPS['tanh'], numpy_code='np.sinh({0}, out={out})')"
    )
    r = _cli(tmp_path, patch, "run", "g.fg", "--backend", "numpy", "--verify", "--bisect")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "diverges first" in r.stdout and "ulps" in r.stdout
    assert "Traceback" not in r.stderr


def test_cli_bisect_needs_verify(tmp_path):
    r = _cli(tmp_path, "", "run", "g.fg", "--backend", "numpy", "--bisect")
    assert r.returncode == 2 and "add --verify" in r.stderr


def test_cli_verify_ok_prints_no_bisection(tmp_path):
    r = _cli(tmp_path, "", "run", "g.fg", "--backend", "numpy", "--verify", "--bisect")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verify: ok" in r.stdout and "bisect" not in r.stdout
