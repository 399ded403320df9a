"""The tuning database: round trip, corrupt and torn lines, concurrent appends, and the lookup
compile uses (best record wins, other machines and stale schedules are ignored)."""

from __future__ import annotations

import json
import multiprocessing
import warnings

import pytest

import fusec
from fusec.codegen import get_backend
from fusec.loops.schedule import Schedule
from fusec.pipeline import lower_all
from fusec.tune import TuneDB, best_record, best_schedule, default_db_path
from fusec.tune.signature import FORMAT, kernel_hash, machine_id, record_key
from fusec.tune.space import schedule_from_dict, schedule_to_dict

CHAIN = "graph chain(x: f32[64, 32]) {\n  y = (x * 2 + 1) * x - 3\n  return y\n}\n"


@pytest.fixture(scope="module")
def kernel():
    g = fusec.parse(CHAIN)
    (group, nest), = lower_all(g)[1]
    return g, group, nest


@pytest.fixture(scope="module")
def backend():
    return get_backend("c")


def record(key: str, schedule: Schedule, seconds: float, **extra) -> dict:
    rec = {"format": FORMAT, "key": key, "kernel": "chain_k0", "backend": "c",
           "best": {"schedule": schedule_to_dict(schedule), "status": "ok", "median_s": seconds}}
    rec.update(extra)
    return rec


def test_schedule_dict_round_trip():
    s = Schedule((8, 0), True, False, 4, (1, 0))
    assert schedule_from_dict(json.loads(json.dumps(schedule_to_dict(s)))) == s
    with pytest.raises(fusec.FusecError):
        schedule_from_dict({"tiles": ["x"]})
    with pytest.raises(fusec.FusecError):
        schedule_from_dict({"tiles": [4], "parallel": "yes"})


def test_round_trip_and_best_of_several(tmp_path, kernel, backend):
    _, _, nest = kernel
    db = TuneDB(tmp_path / "tune.jsonl")
    key = record_key(nest, backend)
    slow, fast = Schedule((64,), True, True, 1), Schedule((512,), False, True, 1)
    db.append(record(key, slow, 2e-3))
    db.append(record(key, fast, 1e-3))
    db.append(record("another-kernel", Schedule((8,)), 1e-6))
    contents = db.read()
    assert contents.problems == []
    assert [r["best"]["median_s"] for r in contents.records] == [2e-3, 1e-3, 1e-6]
    assert best_schedule(nest, backend, db) == fast  # the fastest record of this key, not of another
    assert best_schedule(nest, backend, str(db.path)) == fast


def test_missing_db_means_no_schedule(tmp_path, kernel, backend):
    assert best_schedule(kernel[2], backend, tmp_path / "nothing.jsonl") is None


def test_corrupt_lines_are_reported_and_skipped(tmp_path, kernel, backend):
    _, _, nest = kernel
    path = tmp_path / "tune.jsonl"
    db = TuneDB(path)
    key = record_key(nest, backend)
    good = Schedule((128,), True, True, 1)
    db.append(record(key, Schedule((64,),), 5e-3))
    with open(path, "a") as f:
        f.write("{not json at all\n")
        f.write("[1, 2, 3]\n")
        f.write(json.dumps({"format": FORMAT, "key": key}) + "\n")  # no best
        f.write(json.dumps(record(key, good, -1.0)) + "\n")  # impossible time
        f.write(b"\xff\xfe".decode("latin-1") + "\n")
    db.append(record(key, good, 1e-3))
    contents = db.read()
    assert len(contents.records) == 2
    assert len(contents.problems) == 5
    assert all("line skipped" in p and str(path) in p for p in contents.problems)
    assert "not valid JSON" in contents.problems[0]
    with pytest.warns(UserWarning, match="tuning database"):
        assert best_schedule(nest, backend, db) == good


def test_append_after_a_torn_line_starts_a_new_line(tmp_path, kernel, backend):
    path = tmp_path / "tune.jsonl"
    key = record_key(kernel[2], backend)
    path.write_text(json.dumps(record(key, Schedule((64,)), 1e-3))[:40])  # a write cut short, no newline
    db = TuneDB(path)
    db.append(record(key, Schedule((256,)), 2e-3))
    contents = db.read()
    assert len(contents.records) == 1 and len(contents.problems) == 1
    assert contents.records[0]["best"]["schedule"]["tiles"] == [256]


