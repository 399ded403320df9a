"""Measuring candidates safely: a backend with injected faults (a compile error, a segfault, an
exception, a hang, a wrong result, an exit) must give typed failures while the tuner carries on and
stores the fastest correct schedule."""

from __future__ import annotations

import concurrent.futures
import ctypes
import multiprocessing
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

import fusec
from fusec.codegen.c_backend import CBackend
from fusec.inputs import random_inputs
from fusec.interp import evaluate
from fusec.loops.schedule import Schedule
from fusec.pipeline import lower_all
from fusec.runtime.build import FusecCompileError
from fusec.tune import TuneDB, TuneSettings, best_schedule, search_space, tune_graph
from fusec.tune.isolate import IsolatedRunner
from fusec.tune.jobs import BackendSpec, KernelJob
from fusec.tune.signature import machine_signature
from fusec.tune.tuner import PASS_ENV, _save_arrays, history

CHAIN = "graph chain(x: f32[64, 32]) {\n  y = (x * 2 + 1) * x - 3\n  return y\n}\n"

# schedule -> the fault this backend injects into it (everything else builds and runs correctly)
FAULTS = {
    Schedule((0,), False, False, 8): "compile",
    Schedule((2048,), False, False, 8): "segfault",
    Schedule((2048,), True, False, 8): "raise",
    Schedule((0,), False, False, 4): "hang",
    Schedule((2048,), False, False, 1): "wrong",
    Schedule((2048,), False, False, 4): "exit",
}


class FaultyBackend(CBackend):
    """The C backend, with the faults of FAULTS injected by schedule."""

    def build(self, graph, group, nest, schedule):
        fault = FAULTS.get(schedule)
        if fault == "compile":
            raise FusecCompileError("injected: the compiler rejected this kernel")
        kernel = super().build(graph, group, nest, schedule)
        real = kernel.run
        if fault == "segfault":
            def run(*arrays):
                ctypes.string_at(0)  # reads address 0: SIGSEGV
        elif fault == "raise":
            def run(*arrays):
                raise RuntimeError("injected failure inside the kernel")
        elif fault == "hang":
            def run(*arrays):
                time.sleep(3600)
        elif fault == "wrong":
            def run(*arrays):
                real(*arrays)
                arrays[-1][...] += 1.0  # the output is the last buffer
        elif fault == "exit":
            def run(*arrays):
                os._exit(3)
        else:
            return kernel
        return replace(kernel, run=run)


def test_faults_are_typed_and_the_tuner_goes_on(tmp_path):
    g = fusec.parse(CHAIN)
    db = TuneDB(tmp_path / "tune.jsonl")
    size = len(search_space(lower_all(g)[1][0][1], "c"))
    settings = TuneSettings(strategy="exhaustive", budget=size, timeout_s=4.0, repeats=3, min_sample_s=0.0005)
    start = time.monotonic()
    (result,) = tune_graph(*lower_all(g), "c", settings, db=db, backend_factory="test_tune_measure:FaultyBackend")
    elapsed = time.monotonic() - start
    by_schedule = {t.schedule: t for t in result.trials}
    assert len(result.trials) == size and set(FAULTS) <= set(by_schedule)
    expected = {"compile": "compile", "segfault": "crash", "raise": "crash", "hang": "timeout", "wrong": "wrong", "exit": "crash"}
    for schedule, fault in FAULTS.items():
        assert by_schedule[schedule].status == expected[fault], (fault, by_schedule[schedule].detail)
    assert "SIGSEGV" in by_schedule[Schedule((2048,), False, False, 8)].detail
    assert "injected failure inside the kernel" in by_schedule[Schedule((2048,), True, False, 8)].detail
    assert "status 3" in by_schedule[Schedule((2048,), False, False, 4)].detail
    assert "beyond the tolerance" in by_schedule[Schedule((2048,), False, False, 1)].detail
    assert "injected: the compiler rejected" in by_schedule[Schedule((0,), False, False, 8)].detail
    assert dict(result.failures) == {"compile": 1, "crash": 3, "timeout": 1, "wrong": 1}
    assert elapsed < 300  # the hang (an hour's sleep) cost one 4 s timeout, not the run (28 trials on a busy machine)
    # failed candidates carry no time; the best is a correct one and it is stored
    assert all(t.median_s is None for t in result.trials if not t.ok)
    assert result.best.ok and result.best.schedule not in FAULTS
    assert result.default.ok and result.speedup >= 1.0
    (rec,) = db.read().records
    assert rec["failures"] == {"compile": 1, "crash": 3, "timeout": 1, "wrong": 1}
    assert {t["status"] for t in rec["trials"]} == {"ok", "compile", "crash", "timeout", "wrong"}
    assert rec["best"]["median_s"] == result.best.median_s
    nest = lower_all(g)[1][0][1]
    assert best_schedule(nest, FaultyBackend(), db) == result.best.schedule


