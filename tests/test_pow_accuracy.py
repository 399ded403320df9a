"""float32 powers: the interpreter rounds them once (NumPy's own float32 power is off by an ulp for a
quarter of 10000 ** (-i/32)), and both backends agree with it where a large factor amplifies an ulp.

Found by bench/bench_models.py: examples/10_rotary.fg at its own size (S=1024) missed the f32
tolerance by 20x on the C backend, because the interpreter's power was the inaccurate one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
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


LIBM = ctypes.CDLL(ctypes.util.find_library("m"))
LIBM.pow.restype, LIBM.pow.argtypes = ctypes.c_double, [ctypes.c_double, ctypes.c_double]
SPECIAL = [-np.inf, -2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 2.5, np.inf, np.nan]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("exponent", ["0.5", "2.0", "-0.5", "3.0", "y"])
def test_special_values_follow_ieee_pow_on_every_path(backend, dtype, exponent):
    # NumPy takes sqrt for a repeated exponent of 0.5 (pow(-inf, 0.5) = nan, pow(-0, 0.5) = -0) and gcc
    # does the same in vectorized loops only; fusec's pow is IEEE's everywhere (+inf and +0 there).
    # 640 elements: the C loop is vectorized; 10: a short loop
    np_dtype = np.float32 if dtype == "f32" else np.float64
    for n in (10, 640):
        g = fusec.parse(f"graph p<N={n}>(x: {dtype}[N], y: {dtype}[N]) {{ return x ** {exponent} }}")
        x = np.resize(np.array(SPECIAL, np_dtype), n)
        y = np.resize(np.array(SPECIAL[::-1], np_dtype), n)
        # C's pow element by element (libm), the definition
        powers = y if exponent == "y" else np.full(n, float(exponent))
        ieee = np.array([LIBM.pow(float(a), float(b)) for a, b in zip(x, powers)]).astype(np_dtype)
        for got in (fusec.interpret(g, x, y), fusec.compile(g, backend=backend, tune_db=False, rewrite=[])(x, y)):
            got = np.asarray(got)
            assert np.array_equal(got, ieee, equal_nan=True), (n, got, ieee)
            assert np.array_equal(np.signbit(got[~np.isnan(got)]), np.signbit(ieee[~np.isnan(ieee)])), (n, got, ieee)
