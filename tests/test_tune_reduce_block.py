"""`reduce_block` (values per f32 block of a long sum, Schedule.reduce_block) is a knob of the search
space: one option per distinct blocking, the others dropped with their reason; every option, built by
either backend, still computes what the interpreter computes; a tuned value is stored and compiled."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

import fusec
from fusec.codegen import get_backend
from fusec.interp import evaluate
from fusec.loops.blocked import REDUCE_BLOCK
from fusec.loops.schedule import Schedule
from fusec.pipeline import compile_stages, lower_all
from fusec.tolerance import compare_output
from fusec.tune import TuneDB, TuneSettings, best_schedule, search_space, tune_graph
from fusec.tune.signature import FORMAT, record_key
from fusec.tune.space import schedule_from_dict, schedule_to_dict
from fusec.tune.space_knobs import REDUCE_BLOCKS

ROWS = "graph rows<N=16, D=4096>(x: f32[N, D]) { return mean(x * x, axis=-1) }"
SHORT_ROWS = "graph rows<N=16, D=200>(x: f32[N, D]) { return sum(x, axis=-1) }"
COLUMN = "graph col<N=800, M=24>(x: f32[N, M]) { return sum(x * x, axis=0) }"
MAXIMA = "graph mx<N=16, D=4096>(x: f32[N, D]) { return max(x, axis=-1) }"


def reduce_nest(text: str):
    (_, nest), = [(g, n) for g, n in lower_all(fusec.parse(text))[1] if n.kind == "reduce"]
    return nest


def test_a_long_row_sum_offers_every_block_size():
    space = search_space(reduce_nest(ROWS), "c")
    assert space.options["reduce block"] == "64, 256, 1024"
    assert {s.reduce_block for s in space.candidates} == set(REDUCE_BLOCKS)
    assert not any("reduction block" in why for why in space.invalid)


def test_values_that_block_alike_are_dropped_with_their_reason():
    space = search_space(reduce_nest(SHORT_ROWS), "c")  # 200 values: 256 and 1024 both leave the row whole
    assert {s.reduce_block for s in space.candidates} == {REDUCE_BLOCK, 64}
    assert space.invalid["a reduction block that blocks the sums as another value does"] > 0
    assert len(space) + space.illegal + space.duplicates >= space.combinations


@pytest.mark.parametrize("text", [MAXIMA, "graph ew<N=64, M=64>(x: f32[N, M]) { return exp(x) * 2 }"])
def test_the_knob_is_absent_where_no_float_sum_is_long(text):
    _, kernels = lower_all(fusec.parse(text))
    for _, nest in kernels:
        for backend in ("c", "numpy"):
            space = search_space(nest, backend)
            assert "reduce block" not in space.options
            assert {s.reduce_block for s in space.candidates} == {REDUCE_BLOCK}
            assert not any("reduction block" in why for why in space.invalid)


def test_numpy_takes_the_knob_where_it_changes_which_sums_go_to_f64():
    assert "reduce block" not in search_space(reduce_nest(ROWS), "numpy").options  # np.sum is pairwise along a row
    space = search_space(reduce_nest(COLUMN), "numpy")  # down a column NumPy adds 800 values one by one:
    # to f64 with blocks of 64 or 256 (one choice), added in f32 with 1024
    assert {s.reduce_block for s in space.candidates} == {REDUCE_BLOCK, 4 * REDUCE_BLOCK}
    assert space.invalid["a reduction block that blocks the sums as another value does"] > 0


@pytest.mark.parametrize("text, backend", [(ROWS, "c"), (COLUMN, "c"), (COLUMN, "numpy")],
                         ids=["rows-c", "column-c", "column-numpy"])  # NumPy's row sums are pairwise: no knob
def test_every_block_option_matches_the_interpreter(text, backend):
    graph = fusec.parse(text)
    stages = compile_stages(graph, backend=backend, tune_db=False, stop_after="loops")
    g = stages.plan.graph
    x = np.random.default_rng(3).standard_normal(g.type_of(g.inputs[0]).shape).astype(np.float32) + 1
    values = evaluate(g, [x], keep_all=True)
    tried = set()
    for group, nest in zip(stages.plan.groups, stages.nests):
        if nest.kind != "reduce":
            continue
        space = search_space(nest, backend)
        for schedule in {s.reduce_block: s for s in reversed(space.candidates)}.values():  # one per value
            kernel = get_backend(backend).build(g, group, nest, schedule)
            arrays = [values[b.value].copy() if b.role != "out" else np.zeros(b.shape, b.dtype.numpy)
                      for b in nest.buffers]
            kernel.run(*arrays)
            for b, a in zip(nest.buffers, arrays):
                if b.role != "in":
                    assert compare_output(g, b.written_value, a, values[b.written_value]) is None, str(schedule)
            tried.add(schedule.reduce_block)
    assert len(tried) >= 2


def test_schedules_keep_their_block_in_the_database():
    s = Schedule((4,), True, True, 1, reduce_block=64)
    assert schedule_from_dict(schedule_to_dict(s)) == s
    old = schedule_to_dict(Schedule((4,)))
    del old["reduce_block"]  # a record from before the knob existed
    assert schedule_from_dict(old).reduce_block == REDUCE_BLOCK
    with pytest.raises(fusec.FusecError, match="malformed"):
        schedule_from_dict({**old, "reduce_block": -1})


def test_a_tuned_block_is_checked_stored_and_compiled(tmp_path):
    graph, kernels = lower_all(fusec.parse(COLUMN))
    kernels = [(group, nest) for group, nest in kernels if nest.kind == "reduce"]
    (group, nest), = kernels
    space = search_space(nest, "numpy")
    db = TuneDB(tmp_path / "tune.jsonl")
    settings = TuneSettings(strategy="exhaustive", budget=len(space), repeats=2, min_sample_s=0.0005, confirm=1)
    (result,) = tune_graph(graph, kernels, "numpy", settings, db=db)
    # every candidate was checked against the interpreter before its time counted
    assert all(t.ok for t in result.trials), [(str(t.schedule), t.status, t.detail) for t in result.trials if not t.ok]
    assert {t.schedule.reduce_block for t in result.trials} == {s.reduce_block for s in space.candidates}
    best = best_schedule(nest, get_backend("numpy"), db)
    assert best == result.best.schedule
    assert best in compile_stages(fusec.parse(COLUMN), backend="numpy", tune_db=tmp_path / "tune.jsonl").schedules
    program = fusec.compile(fusec.parse(COLUMN), backend="numpy", tune_db=tmp_path / "tune.jsonl")
    x = np.random.default_rng(5).standard_normal((800, 24)).astype(np.float32)
    assert compare_output(program.graph, program.graph.outputs[0], program(x), fusec.interpret(program.graph, x)) is None


def test_compile_builds_a_stored_block_size(tmp_path):
    """A record whose best has reduce_block=64 (not the default): compile splits the row into blocks
    of 64 values and still matches the interpreter."""
    graph = fusec.parse(ROWS)
    nest = compile_stages(graph, backend="c", tune_db=False).nests[0]
    tuned = replace(compile_stages(graph, backend="c", tune_db=False).schedules[0], reduce_block=64)
    TuneDB(tmp_path / "tune.jsonl").append({"format": FORMAT, "key": record_key(nest, get_backend("c")), "kernel": nest.name,
                                            "backend": "c", "best": {"schedule": schedule_to_dict(tuned), "median_s": 1e-6}})
    stages = compile_stages(graph, backend="c", tune_db=tmp_path / "tune.jsonl")
    assert stages.schedules[0] == tuned
    program = fusec.compile(graph, backend="c", tune_db=tmp_path / "tune.jsonl")
    assert re.search(r"for \(int64_t (\w+)_o = 0; \1_o < 64;", program.source())  # 4096 values: 64 blocks of 64
    x = np.random.default_rng(7).standard_normal((16, 4096)).astype(np.float32)
    assert compare_output(program.graph, program.graph.outputs[0], program(x), fusec.interpret(program.graph, x)) is None
