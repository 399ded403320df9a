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
from fusec.cli.main import main
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


def in_process(capsys, *args) -> tuple[int, str, str]:
    """The CLI's main() in this process (no interpreter start-up): exit code, stdout, stderr."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_stored_shows_what_compile_takes(tmp_path, capsys):
    db = tmp_path / "tune.jsonl"
    code, out, err = in_process(capsys, "tune", CHAIN, *SETS, "--stored", "--db", db)
    assert code == 0, err
    assert out.startswith("kernel chain_k0 (elementwise): not tuned on this machine; compile uses the default ")
    store_tuned(db)
    code, out, err = in_process(capsys, "tune", CHAIN, *SETS, "--stored", "--db", db)
    assert code == 0, err
    assert f"compile uses {TUNED} (1.0 us)" in out


def test_cli_text_report_after_a_corrupt_line(tmp_path, capsys):
    db = tmp_path / "t.jsonl"
    db.write_text("this is not json\n")
    code, out, err = in_process(capsys, "tune", CHAIN, *SETS, "--budget", "2", "--strategy", "random", "--db", db,
                                "--repeats", "3")
    assert code == 0, err
    assert f"warning: {db}:1: not valid JSON" in err
    lines = out.splitlines()
    assert lines[0] == "tuned graph chain: 1 kernel, backend c, budget 2 trials per kernel"
    assert lines[1].startswith("kernel chain_k0 (elementwise): ") and "strategy random" in lines[1]
    assert lines[2].startswith("  tried 2 in ") and "2 ok, 0 failed" in lines[2]
    assert lines[3].startswith("  default  tiles=") and "spread" in lines[3]
    assert lines[4].startswith("  best     tiles=") and "x the default" in lines[4]
    assert lines[-1] == f"stored 1 record in {db}"
    contents = TuneDB(db).read()  # the corrupt line is still reported, the new record is usable
    assert len(contents.records) == 1 and len(contents.problems) == 1


def test_cli_list_measures_nothing(tmp_path, capsys):
    code, out, err = in_process(capsys, "tune", CHAIN, *SETS, "--list", "--db", tmp_path / "t.jsonl")
    assert code == 0, err
    assert out.startswith("kernel chain_k0 (elementwise): ") and " candidates (" in out
    assert "  default      tiles=" in out
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize("args, message", [
    (["--budget", "0"], "the budget must be at least 1"),
    (["--timeout", "0"], "the timeout must be positive"),
    (["--strategy", "exhaustive", "--budget", "2"], "more than the budget of 2"),
    (["--set", "N=x"], "is not an integer"),
    (["--strategy", "annealing"], "invalid choice"),
])
def test_cli_mistakes_are_clean_errors(tmp_path, capsys, args, message):
    code, out, err = in_process(capsys, "tune", CHAIN, *SETS, *args, "--db", tmp_path / "t.jsonl")
    assert code == 2, out + err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "t.jsonl").exists()


def test_cli_missing_file_is_a_clean_error(capsys):
    code, _, err = in_process(capsys, "tune", "no/such/file.fg")
    assert code == 2 and "no/such/file.fg" in err
