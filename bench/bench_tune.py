"""Tuned against default schedules (reduced sizes unless --bench-full), triad measured in the same run.

Run: pytest bench/bench_tune.py --benchmark-only --benchmark-group-by=param:workload

For each workload the module first tunes the graph (model strategy, budget 8) into a temporary
database, then times the compiled graph twice: built with default schedules (tune_db=False) and with
the tuned ones. Both write into caller-provided outputs. Each benchmark's extra_info holds the
schedules and the tuner's own default/best medians. A separate benchmark times one isolated
measurement of a tiny kernel: the tuner's fixed cost per candidate (fork, build from the cache,
check, time).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from c_harness import example

import fusec
from fusec.inputs import random_inputs
from fusec.interp import evaluate
from fusec.loops.defaults import default_schedule
from fusec.pipeline import lower_all
from fusec.runtime.probes import measure_triad
from fusec.tune import TuneDB, TuneSettings, tune_graph
from fusec.tune.isolate import IsolatedRunner
from fusec.tune.jobs import BackendSpec, KernelJob
from fusec.tune.tuner import _save_arrays

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ["01_chain", "02_gelu", "03_softmax", "04_layernorm"]


@pytest.fixture(scope="module")
def triad_gbs() -> float:
    return measure_triad(repeats=10).best_gbs


@pytest.fixture(scope="module", params=WORKLOADS)
def workload(request, tmp_path_factory):
    graph = example(request.param)  # reduced sizes unless --bench-full (bench/conftest.py)
    db = tmp_path_factory.mktemp("tune") / "tune.jsonl"
    results = tune_graph(*lower_all(graph), "c", TuneSettings(strategy="model", budget=8), db=TuneDB(db))
    xs = random_inputs(graph, seed=0)
    default = fusec.compile(graph, backend="c", tune_db=False)
    tuned = fusec.compile(graph, backend="c", tune_db=db)
    return request.param, xs, default, tuned, results


def _bench(benchmark, compiled, xs, triad_gbs, label, results):
    outs = tuple(np.empty(o.shape, o.dtype) for o in compiled.outputs)
    compiled(*xs, out=outs)  # warm: pages of the outputs touched, libraries loaded
    benchmark(compiled, *xs, out=outs)
    benchmark.extra_info.update(
        variant=label,
        triad_gbs=triad_gbs,
        schedules=[str(s) for s in compiled.stages.schedules],
        tuner=[{"kernel": r.name, "default_ms": r.default.median_s * 1e3 if r.default and r.default.ok else None,
                "best_ms": r.best.median_s * 1e3 if r.best else None, "speedup": r.speedup} for r in results],
    )


@pytest.mark.parametrize("variant", ["default", "tuned"])
def test_compiled(benchmark, workload, variant, triad_gbs):
    name, xs, default, tuned, results = workload
    _bench(benchmark, default if variant == "default" else tuned, xs, triad_gbs, variant, results)


@pytest.mark.parametrize("workload", ["isolation"])  # a group of its own under --benchmark-group-by=param:workload
def test_isolated_measurement_overhead(benchmark, workload):
    """One candidate of a 2048-element kernel, measured in its own process (the per-candidate cost)."""
    g = fusec.parse("graph chain(x: f32[64, 32]) {\n  y = (x * 2 + 1) * x - 3\n  return y\n}\n")
    graph, ((group, nest),) = lower_all(g)
    with tempfile.TemporaryDirectory() as tmp:
        _save_arrays(Path(tmp), nest, evaluate(graph, random_inputs(graph), keep_all=True))
        job = KernelJob(BackendSpec("c"), graph, group, nest, Path(tmp), (), 1, 3, 0.0005)
        runner = IsolatedRunner(60)
        schedule = default_schedule(nest, "c")
        assert runner.run(job, schedule)["status"] == "ok"
        benchmark.pedantic(runner.run, args=(job, schedule), rounds=10)
