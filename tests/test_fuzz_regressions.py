"""Every reproducer in tests/regressions/ (bugs the fuzzers found) stays fixed.

Each .fg file there starts with a comment saying what went wrong. Each one must round-trip through
the printer, run from the CLI without a warning, give values of the inferred types, and compile on
both backends to results that match the interpreter (on its saved .npz inputs where it has one,
else on several seeds of random inputs with special values).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fusec
from fusec.errors import FusecTypeError
from fusec.inputs import random_inputs
from fusec.interp import evaluate
from fusec.ir.printer import print_graph

REGRESSIONS = sorted((Path(__file__).parent / "regressions").glob("*.fg"))


def test_there_are_reproducers():
    assert len(REGRESSIONS) >= 3


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.stem)
def test_reproducer_round_trips_and_runs(path):
    g = fusec.load(path)
    text = print_graph(g)
    assert print_graph(fusec.parse(text)) == text
    values = evaluate(g, random_inputs(g, seed=1))
    for o in g.outputs:
        assert values[o].shape == g.type_of(o).shape
        assert values[o].dtype == g.type_of(o).dtype.numpy


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.stem)
def test_reproducer_runs_from_the_cli_without_warnings(path):
    r = subprocess.run([sys.executable, "-m", "fusec", "run", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def _input_sets(path, g):
    from fusec.testing.arrays import random_arrays

    saved = path.with_suffix(".npz")
    if saved.exists():
        with np.load(saved) as d:
            yield [d[n] for n in g.inputs]
    for seed in range(3):
        yield random_arrays(g, np.random.default_rng(seed), special=0.1 * seed)


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.stem)
def test_reproducer_compiles_to_the_interpreters_results(path, backend):
    from fusec.bisect import check

    g = fusec.load(path)
    for arrays in _input_sets(path, g):
        failure = check(g, arrays, backend)
        assert failure is None, f"{path.name}: {failure}"


OPEN = sorted((Path(__file__).parent / "regressions" / "open").glob("*.fg"))


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="open bug, reported to its owner: see the comment in each file")
@pytest.mark.parametrize("path", OPEN, ids=lambda p: p.stem)
def test_open_reproducer_still_fails(path):
    """Known open bugs, kept as failing reproducers. strict: when one gets fixed this test *fails*,
    as a reminder to move the file up into tests/regressions/."""
    from fusec.bisect import check

    g = fusec.load(path)
    with np.load(path.with_suffix(".npz")) as d:
        arrays = [d[n] for n in g.inputs]
    backend = "c" if "(C backend)" in path.read_text() else "numpy"  # the backend named on the OPEN line
    assert check(g, arrays, backend) is None


def test_negative_literal_base_of_pow_keeps_its_meaning():
    g = fusec.parse("graph g(x: f32[3]) { return (-2.0) ** x }")
    x = np.array([2.0, 3.0, 0.5], np.float32)
    back = fusec.parse(print_graph(g))
    np.testing.assert_array_equal(fusec.interpret(back, x), fusec.interpret(g, x))
    assert fusec.interpret(back, x)[1] == -8.0


def test_scalar_inputs_and_outputs_stay_zero_dimensional():
    g = fusec.parse("graph g(x: f32[]) { return exp(x), x }")
    (x,) = random_inputs(g, seed=0)
    assert x.shape == ()
    y, same = fusec.interpret(g, x)
    assert y.shape == () and same.shape == ()


def test_bool_minus_bool_is_a_type_error_not_a_numpy_crash():
    # found by the interpreter fuzzer: the type rule accepted it, then NumPy refused to compute it
    with pytest.raises(FusecTypeError, match="subtract bool"):
        fusec.parse("graph g(a: bool[3], b: bool[3]) { return a - b }")
    g = fusec.parse("graph g(a: bool[3]) { return a - 1 }")  # a literal makes it integer arithmetic
    assert g.type_of(g.outputs[0]).dtype.name == "i32"
