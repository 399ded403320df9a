"""Dimension arithmetic in .fg shapes and attributes (`D / 2`, `H * Dh`, `(S - 1) * 2`), dimensions
used as values (`sum(x) / D`), the located error when a size does not come out whole, and printing
that keeps the symbolic form."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fusec
from fusec.errors import FusecError
from fusec.inputs import random_inputs
from fusec.interp import interpret
from fusec.ir.printer import print_graph

HALVES = """\
graph halves<N=4, D=8, H=2>(x: f32[N, D / 2], y: f32[N, (D - 2) * H + 1], z: f32[D - (H - 1)]) {
  r = reshape(x, shape=[N, H, D / H / 2])
  m = sum(x, axis=-1) / D
  return r, m * (D / 2), y, z
}
"""


def cli(*args):
    return subprocess.run([sys.executable, "-m", "fusec", *map(str, args)], capture_output=True, text=True)


def test_shapes_and_attributes_compute_their_sizes():
    g = fusec.parse(HALVES)
    assert g.type_of("x").shape == (4, 4)
    assert g.type_of("y").shape == (4, 13)
    assert g.type_of("z").shape == (7,)
    assert g.type_of("r").shape == (4, 2, 2)


def test_a_reshape_to_heads_matches_numpy():
    g = fusec.parse("graph g<N=3, D=12, H=4>(x: f32[N, D]) {\n  return reshape(x, shape=[N, H, D / H])\n}\n")
    (x,) = random_inputs(g)
    np.testing.assert_array_equal(interpret(g, x), x.reshape(3, 4, 3))


def test_a_dimension_as_a_value_is_a_weak_integer_of_its_size():
    g = fusec.parse(HALVES)
    x = random_inputs(g)[0]
    _, m, _, _ = interpret(g, *random_inputs(g))
    np.testing.assert_allclose(m, x.sum(axis=-1) / 8 * 4, rtol=1e-6)
    assert g.type_of("mul").dtype.name == "f32"  # the literal took x's dtype, as `8` would
    ints = fusec.parse("graph g<N=5>(k: i32[N]) {\n  return k + N\n}\n")
    assert ints.type_of("add").dtype.name == "i32"
    np.testing.assert_array_equal(interpret(ints, np.arange(5, dtype=np.int32)), np.arange(5, 10, dtype=np.int32))


def test_a_value_named_like_a_dimension_is_the_value():
    g = fusec.parse("graph g<N=3>(x: f32[N]) {\n  N2 = x * 2\n  return N2 + N\n}\n")
    x = np.ones(3, np.float32)
    np.testing.assert_array_equal(interpret(g, x), np.full(3, 5, np.float32))


@pytest.mark.parametrize(
    "text, at, message",
    [
        ("graph g<D=7>(x: f32[D / 2]) {\n  return exp(x)\n}\n", (1, "/ 2"), "dimension D / 2 = 7 / 2 is not a whole number"),
        ("graph g<D=8, S=3>(x: f32[D]) {\n  return reshape(x, shape=[2, D / S])\n}\n", (2, "/ S"), "dimension D / S = 8 / 3 is not a whole number"),
        ("graph g<S=3>(x: f32[S - 4]) {\n  return exp(x)\n}\n", (1, "- 4"), "dimension S - 4 = 3 - 4 is negative"),
        ("graph g<D=6>(x: f32[D]) {\n  return x * (D / 4)\n}\n", (2, "/ 4"), "dimension D / 4 = 6 / 4 is not a whole number"),
        ("graph g<D=6>(x: f32[D / Q]) {\n  return exp(x)\n}\n", (1, "Q]"), "unknown dimension 'Q'"),
        ("graph g<D=6>(x: f32[D @ 2]) {\n  return exp(x)\n}\n", (1, "@"), "'@' is not dimension arithmetic"),
        ("graph g<D=6>(x: f32[D]) {\n  return D\n}\n", (2, "D\n"), "dimension 'D' is a number here"),
    ],
)
def test_mistakes_are_located(text, at, message):
    """`at` is (line, the text the caret points at)."""
    line, snippet = at
    column = (text.splitlines(keepends=True)[line - 1]).index(snippet) + 1
    with pytest.raises(FusecError) as err:
        fusec.parse(text, filename="g.fg")
    loc = err.value.location
    assert (loc.line, loc.column) == (line, column) and message in err.value.message, str(err.value)


def test_a_size_override_that_breaks_a_division_is_located_at_the_operator():
    with pytest.raises(FusecError) as err:
        fusec.parse(HALVES, sizes={"D": 9})
    assert err.value.location.line == 1 and "D / 2 = 9 / 2" in err.value.message


def test_printing_keeps_the_symbolic_form_and_is_a_fixpoint():
    g = fusec.parse(HALVES)
    assert print_graph(g) == HALVES
    assert print_graph(fusec.parse(print_graph(g))) == HALVES


def test_fmt_keeps_it_and_set_changes_every_size_derived_from_d(tmp_path):
    path = tmp_path / "halves.fg"
    path.write_text(HALVES)
    assert cli("fmt", "--check", path).returncode == 0
    small, large = fusec.load(path), fusec.load(path, sizes={"D": 16})
    assert small.type_of("x").shape == (4, 4) and large.type_of("x").shape == (4, 8)
    assert large.type_of("r").shape == (4, 2, 4) and large.type_of("y").shape == (4, 29)
    x = random_inputs(large)[0]
    np.testing.assert_allclose(interpret(large, *random_inputs(large))[1], x.sum(axis=-1) / 16 * 8, rtol=1e-6)
    out = cli("check", path, "--set", "D=16")
    assert out.returncode == 0 and "r: f32[4, 2, 4]" in out.stdout, out.stdout + out.stderr
    shown = cli("fmt", path, "--set", "D=16").stdout
    assert "x: f32[N, D / 2]" in shown and "sum(x, axis=-1) / D" in shown and "<N=4, D=16, H=2>" in shown