def _job(tmp_path, factory: str = "") -> KernelJob:
    g = fusec.parse(CHAIN)
    graph, ((group, nest),) = lower_all(g)
    values = evaluate(graph, random_inputs(graph), keep_all=True)
    _save_arrays(tmp_path, nest, values)
    env = tuple((k, os.environ[k]) for k in PASS_ENV if k in os.environ)
    return KernelJob(BackendSpec("c", (), factory), graph, group, nest, tmp_path, env, 1, 3, 0.0005)


def test_a_hang_is_killed_at_the_timeout(tmp_path):
    runner = IsolatedRunner(timeout_s=2.0)
    start = time.monotonic()
    result = runner.run(_job(tmp_path, "test_tune_measure:FaultyBackend"), Schedule((0,), False, False, 4))
    assert result["status"] == "timeout" and "2 s" in result["detail"]
    assert time.monotonic() - start < 30  # the kernel sleeps for an hour; the runner does not wait for it


def test_a_correct_candidate_reports_timed_samples(tmp_path):
    result = IsolatedRunner(timeout_s=30).run(_job(tmp_path), Schedule((512,), True, True, 1))
    assert result["status"] == "ok", result
    assert len(result["samples"]) == 3 and all(s > 0 for s in result["samples"])
    assert result["calls"] >= 1


def test_bad_settings_are_user_errors():
    g = fusec.parse(CHAIN)
    for bad in (TuneSettings(budget=0), TuneSettings(timeout_s=0), TuneSettings(strategy="anneal")):
        with pytest.raises(fusec.FusecError):
            tune_graph(*lower_all(g), "c", bad)


class CountingPool(concurrent.futures.ProcessPoolExecutor):
    """A process pool that counts what it is given: builds must cross a process boundary as data."""

    def __init__(self):
        super().__init__(max_workers=2, mp_context=multiprocessing.get_context("forkserver"))
        self.submitted = 0

    def submit(self, fn, /, *args, **kwargs):
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_builds_and_measurements_go_through_any_executor_and_history_feeds_the_model(tmp_path):
    g = fusec.parse(CHAIN)
    db = TuneDB(tmp_path / "tune.jsonl")
    settings = TuneSettings(strategy="random", budget=3, repeats=2, min_sample_s=0.0005, confirm=0)
    with CountingPool() as pool:
        (result,) = tune_graph(*lower_all(g), "c", settings, db=db, executor=pool)
        assert pool.submitted == 6  # a build and a measurement each: the default, then a batch of two
    assert [t.status for t in result.trials] == ["ok"] * 3
    assert all(t.machine == machine_signature() and t.load is not None for t in result.trials)
    # a later run of the same kernel starts its model from these measurements
    assert {s for s, _ in history(db, result.key)} == {t.schedule for t in result.trials}


def test_sanitize_mode_is_refused(monkeypatch):
    monkeypatch.setenv("FUSEC_SANITIZE", "1")
    with pytest.raises(fusec.FusecError, match="not for timing"):
        tune_graph(*lower_all(fusec.parse(CHAIN)), "c", TuneSettings(budget=1))


def test_tuning_from_a_script_without_a_main_guard(tmp_path):
    """A worker must not re-run the caller's main script (here: stdin, which cannot be re-run)."""
    script = (
        "import fusec\n"
        "from fusec.pipeline import lower_all\n"
        "from fusec.tune import TuneDB, TuneSettings, tune_graph\n"
        f"g = fusec.parse({CHAIN!r})\n"
        f"(r,) = tune_graph(*lower_all(g), 'c', TuneSettings(budget=2, repeats=2, confirm=0), db=TuneDB({str(tmp_path / 't.jsonl')!r}))\n"
        "print('statuses', [t.status for t in r.trials])\n"
    )
    r = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "statuses ['ok', 'ok']" in r.stdout
    assert "Traceback" not in r.stderr


