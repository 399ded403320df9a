"""The search space and the strategies: only legal, distinct schedules, each computing what the
unscheduled nest computes; strategies pick from the space and respect the budget; the model ranks."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from conftest import EXAMPLES, small_sizes

import fusec
from fusec.inputs import random_inputs
from fusec.interp import evaluate
from fusec.loops.defaults import default_schedule
from fusec.loops.printer import print_nest
from fusec.loops.reference import run_nest
from fusec.loops.schedule import Schedule, apply_schedule
from fusec.pipeline import lower_all
from fusec.tolerance import compare
from fusec.tune import search_space
from fusec.tune.model import FittedModel, knob_values, predict
from fusec.tune.space import KNOBS, tile_options
from fusec.tune.strategies import PRUNE, make_strategy

BIAS = """graph bias(x: f32[48, 40], b: f32[40]) {
  t = transpose(x, perm=[1, 0]) * 2
  y = x + b
  return t, y
}
"""


def kernels_of(path):
    return lower_all(fusec.load(path, sizes=small_sizes(path)))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_every_candidate_is_legal_and_distinct(path, backend):
    _, kernels = kernels_of(path)
    for _, nest in kernels:
        space = search_space(nest, backend)
        assert space.candidates[0] == space.default == default_schedule(nest, backend)
        sample = space.candidates[:1] + random.Random(0).sample(space.candidates, min(40, len(space)))
        # raises if one is illegal; two candidates differ in the scheduled nest or in the pragma hints
        texts = {s: (print_nest(apply_schedule(nest, s)), tuple(s.hints.items())) for s in sample}
        assert len(set(texts.values())) == len(texts)
        assert len(space) + space.illegal + space.duplicates >= space.combinations
        if backend == "numpy":  # the NumPy backend tiles (block sizes), orders and threads; no C pragmas
            assert {(s.vectorize, s.unroll, tuple(s.hints)) for s in space.candidates} == {
                (space.default.vectorize, space.default.unroll, ())}


@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.stem[3:] in ("chain", "softmax", "layernorm", "adam")],
                         ids=lambda p: p.stem)
def test_sampled_candidates_compute_the_same_values(path):
    g, kernels = kernels_of(path)
    values = evaluate(g, random_inputs(g, seed=1), keep_all=True)
    rng = random.Random(0)
    for _, nest in kernels:
        space = search_space(nest, "c")
        for s in [space.default] + rng.sample(space.candidates, min(4, len(space))):
            arrays = [values[b.value].copy() if b.role != "out" else np.zeros(b.shape, b.dtype.numpy) for b in nest.buffers]
            run_nest(apply_schedule(nest, s), *arrays)
            for b, a in zip(nest.buffers, arrays):
                if b.role != "in":
                    assert compare(a, values[b.written_value]) is None, (nest.name, str(s))


def test_two_dimensional_space_has_orders_and_tiles_per_dimension():
    g = fusec.parse(BIAS)
    for _, nest in lower_all(g)[1]:
        space = search_space(nest, "c")
        kept = [d for d in nest.dims if not d.reduced]
        if len(kept) == 2:
            assert "[1, 0]" in space.options["order"]
            assert any(s.order == (1, 0) for s in space.candidates)
            assert {f"tile {d.var}" for d in kept} | {"parallel", "inner loops"} <= set(space.options)


def test_tile_options_fit_the_caches():
    caches = (32 * 1024, 512 * 1024, 32 * 1024 * 1024)
    opts = tile_options(1 << 24, 8.0, innermost=True, caches=caches)
    assert opts[0] == 0 and 1 not in opts  # no row-by-row tile for the innermost dimension
    assert 2048 in opts and 32768 in opts  # half of L1 and half of L2 at 8 bytes per element
    assert all(t < 1 << 24 for t in opts)
    assert tile_options(1, 8.0, innermost=False, caches=caches) == [0]
    assert 1 in tile_options(100, 1e6, innermost=False, caches=caches)
    assert {16, 24} <= set(tile_options(96, 16 * 1024 / 24, innermost=True, caches=caches))  # 24 fits L1/2 and divides 96


def test_matmul_on_blas_tunes_its_rows_per_call():
    g = fusec.parse("graph mm(a: f32[8, 16], b: f32[16, 4]) {\n  y = matmul(a, b)\n  return y\n}\n")
    (_, nest), = lower_all(g)[1]
    space = search_space(nest, "c", ignored=True)
    assert [s.matmul_rows for s in space.candidates] == [8, 4, 2]  # the default (all rows) first
    assert len(search_space(nest, "c")) > 1  # the scalar loop form has knobs


def test_unknown_backend_tunes_tiles_only():
    g = fusec.parse(BIAS)
    nest = lower_all(g)[1][0][1]
    space = search_space(nest, "gpu-someday", default=Schedule((0, 0)))
    assert "gpu-someday" not in KNOBS
    assert all(not s.parallel and s.unroll == 1 and not s.order for s in space.candidates)


def _space():
    g = fusec.load(EXAMPLES[0], sizes={"N": 256, "M": 256})  # chain
    (_, nest), = lower_all(g)[1]
    return nest, search_space(nest, "c")


def test_exhaustive_takes_all_in_order_and_refuses_a_big_space():
    nest, space = _space()
    rest = space.candidates[1:]
    s = make_strategy("exhaustive", len(space), len(space))
    s.start(nest, rest, len(space))
    assert s.next_batch(rest, 5) == rest[:5]
    with pytest.raises(fusec.FusecError, match="more than the budget"):
        make_strategy("exhaustive", len(space), 3).start(nest, rest, 3)
    assert make_strategy("auto", len(space), len(space)).name == "exhaustive"
    assert make_strategy("auto", len(space), 3).name == "model"
    with pytest.raises(fusec.FusecError, match="unknown strategy"):
        make_strategy("annealing", 1, 1)


def test_random_is_seeded_and_draws_from_the_space():
    nest, space = _space()
    rest = space.candidates[1:]
    a = make_strategy("random", len(space), 8, seed=3).next_batch(rest, 8)
    b = make_strategy("random", len(space), 8, seed=3).next_batch(rest, 8)
    assert a == b and len(set(a)) == 8 and set(a) <= set(rest)


def test_model_prunes_hopeless_candidates_and_covers_the_knob_values_first():
    nest, space = _space()
    rest = space.candidates[1:]
    s = make_strategy("model", len(space), 8)
    s.start(nest, rest, 8)
    batch = s.next_batch(rest, 8)
    best = min(predict(nest, c) for c in rest)
    assert predict(nest, batch[0]) == best  # the best prediction first
    assert all(predict(nest, c) <= PRUNE * best for c in batch)
    assert s.pruned == sum(predict(nest, c) > PRUNE * best for c in rest)
    # then the candidates that bring knob values not seen yet: more of them than the 8 best predictions hold
    top = sorted(rest, key=lambda c: predict(nest, c))[:8]
    assert len({kv for c in batch for kv in knob_values(c)}) > len({kv for c in top for kv in knob_values(c)})


def _synthetic(space, seed: int):
    """A made-up landscape over the space: log time additive in the knob values plus 5% noise."""
    rng = random.Random(seed)
    effect = {kv: rng.gauss(0, 0.4) for c in space.candidates for kv in knob_values(c)}
    return {c: 1e-4 * math.exp(sum(effect[kv] for kv in knob_values(c)) + rng.gauss(0, 0.05)) for c in space.candidates}


def _search(nest, space, truth, strategy, seed, trials):
    rest = space.candidates[1:]
    s = make_strategy(strategy, len(space), len(space), seed=seed)
    s.start(nest, rest, len(space))
    s.observe(space.default, truth[space.default])
    seen = [space.default]
    while len(seen) < trials:
        batch = s.next_batch([c for c in rest if c not in seen], min(8, trials - len(seen)))
        for c in batch:
            s.observe(c, truth[c])
        seen += batch
    return seen


def test_model_searches_next_to_the_fastest_measured():
    nest, space = _space()
    truth = _synthetic(space, 0)
    seen = _search(nest, space, truth, "model", 0, 17)
    fastest = min(seen, key=truth.get)
    s = make_strategy("model", len(space), len(space), seed=0)
    s.start(nest, space.candidates[1:], len(space))
    for c in seen:
        s.observe(c, truth[c])
    batch = s.next_batch([c for c in space.candidates if c not in seen], 8)
    changed = [sum(a != b for a, b in zip(knob_values(c), knob_values(fastest))) for c in batch]
    assert changed[0] == 1 and changed.count(1) >= 2  # every other pick changes one knob of the best


def test_model_beats_random_on_an_additive_landscape():
    """On made-up landscapes where each knob value has its own effect, the model strategy finds a
    candidate within 5% of the best in a quarter of the space, and sooner than random search."""
    nest, space = _space()
    quarter = len(space) // 4
    found = {"model": 0, "random": 0}
    for seed in range(5):
        truth = _synthetic(space, seed)
        best = min(truth.values())
        for strategy in found:
            seen = _search(nest, space, truth, strategy, seed, quarter)
            found[strategy] += best / min(truth[c] for c in seen) >= 0.95
    assert found["model"] >= 4 and found["model"] > found["random"], found


def test_roofline_prefers_threads_and_vectors_on_big_kernels():
    g = fusec.load(EXAMPLES[0], sizes={"N": 2048, "M": 2048})
    (_, nest), = lower_all(g)[1]
    par = predict(nest, Schedule((16384,), True, True, 1))
    ser = predict(nest, Schedule((16384,), False, True, 1))
    tiny = predict(nest, Schedule((16,), True, True, 1))
    assert par < ser and par < tiny
    nbytes = sum(b.size * b.dtype.itemsize for b in nest.buffers)
    assert par >= nbytes / 20e9  # never faster than the bandwidth allows


def test_fitted_model_learns_a_log_linear_relation():
    nest, space = _space()
    model = FittedModel(nest)
    truth = {s: 1e-4 * 0.5 ** s.parallel * 1.2 ** math.log2(s.unroll) * 0.9 ** s.vectorize for s in space.candidates}
    train = random.Random(1).sample(space.candidates, 16)
    for s in train:
        model.add(s, truth[s])
    assert model.ready
    for s in set(space.candidates) - set(train):
        assert math.isclose(model(s), truth[s], rel_tol=0.05)
