"""Compile reuses what tuning stored: fusec.compile / compile_stages pick the best stored schedule
for each kernel (tune_db=, $FUSEC_TUNE_DB), and `fusec tune` stores records a later compile finds.
The CLI's mistakes are clean errors (exit 2, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import fusec
from fusec.codegen import get_backend
from fusec.loops.schedule import Schedule
from fusec.pipeline import compile_stages
from fusec.tolerance import compare
from fusec.tune import TuneDB
from fusec.tune.signature import FORMAT, record_key
from fusec.tune.space import schedule_to_dict

CHAIN = ROOT / "examples" / "01_chain.fg"
SIZES = {"N": 33, "M": 47}
SETS = ["--set", "N=33", "--set", "M=47"]
TUNED = Schedule((256,), False, False, 4)  # not what default_schedule picks


def fusec_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fusec", *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def store_tuned(path) -> None:
    nest = compile_stages(CHAIN, backend="c", sizes=SIZES, tune_db=False).nests[0]
    TuneDB(path).append({"format": FORMAT, "key": record_key(nest, get_backend("c")), "kernel": nest.name,
                         "backend": "c", "best": {"schedule": schedule_to_dict(TUNED), "median_s": 1e-6}})


def test_compile_picks_the_stored_schedule(tmp_path):
    db = tmp_path / "tune.jsonl"
    default = compile_stages(CHAIN, backend="c", sizes=SIZES, tune_db=False).schedules[0]
    assert default != TUNED
    store_tuned(db)
    assert compile_stages(CHAIN, backend="c", sizes=SIZES, tune_db=db).schedules[0] == TUNED
    assert compile_stages(CHAIN, backend="c", sizes=SIZES, tune_db=False).schedules[0] == default
    # a record for the C backend says nothing about the NumPy backend
    assert compile_stages(CHAIN, backend="numpy", sizes=SIZES, tune_db=db).schedules[0] != TUNED
    compiled = fusec.compile(CHAIN, backend="c", sizes=SIZES, tune_db=db)
    x = np.random.default_rng(0).standard_normal((33, 47), dtype=np.float32)
    assert compare(compiled(x), fusec.interpret(compiled.graph, x)) is None


def test_the_environment_names_the_default_db(tmp_path, monkeypatch):
    db = tmp_path / "env.jsonl"
    store_tuned(db)
    monkeypatch.setenv("FUSEC_TUNE_DB", str(db))
    assert compile_stages(CHAIN, backend="c", sizes=SIZES).schedules[0] == TUNED


def test_cli_tune_then_compile_uses_the_record(tmp_path):
    db = tmp_path / "tune.jsonl"
    r = fusec_cli("tune", CHAIN, *SETS, "--budget", "3", "--strategy", "model", "--db", db, "--json", "--repeats", "3")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    (k,) = out["kernels"]
    assert out["stored"] == 1 and k["stored"] and k["tried"] == 3 and k["strategy"] == "model"
    assert k["default"]["status"] == "ok" and k["best"]["median_s"] > 0 and k["speedup"] >= 1.0
    assert sum(k["failures"].values()) == 0
    (rec,) = TuneDB(db).read().records
    assert rec["best"]["median_s"] == k["best"]["median_s"] and len(rec["trials"]) == 3
    r = fusec_cli("compile", CHAIN, *SETS, "--show", "loops", env={"FUSEC_TUNE_DB": str(db)})
    assert r.returncode == 0, r.stderr
    assert f"schedule: {k['best']['text']}" in r.stdout
    r = fusec_cli("run", CHAIN, *SETS, "--backend", "c", "--verify", env={"FUSEC_TUNE_DB": str(db)})
    assert r.returncode == 0, r.stdout + r.stderr


def test_cli_stored_shows_what_compile_takes(tmp_path):
    db = tmp_path / "tune.jsonl"
    r = fusec_cli("tune", CHAIN, *SETS, "--stored", "--db", db)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("kernel chain_k0 (elementwise): not tuned on this machine; compile uses the default ")
    store_tuned(db)
    r = fusec_cli("tune", CHAIN, *SETS, "--stored", "--db", db)
    assert r.returncode == 0, r.stderr
    assert f"compile uses {TUNED} (1.0 us)" in r.stdout


def test_cli_text_report(tmp_path):
    r = fusec_cli("tune", CHAIN, *SETS, "--budget", "2", "--strategy", "random", "--db", tmp_path / "t.jsonl",
                  "--repeats", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "tuned graph chain: 1 kernel, backend c, budget 2 per kernel"
    assert lines[1].startswith("kernel chain_k0 (elementwise): ") and "strategy random" in lines[1]
    assert lines[2].startswith("  tried 2 in ") and "2 ok, 0 failed" in lines[2]
    assert lines[3].startswith("  default  tiles=") and "spread" in lines[3]
    assert lines[4].startswith("  best     tiles=") and "x the default" in lines[4]
    assert lines[-1] == f"stored 1 record in {tmp_path / 't.jsonl'}"


def test_cli_list_measures_nothing(tmp_path):
    r = fusec_cli("tune", CHAIN, *SETS, "--list", "--db", tmp_path / "t.jsonl")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("kernel chain_k0 (elementwise): ") and " candidates (" in r.stdout
    assert "  default      tiles=" in r.stdout
    assert not (tmp_path / "t.jsonl").exists()


def test_cli_corrupt_db_is_reported_and_the_run_goes_on(tmp_path):
    db = tmp_path / "t.jsonl"
    db.write_text("this is not json\n")
    r = fusec_cli("tune", CHAIN, *SETS, "--budget", "1", "--db", db, "--repeats", "2")
    assert r.returncode == 0, r.stderr
    assert f"warning: {db}:1: not valid JSON" in r.stderr
    assert "Traceback" not in r.stderr
    contents = TuneDB(db).read()
    assert len(contents.records) == 1 and len(contents.problems) == 1


@pytest.mark.parametrize("args, message", [
    (["--budget", "0"], "the budget must be at least 1"),
    (["--timeout", "0"], "the timeout must be positive"),
    (["--strategy", "exhaustive", "--budget", "2"], "more than the budget of 2"),
    (["--set", "N=x"], "is not an integer"),
])
def test_cli_mistakes_are_clean_errors(tmp_path, args, message):
    r = fusec_cli("tune", CHAIN, *SETS, *args, "--db", tmp_path / "t.jsonl")
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_cli_missing_file_and_bad_strategy():
    r = fusec_cli("tune", "no/such/file.fg")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = fusec_cli("tune", CHAIN, "--strategy", "annealing")
    assert r.returncode == 2 and "invalid choice" in r.stderr
