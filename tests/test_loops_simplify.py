"""The simplifier, the BLAS matmul schedule and the schedule trace (`--show schedule`).

* no generated kernel of any example stores a value it just read from the same element (checked on
  the scheduled loop nests of both backends, and on the C text);
* simplified nests have no one-trip loops, no index arithmetic inside a vector loop that does not
  depend on it, tails as min(i_o*T + T, N), and compute what the lowered nest computes;
* `fusec compile examples/03_softmax.fg --show schedule` prints one nest per schedule primitive.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, small_sizes

from fusec.inputs import random_inputs
from fusec.loops.defaults import default_schedule
from fusec.loops.ir import Let, LetIndex, Load, Loop, Ref, Store, walk
from fusec.loops.reference import run_nest
from fusec.loops.schedule import Schedule
from fusec.loops.show import scheduled_nests
from fusec.loops.simplify import SIMPLIFY_PASSES, simplify
from fusec.pipeline import compile_stages, lower_all

ROOT = Path(__file__).resolve().parent.parent


def identity_stores(stmts) -> list[str]:
    """Stores of a value read from the same element earlier in the same block, with no store between."""
    found: list[str] = []
    loaded: dict[str, Load] = {}
    for s in stmts:
        if isinstance(s, Let) and isinstance(s.value, Load):
            loaded[s.name] = s.value
        elif isinstance(s, Store):
            value = loaded.get(s.value.name) if isinstance(s.value, Ref) else s.value
            if isinstance(value, Load) and (value.buffer, value.index) == (s.buffer, s.index):
                found.append(f"{s.buffer}[{s.index}]")
            loaded = {k: v for k, v in loaded.items() if v.buffer != s.buffer}
        elif isinstance(s, Loop):
            found += identity_stores(s.body)
    return found


C_LOAD = re.compile(r"const \w+ (\w+) = (\w+\[[^\]]+\]);")


def c_identity_stores(source: str) -> list[str]:
    """`buf[idx] = v;` where `v = buf[idx]` was loaded unchanged (the simple textual pattern)."""
    return [f"{place} = {name}" for name, place in C_LOAD.findall(source) if f"{place} = {name};" in source]


@pytest.mark.parametrize("backend", ["c", "numpy"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_no_kernel_stores_a_value_it_just_loaded(path, backend):
    sizes = small_sizes(path)
    stages = compile_stages(path, backend=backend, sizes=sizes, tune_db=False)
    for nest, schedule in zip(stages.nests, stages.schedules):
        if nest is None:
            continue
        for scheduled in scheduled_nests(nest, schedule, stages.backend):
            assert identity_stores(scheduled.body) == [], f"{scheduled.name} re-stores what it read"
    for kernel in stages.kernels:
        assert c_identity_stores(kernel.source) == [], kernel.name


def test_the_c_pattern_detector_finds_the_old_identity_epilogue():
    old = "const float matmul0 = t0[i * 768 + j];\n t0[i * 768 + j] = matmul0;\n"
    assert c_identity_stores(old) == ["t0[i * 768 + j] = matmul0"]


def test_an_identity_epilogue_is_no_epilogue():
    stages = compile_stages(ROOT / "examples/09_transformer_block.fg", backend="c",
                            sizes=small_sizes(ROOT / "examples/09_transformer_block.fg"), tune_db=False)
    blas = [k for k in stages.kernels if "NumPy's matmul (BLAS)" in k.source]
    assert len(blas) == 8
    # q, k and v, q @ k^T (the scale joins the softmax kernel, with the mask) and p @ v
    assert sum("there is no epilogue" in k.source for k in blas) == 5


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_simplified_c_nests_read_like_hand_written_loops(path):
    graph, lowered = lower_all(path, sizes={**small_sizes(path)}, backend="c")
    for _, nest in lowered:
        for scheduled in scheduled_nests(nest, default_schedule(nest, backend="c"), "c"):
            for lp in (s for s in walk(scheduled.body) if isinstance(s, Loop)):
                trips = lp.trips
                assert not (trips.is_const and trips.const == 1), f"{scheduled.name}: one-trip loop {lp.var}"
                if lp.kind == "vector":
                    inner = {s.var for s in walk(lp.body) if isinstance(s, (Loop, LetIndex))} | {lp.var}
                    for s in walk(lp.body):
                        if isinstance(s, LetIndex):
                            assert s.value.variables() & inner, f"{scheduled.name}: {s.var} is invariant in {lp.var}"


def test_tails_are_min_of_the_tile_end_and_the_extent():
    path = ROOT / "examples/03_softmax.fg"
    stages = compile_stages(path, backend="c", sizes={"N": 50, "D": 8}, schedules={0: Schedule((21,), True, True)},
                            tune_db=False)
    source = stages.kernels[0].source
    assert "for (int64_t i0 = i0_o * 21; i0 < fusec_min_i64(i0_o * 21 + 21, 50); i0++)" in source
    assert "i0_i" not in source


@pytest.mark.parametrize("schedule", [Schedule((7,), True, True), Schedule((1,), False, False, 4), Schedule((50,))])
def test_simplified_nests_compute_what_the_lowered_nest_computes(schedule):
    path = ROOT / "examples/04_layernorm.fg"
    graph, [(_, nest)] = lower_all(path, sizes={"N": 50, "D": 12}, backend="numpy")
    inputs = dict(zip(graph.inputs, random_inputs(graph, seed=5)))

    def run(n):
        arrays = [inputs[b.value].copy() if b.role == "in" else np.zeros(b.shape, b.dtype.numpy) for b in n.buffers]
        run_nest(n, *arrays)
        return [a for a, b in zip(arrays, n.buffers) if b.role == "out"]

    (simplified,) = scheduled_nests(nest, schedule, "c")
    if schedule.tiles == (7,):  # 50 rows in tiles of 7: the folded tile loop starts at i0_o*7 and has a tail
        assert any(not lp.start.is_const for lp in walk(simplified.body) if isinstance(lp, Loop))
    for actual, expected in zip(run(simplified), run(nest)):
        np.testing.assert_array_equal(actual, expected)


def test_show_schedule_prints_one_nest_per_primitive():
    path = ROOT / "examples/03_softmax.fg"
    r = subprocess.run([sys.executable, "-m", "fusec", "compile", str(path), "--show", "schedule"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    (nest, schedule), = [(n, s) for n, s in zip(*_nests_and_schedules(path))]
    tile = schedule.tiles[0]
    headers = re.findall(r"^# softmax_k0 step (\d+): (.*)$", r.stdout, re.M)
    assert [int(k) for k, _ in headers] == list(range(1, len(headers) + 1))
    steps = [h for _, h in headers]
    # tiles, parallel, the sum of exponentials in blocks (Schedule.reduce_block), vectorize
    primitives = [f"split(i0, {tile})", "parallel(i0_o)", f"block_reduction(r1, {schedule.reduce_block})",
                  "vectorize(r1)", "vectorize(r1_i)"]
    assert steps[: len(primitives)] == primitives
    assert set(steps[len(primitives):]) <= {p.name for p in SIMPLIFY_PASSES}
    assert r.stdout.count("kernel softmax_k0 (reduce)") == len(headers) + 1  # and the nest as lowered


def _nests_and_schedules(path):
    stages = compile_stages(path, backend="c", stop_after="schedule", tune_db=False)
    return stages.nests, stages.schedules


def test_simplify_is_a_fixpoint_on_the_examples():
    for path in EXAMPLES[:4]:
        _, lowered = lower_all(path, sizes=small_sizes(path), backend="c")
        for _, nest in lowered:
            (once,) = scheduled_nests(nest, default_schedule(nest, backend="c"), "c")
            assert simplify(once) == once
