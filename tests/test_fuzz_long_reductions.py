"""The fuzzer's long-reductions family (fusec/testing/long_reductions.py) in CI, at a size that keeps
CI fast: a handful of seeded graphs reducing 200,000+ values at once, through both backends, against
the interpreter under the standard tolerance. `python tools/fuzz.py --long-reductions N` runs the
family at 1e6 values."""

from __future__ import annotations

import numpy as np
import pytest
from test_reduction_accuracy import BACKENDS

import fusec
from fusec.ir.printer import print_graph
from fusec.testing.arrays import random_arrays
from fusec.testing.long_reductions import long_reduction_graph
from fusec.tolerance import compare_output

SEEDS = range(6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_long_reduction_graphs_match_the_interpreter(seed, backend):
    graph = long_reduction_graph(seed, elements=200_000)
    arrays = random_arrays(graph, np.random.default_rng(seed))
    program = fusec.compile(graph, backend=backend, tune_db=False)
    got = program(*arrays)
    expected = fusec.interpret(graph, *arrays)
    name = graph.outputs[0]
    mismatch = compare_output(graph, name, np.asarray(got), np.asarray(expected))
    assert mismatch is None, f"{print_graph(graph)}\n{backend}: {mismatch}"


def test_every_reduction_of_the_family_is_long():
    for seed in SEEDS:
        graph = long_reduction_graph(seed, elements=200_000)
        rows, d = graph.type_of(graph.inputs[0]).shape
        assert rows * d >= 200_000 and d >= 200_000 // 3  # a row of a third of the values, or all of them
