"""A kernel that reads through a transpose gets 2-D tiles by default (loops/defaults.py
TRANSPOSE_TILES): the lines its strided loads touch serve a whole tile from L1 instead of being
fetched again for each row. The tiles change the loop order only, so the result stays the
interpreter's, also where the extents are no multiple of the tiles."""

from __future__ import annotations

import numpy as np
import pytest

import fusec
from fusec.fusion.planner import plan
from fusec.interp import interpret
from fusec.loops.defaults import (
    STAGED_TRANSPOSE_TILES,
    TRANSPOSE_TILES,
    computes_transcendental,
    default_schedule,
    transposed_var,
)
from fusec.loops.lower import lower_group
from fusec.tolerance import compare


def nests(text: str, policy: str = "greedy"):
    p = plan(fusec.parse(text), policy)
    return p, [lower_group(p.graph, g) for g in p.groups]


def test_a_read_through_a_transpose_is_tiled_in_two_dimensions():
    _, (nest,) = nests("graph t(x: f32[2048, 1024], w: f32[1024, 2048]) {\n"
                       "  y = transpose(x, perm=[1, 0]) * 2.0 + w\n  return y\n}")
    assert transposed_var(nest) == nest.dims[0].var  # x runs along the rows of y
    assert default_schedule(nest, "c").tiles == TRANSPOSE_TILES
    assert default_schedule(nest, "numpy").tiles != TRANSPOSE_TILES  # whole-array blocks instead


def test_a_transposed_read_under_a_transcendental_op_gets_the_staged_tiles():
    g = fusec.parse("graph t(x: f32[2048, 1024], w: f32[1024, 2048]) {\n"
                    "  y = erf(transpose(x, perm=[1, 0])) + w\n  return y\n}")
    p = plan(g, "greedy", force_fuse=("y_transpose,y_erf", "y_erf,y"))
    (nest,) = [lower_group(p.graph, grp) for grp in p.groups]
    assert transposed_var(nest) is not None and computes_transcendental(nest)
    assert default_schedule(nest, "c").tiles == STAGED_TRANSPOSE_TILES


def test_a_kernel_that_streams_keeps_its_row_tiles():
    _, (nest,) = nests("graph t(x: f32[2048, 1024], w: f32[2048, 1024]) { y = x * 2.0 + w\n return y }")
    assert transposed_var(nest) is None
    assert len(default_schedule(nest, "c").tiles) == 1  # one flat loop over the points, in row tiles
    _, (heads,) = nests("graph t(x: f32[4, 64, 8, 32]) { y = transpose(x, perm=[0, 2, 1, 3])\n return y }")
    assert transposed_var(heads) is None  # the innermost axis stays in place: every load streams


@pytest.mark.parametrize("shape, perm", [((300, 200), [1, 0]), ((3, 130, 70), [0, 2, 1]), ((40, 5, 33), [2, 1, 0])])
def test_tiled_transposes_compute_what_the_interpreter_does(shape, perm):
    out = tuple(shape[p] for p in perm)
    text = (f"graph t(x: f32[{', '.join(map(str, shape))}], w: f32[{', '.join(map(str, out))}]) {{\n"
            f"  y = erf(transpose(x, perm={perm})) + w\n  return y\n}}")
    program = fusec.compile(fusec.parse(text), backend="c")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(out).astype(np.float32)
    expected = interpret(fusec.parse(text), x, w)
    mismatch = compare(np.asarray(program(x, w)), expected)
    assert mismatch is None, mismatch
    _, nest_list = nests(text)
    assert any(transposed_var(n) is not None for n in nest_list)