def test_other_format_versions_and_machines_are_ignored(tmp_path, kernel, backend):
    _, _, nest = kernel
    db = TuneDB(tmp_path / "tune.jsonl")
    db.append(record(record_key(nest, backend), Schedule((64,)), 1e-3, format=FORMAT + 1))
    db.append(record(record_key(nest, backend, machine="elsewhere"), Schedule((64,)), 1e-3))
    assert db.read().problems == []
    assert best_schedule(nest, backend, db) is None


def test_a_stored_schedule_that_no_longer_applies_is_skipped(tmp_path, kernel, backend):
    _, _, nest = kernel
    db = TuneDB(tmp_path / "tune.jsonl")
    key = record_key(nest, backend)
    db.append(record(key, Schedule((4, 4, 4)), 1e-6))  # three tiles for a one-dimensional nest
    db.append(record(key, Schedule((32,), True, True, 1), 1e-3))
    assert best_schedule(nest, backend, db) == Schedule((32,), True, True, 1)
    assert best_record(nest, backend, db)["best"]["median_s"] == 1e-3


def test_key_depends_on_what_the_kernel_computes(kernel, backend):
    _, _, nest = kernel
    other = lower_all(fusec.parse(CHAIN.replace("- 3", "- 4")))[1][0][1]
    bigger = lower_all(fusec.parse(CHAIN.replace("64, 32", "64, 64")))[1][0][1]
    renamed = lower_all(fusec.parse(CHAIN.replace("graph chain", "graph other")))[1][0][1]
    assert kernel_hash(nest) != kernel_hash(other)
    assert kernel_hash(nest) != kernel_hash(bigger)
    assert kernel_hash(nest) == kernel_hash(renamed)  # the kernel's name is not part of it
    assert record_key(nest, backend) != record_key(nest, get_backend("numpy"))
    assert len(machine_id()) == 16


def _append_many(path: str, worker: int, n: int) -> None:
    db = TuneDB(path)
    for i in range(n):
        db.append({"format": FORMAT, "key": f"w{worker}", "kernel": "k", "backend": "c", "pad": "x" * 5000,
                   "best": {"schedule": {"tiles": [i]}, "median_s": 1.0 + i}})


def test_concurrent_appends_never_interleave(tmp_path):
    path = tmp_path / "tune.jsonl"
    ctx = multiprocessing.get_context("fork")  # separate processes, without re-importing fusec in each
    procs = [ctx.Process(target=_append_many, args=(str(path), w, 25)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    contents = TuneDB(path).read()
    assert contents.problems == []
    assert sorted((r["key"], r["best"]["schedule"]["tiles"][0]) for r in contents.records) == sorted(
        (f"w{w}", i) for w in range(3) for i in range(25))


def test_default_path_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEC_TUNE_DB", str(tmp_path / "mine.jsonl"))
    assert default_db_path() == tmp_path / "mine.jsonl"
    monkeypatch.delenv("FUSEC_TUNE_DB")
    monkeypatch.setenv("FUSEC_CACHE_DIR", str(tmp_path / "cache"))
    assert default_db_path() == tmp_path / "cache" / "tune.jsonl"


def test_unwritable_db_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(fusec.FusecError, match="cannot write the tuning database"):
        TuneDB(blocker / "tune.jsonl").append({"x": 1})


def test_no_warning_for_a_clean_db(tmp_path, kernel, backend):
    db = TuneDB(tmp_path / "tune.jsonl")
    db.append(record(record_key(kernel[2], backend), Schedule((64,)), 1e-3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert best_schedule(kernel[2], backend, db) == Schedule((64,))


def test_a_quiet_machine_record_wins_over_a_busy_one(tmp_path, kernel, backend):
    _, _, nest = kernel
    db = TuneDB(tmp_path / "tune.jsonl")
    key = record_key(nest, backend)
    serial, parallel = Schedule((64,), False, True, 1), Schedule((64,), True, True, 1)
    db.append(record(key, serial, 1e-4, load_average=100.0))  # fast only because the other core was taken
    db.append(record(key, parallel, 2e-4, load_average=0.1))
    assert best_schedule(nest, backend, db) == parallel
    db.append(record(key, Schedule((128,), True, True, 1), 1.5e-4, load_average=0.2))
    assert best_schedule(nest, backend, db) == Schedule((128,), True, True, 1)
