"""Every fault the hook (fusec.tune.faults) injects ends as its typed failure record, and the tuner
still finishes with a correct best that it stores."""

from __future__ import annotations

import time

import pytest

import fusec
from fusec.pipeline import lower_all
from fusec.tune import FAILURES, TuneDB, TuneSettings, best_schedule, search_space, tune_graph
from fusec.tune.faults import EXPECTED, FaultyBackend

CHAIN = "graph chain(x: f32[64, 32]) {\n  y = (x * 2 + 1) * x - 3\n  return y\n}\n"


def test_every_fault_kind_is_typed_and_the_tuner_finishes(tmp_path):
    graph, kernels = lower_all(fusec.parse(CHAIN))
    space = search_space(kernels[0][1], "c")
    victims = space.candidates[1:1 + len(EXPECTED)]  # never the default
    faults = tuple((str(s), kind) for s, kind in zip(victims, EXPECTED))
    db = TuneDB(tmp_path / "tune.jsonl")
    settings = TuneSettings(strategy="exhaustive", budget=len(space), timeout_s=4.0, repeats=3, min_sample_s=0.0005)
    start = time.monotonic()
    (result,) = tune_graph(graph, kernels, "c", settings, db=db, backend_factory="fusec.tune.faults:FaultyBackend",
                           backend_options={"faults": faults})
    assert time.monotonic() - start < 300  # the hang (forever) cost one 4 s timeout, not the run
    by_schedule = {t.schedule: t for t in result.trials}
    for schedule, kind in zip(victims, EXPECTED):
        trial = by_schedule[schedule]
        assert trial.status == EXPECTED[kind], (kind, trial.status, trial.detail)
        assert trial.median_s is None
    details = {kind: by_schedule[s].detail for s, kind in zip(victims, EXPECTED)}
    assert "SIGSEGV" in details["segfault"]
    assert "guard bytes after it" in details["oob_write"]
    assert "could not allocate" in details["huge_alloc"]
    assert "injected: the compiler rejected" in details["compile"]
    assert "beyond the tolerance" in details["wrong"]
    assert "no result within 4 s" in details["hang"]
    assert dict(result.failures) == {EXPECTED[k]: 1 for k in EXPECTED}
    assert set(result.failures) == set(FAILURES)  # every failure type the tuner knows has a fault here
    # a valid best: correct, not a victim, stored, and what compile then takes
    best = result.best
    assert best.ok and best.schedule not in victims and result.default.ok
    (rec,) = db.read().records
    assert rec["failures"] == {EXPECTED[k]: 1 for k in EXPECTED}
    assert rec["best"]["median_s"] == best.median_s
    assert best_schedule(kernels[0][1], FaultyBackend(faults), db) == best.schedule


def test_an_unknown_fault_kind_is_refused():
    with pytest.raises(ValueError, match="unknown fault kinds"):
        FaultyBackend((("x", "meteor"),))
