"""The database key: a change of any part (kernel, shapes, dtypes, backend, compiler, flags, codegen
version, machine) is a miss, never a stale hit; a second tune or compile measures nothing new."""

from __future__ import annotations

import concurrent.futures
from dataclasses import replace

import numpy as np
import pytest

import fusec
import fusec.tune.signature as signature
from fusec.codegen import get_backend
from fusec.codegen.c_backend import CBackend
from fusec.loops.schedule import Schedule
from fusec.pipeline import lower_all
from fusec.tune import TuneDB, TuneSettings, best_record, tune_graph
from fusec.tune.signature import FORMAT, key_parts, record_key
from fusec.tune.space import schedule_to_dict

CHAIN = "graph chain(x: f32[64, 32]) {\n  y = (x * 2 + 1) * x - 3\n  return y\n}\n"
TUNED = Schedule((512,), False, True, 1)


def nest_of(text: str):
    return lower_all(fusec.parse(text))[1][0][1]


@pytest.fixture
def db(tmp_path):
    """A database holding one record for the chain kernel on the C backend, this machine."""
    nest, backend = nest_of(CHAIN), get_backend("c")
    d = TuneDB(tmp_path / "tune.jsonl")
    d.append({"format": FORMAT, "key": record_key(nest, backend), "kernel": nest.name, "backend": "c",
              "best": {"schedule": schedule_to_dict(TUNED), "status": "ok", "median_s": 1e-5}})
    assert best_record(nest, backend, d) is not None  # the hit every case below must turn into a miss
    return d


@pytest.mark.parametrize("part, text", [
    ("kernel", CHAIN.replace("- 3", "- 4")),
    ("shapes", CHAIN.replace("64, 32", "64, 64")),
    ("dtypes", CHAIN.replace("f32", "f64")),
])
def test_another_kernel_shape_or_dtype_is_a_miss(db, part, text):
    nest, backend = nest_of(text), get_backend("c")
    before = key_parts(nest_of(CHAIN), backend)
    changed = {k for k, v in key_parts(nest, backend).items() if before[k] != v}
    assert part in changed
    assert best_record(nest, backend, db) is None


def test_another_backend_is_a_miss(db):
    assert best_record(nest_of(CHAIN), get_backend("numpy"), db) is None


def test_another_compiler_is_a_miss(db):
    backend = CBackend()
    backend.compiler = replace(backend.compiler, identity=backend.compiler.identity + " (patched)")
    assert key_parts(nest_of(CHAIN), backend)["compiler"] != key_parts(nest_of(CHAIN), CBackend())["compiler"]
    assert best_record(nest_of(CHAIN), backend, db) is None


def test_other_flags_are_a_miss(db):
    backend = CBackend(fast_math=True)
    assert key_parts(nest_of(CHAIN), backend)["flags"] != key_parts(nest_of(CHAIN), CBackend())["flags"]
    assert best_record(nest_of(CHAIN), backend, db) is None


def test_another_codegen_version_is_a_miss(db, monkeypatch):
    monkeypatch.setattr(signature, "codegen_version", lambda: "0.0.0+changed")
    assert best_record(nest_of(CHAIN), get_backend("c"), db) is None


def test_another_machine_is_a_miss(db, monkeypatch):
    real = signature.machine_signature()
    monkeypatch.setattr(signature, "machine_signature", lambda: {**real, "cores": real["cores"] + 1})
    assert best_record(nest_of(CHAIN), get_backend("c"), db) is None


def test_the_codegen_version_follows_the_code_generators_source():
    version = signature.codegen_version()
    assert version.split("+")[0] and len(version.split("+")[1]) == 12


class CountingPool(concurrent.futures.ThreadPoolExecutor):
    def __init__(self):
        super().__init__(max_workers=2)
        self.submitted = 0

    def submit(self, fn, /, *args, **kwargs):
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_a_second_tune_and_compile_measure_nothing_new(tmp_path):
    graph, kernels = lower_all(fusec.parse(CHAIN))
    db = TuneDB(tmp_path / "tune.jsonl")
    settings = TuneSettings(strategy="random", budget=4, repeats=2, min_sample_s=0.0005, confirm=1)
    with CountingPool() as pool:
        (first,) = tune_graph(graph, kernels, "c", settings, db=db, executor=pool)
        assert pool.submitted > 0 and not first.reused
    size = db.path.stat().st_size
    with CountingPool() as pool:
        (second,) = tune_graph(graph, kernels, "c", settings, db=db, executor=pool)
        assert pool.submitted == 0  # nothing built, nothing measured
    assert second.reused and second.best.schedule == first.best.schedule
    assert second.best.median_s == pytest.approx(first.best.median_s, rel=1e-5)
    assert db.path.stat().st_size == size  # and nothing stored again
    compiled = fusec.compile(fusec.parse(CHAIN), tune_db=db.path)
    assert compiled.stages.schedules[0] == first.best.schedule
    x = np.random.default_rng(0).standard_normal((64, 32), dtype=np.float32)
    np.testing.assert_allclose(compiled(x), fusec.interpret(compiled.graph, x), rtol=1e-5, atol=1e-5)
    assert db.path.stat().st_size == size
    # asking for more trials than stored measures again, and so does --retune
    with CountingPool() as pool:
        (third,) = tune_graph(graph, kernels, "c", replace(settings, retune=True), db=db, executor=pool)
        assert pool.submitted > 0 and not third.reused