def test_a_matmul_on_blas_is_measured_over_its_rows_per_call(tmp_path):
    g = fusec.parse("graph mm(a: f32[8, 16], b: f32[16, 4]) {\n  y = matmul(a, b)\n  return y\n}\n")
    db = TuneDB(tmp_path / "t.jsonl")
    (result,) = tune_graph(*lower_all(g), "c", TuneSettings(budget=4), db=db)
    assert not result.skipped and {t.schedule.matmul_rows for t in result.trials} <= {8, 4, 2}


class SlowBuildBackend(CBackend):
    """Builds the default schedule; any other build hangs (well past the test's build timeout)."""

    def build(self, graph, group, nest, schedule):
        if schedule != self.default_schedule(nest):
            time.sleep(8)
        return super().build(graph, group, nest, schedule)


def test_a_build_that_hangs_is_a_timeout(tmp_path):
    settings = TuneSettings(strategy="random", budget=2, repeats=2, confirm=0, build_timeout_s=3.0)
    # threads: no pool start-up inside the build timeout (the default build must finish within it)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        (result,) = tune_graph(*lower_all(fusec.parse(CHAIN)), "c", settings, db=TuneDB(tmp_path / "t.jsonl"),
                               backend_factory="test_tune_measure:SlowBuildBackend", executor=pool)
    assert [t.status for t in result.trials] == ["ok", "timeout"]
    assert "the build took more than 3 s" in result.trials[1].detail


def test_the_numpy_backend_tunes_too(tmp_path):
    g = fusec.parse("graph sm(x: f32[64, 96]) {\n  y = exp(x - max(x, axis=-1, keepdims=true))\n  return y\n}\n")
    db = TuneDB(tmp_path / "t.jsonl")
    (result,) = tune_graph(*lower_all(g), "numpy", TuneSettings(budget=3, repeats=2, confirm=1), db=db)
    assert [t.status for t in result.trials] == ["ok"] * len(result.trials) and len(result.trials) >= 2
    (rec,) = db.read().records
    assert rec["backend"] == "numpy" and rec["best"]["median_s"] > 0


class SlowBuildPool(CountingPool):
    """Each build takes an extra BUILD_S of wall time, as a slow compiler would."""

    BUILD_S = 2.5

    def __init__(self):
        super().__init__()
        self.builds = self.measures = 0

    def submit(self, fn, /, *args, **kwargs):
        if fn.__name__ == "build_candidate":
            self.builds += 1
            time.sleep(self.BUILD_S)
        else:
            self.measures += 1
        return super().submit(fn, *args, **kwargs)


def test_once_the_seconds_have_passed_a_started_batch_is_not_measured(tmp_path):
    g = fusec.parse(CHAIN)
    # the default is built (2.5 s) and measured before 6 s have passed; the batch of two builds until 7.5 s
    settings = TuneSettings(strategy="random", budget=3, batch=2, repeats=2, min_sample_s=0.0005, confirm=0,
                            seconds=6.0)
    with SlowBuildPool() as pool:
        (result,) = tune_graph(*lower_all(g), "c", settings, db=TuneDB(tmp_path / "tune.jsonl"), executor=pool)
    if pool.builds == 1:
        pytest.skip("the default alone took more than 6 s on this machine (busy)")
    assert pool.builds == 3 and pool.measures == 1
    assert [t.schedule for t in result.trials] == [result.space.default]


def test_a_causally_masked_matmul_is_checked_where_it_is_read(tmp_path):
    # q @ k^T computes only the band the causal mask keeps (loops/masks.py); the elements outside are
    # never read, so the check before timing must not count them as wrong (it did: every candidate
    # of examples/08's scores kernel was 'wrong', and the kernel could not be tuned)
    g = fusec.load(Path(__file__).resolve().parent.parent / "examples" / "08_attention.fg", sizes={"H": 2, "S": 64, "Dh": 16})
    db = TuneDB(tmp_path / "t.jsonl")
    results = tune_graph(*lower_all(g), "c", TuneSettings(budget=3, repeats=2, confirm=0), db=db)
    masked = [r for r in results if r.kind == "matmul"]
    assert masked
    for r in masked:
        assert all(t.status == "ok" for t in r.trials), [(t.status, t.detail) for t in r.trials]
