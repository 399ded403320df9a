"""Tuning on a Dask cluster: builds and measurements go through a `distributed` client's executor,
on a LocalCluster on loopback; each measurement names the worker's machine. Skipped without the
`dask` extra."""

from __future__ import annotations

import pytest

import fusec
from fusec.pipeline import lower_all
from fusec.tune import TuneDB, TuneSettings, best_schedule, tune_graph
from fusec.tune.executors import make_executor
from fusec.tune.signature import machine_id, machine_signature

distributed = pytest.importorskip("distributed")

CHAIN = "graph chain(x: f32[64, 32]) {\n  y = (x * 2 + 1) * x - 3\n  return y\n}\n"


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  protocol="tcp://", host="127.0.0.1") as c:  # loopback only
        yield c


def test_a_kernel_is_tuned_through_a_dask_cluster(cluster, tmp_path):
    graph, kernels = lower_all(fusec.parse(CHAIN))
    db = TuneDB(tmp_path / "tune.jsonl")
    settings = TuneSettings(strategy="random", budget=4, repeats=2, min_sample_s=0.0005, confirm=1)
    with distributed.Client(cluster) as client:
        executor = client.get_executor()
        (result,) = tune_graph(graph, kernels, "c", settings, db=db, executor=executor)
        ran_on = set(client.run(lambda: 1))  # the worker addresses
    assert ran_on and [t.status for t in result.trials] == ["ok"] * 4
    assert all(t.machine == machine_signature() for t in result.trials)  # the worker's machine (here, this one)
    (rec,) = db.read().records
    assert rec["worker"] and rec["machine_id"] == machine_id(rec["machine"])
    assert all(t["machine_id"] == rec["machine_id"] for t in rec["trials"])
    assert best_schedule(kernels[0][1], fusec.codegen.get_backend("c"), db) == result.best.schedule


def test_the_cli_executor_names_a_dask_scheduler(cluster):
    executor, client = make_executor("dask://" + cluster.scheduler_address.removeprefix("tcp://"))
    try:
        assert executor.submit(pow, 2, 5).result(timeout=30) == 32
    finally:
        client.close()


def test_an_unreachable_scheduler_is_a_clean_error():
    with pytest.raises(fusec.FusecError, match="cannot reach the Dask scheduler"):
        make_executor("dask://127.0.0.1:9")
