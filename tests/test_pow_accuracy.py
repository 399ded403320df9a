"""float32 powers: the interpreter rounds them once (NumPy's own float32 power is off by an ulp for a
quarter of 10000 ** (-i/32)), and both backends agree with it where a large factor amplifies an ulp.

Found by bench/bench_models.py: examples/10_rotary.fg at its own size (S=1024) missed the f32
tolerance by 20x on the C backend, because the interpreter's power was the inaccurate one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fusec
from fusec.inputs import random_inputs
from fusec.testing.amplified_powers import amplified_power_graph
from fusec.tolerance import compare_output

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["numpy", "c"]


def test_interpreter_float32_power_is_rounded_once():
    i = np.arange(64, dtype=np.float32)
    for base in (10000.0, 2.5, 0.3):
        exponent = i * np.float32(-1 / 32)
        g = fusec.parse("graph p(b: f32[64], e: f32[64]) { return b ** e }")
        got = fusec.interpret(g, np.full(64, base, np.float32), exponent)
        once = (np.float64(np.float32(base)) ** exponent.astype(np.float64)).astype(np.float32)
        assert np.array_equal(np.asarray(got), once)


def _check(graph, backend, seed=0):
    arrays = random_inputs(graph, seed=seed)
    got = np.asarray(fusec.compile(graph, backend=backend, tune_db=False)(*arrays))
    expected = np.asarray(fusec.interpret(graph, *arrays))
    mismatch = compare_output(graph, graph.outputs[0], got, expected)
    assert mismatch is None, f"{graph.name} on {backend}: {mismatch}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotary_example_at_its_own_size(backend):
    _check(fusec.load(ROOT / "examples" / "10_rotary.fg"), backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(6))
def test_amplified_power_family(seed, backend):
    _check(amplified_power_graph(seed), backend, seed)
