"""`fusec tune` as documented in issue 14: --trials (alias --budget), --seconds, --seed, --json,
--executor, --report; the progress bar only on a terminal; the acceptance command at small sizes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from fusec.tune import TuneDB
from fusec.tune.progress import Progress
from fusec.tune.space import search_space
from fusec.tune.tuner import KernelResult

CHAIN = ROOT / "examples" / "01_chain.fg"
SETS = ["--set", "N=64", "--set", "M=64"]


def fusec_cli(*args):
    return subprocess.run([sys.executable, "-m", "fusec", *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          env=os.environ.copy(), timeout=600)


def test_the_acceptance_command_names_a_best_schedule_per_kernel(tmp_path):
    db = tmp_path / "tune.jsonl"
    r = fusec_cli("tune", CHAIN, *SETS, "--trials", "16", "--seconds", "40", "--json", "--db", db, "--repeats", "3")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # JSON only on stdout: no progress bar without a terminal
    assert out["executor"] == "local" and out["kernels"]
    for k in out["kernels"]:
        assert k["best"]["status"] == "ok" and k["best"]["text"] and k["best"]["schedule"]["tiles"] is not None
        assert 1 <= k["tried"] <= 16 and k["stored"]
        # the best is the fastest trial, the default among them: never slower than the default
        assert k["best"]["median_s"] <= k["default"]["median_s"] and k["speedup"] >= 1.0
        assert k["best"]["load"] is not None and k["best"]["machine"]["cores"] >= 1
    assert "\r" not in r.stderr  # no bar
    # a second run measures nothing and says so
    r = fusec_cli("tune", CHAIN, *SETS, "--budget", "16", "--db", db)
    assert r.returncode == 0, r.stderr
    assert "from the database" in r.stdout and "nothing measured" in r.stdout
    # and --report summarises what is stored
    r = fusec_cli("tune", "--report", "--db", db)
    assert r.returncode == 0, r.stderr
    assert "1 kernel tuned" in r.stdout and "chain/chain_k0 (c, x[64, 64] y[64, 64])" in r.stdout
    (rec,) = TuneDB(db).read().records
    assert set(rec["key_parts"]) == {"format", "kernel", "shapes", "dtypes", "backend", "compiler", "flags",
                                     "codegen", "machine"}


def test_report_as_json_and_on_an_empty_database(tmp_path):
    r = fusec_cli("tune", "--report", "--db", tmp_path / "none.jsonl", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["kernels"] == []
    r = fusec_cli("tune", "--report", "--db", tmp_path / "none.jsonl")
    assert "no tuning records" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--seconds", "0"], "the time budget must be positive"),
    (["--trials", "0"], "the budget must be at least 1"),
    (["--executor", "ray://x"], "unknown executor"),
])
def test_mistakes_are_clean_errors(args, message):
    r = fusec_cli("tune", CHAIN, *SETS, *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_a_file_is_needed_unless_report():
    r = fusec_cli("tune")
    assert r.returncode == 2 and "needs a .fg FILE" in r.stderr


def _fake_run(budget: int) -> KernelResult:
    import fusec
    from fusec.pipeline import lower_all

    nest = lower_all(fusec.parse("graph g(x: f32[8]) {\n  y = x * 2\n  return y\n}\n"))[1][0][1]
    return KernelResult("g_k0", "elementwise", "k", search_space(nest, "c"), "random", budget=budget)


def test_without_tqdm_progress_is_one_plain_line_per_kernel(monkeypatch):
    from fusec.loops.schedule import Schedule
    from fusec.tune.jobs import Trial

    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm fails
    out = io.StringIO()
    bar = Progress(out)
    assert bar.tqdm is None
    r = _fake_run(3)
    bar(r, None)
    for t in (Trial(Schedule(), "ok", samples=[2e-3]), Trial(Schedule(), "crash", "boom")):
        r.trials.append(t)
        bar(r, t)
    bar.close()
    assert out.getvalue() == "g_k0: 2/3 trials, best 2.000 ms, 1 failed\n"


def test_with_tqdm_the_bar_counts_trials_best_and_failures():
    pytest.importorskip("tqdm")
    from fusec.loops.schedule import Schedule
    from fusec.tune.jobs import Trial

    out = io.StringIO()
    bar = Progress(out)
    r = _fake_run(4)
    bar(r, None)
    for t in (Trial(Schedule(), "ok", samples=[5e-3]), Trial(Schedule(), "wrong", "x"), Trial(Schedule(), "ok", samples=[1e-3])):
        r.trials.append(t)
        bar(r, t)
    bar.close()
    text = out.getvalue()
    assert "g_k0" in text and "3/3" in text and "best 1.000 ms, 1 failed" in text
