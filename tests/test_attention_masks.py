"""Causal masks recognised in the graph (fusec/loops/masks.py) and the matmul work they let the C
backend skip: the bands found for each way of writing a mask, the graphs where nothing may be
skipped, and compiled attention against the interpreter for causal, offset, reversed, random and
fully masked rows, and for inf in the skipped rows of v."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fusec
from fusec.fusion.planner import plan
from fusec.inputs import random_inputs
from fusec.interp import interpret
from fusec.loops.masks import Band, band_of, matmul_masks, needed_band, support_band
from fusec.tolerance import compare_output

ATTENTION = """
graph attention<H=2, S={S}, Dh=16>(q: f32[H, S, Dh], k: f32[H, S, Dh], v: f32[H, S, Dh]{extra}) {{
  scores = q @ transpose(k, perm=[0, 2, 1]) * 0.25
  causal = {mask}
  p = softmax({masked})
  return out = p @ v
}}
"""

CAUSAL = "iota(shape=[S, S]) >= iota(shape=[S, S], axis=1)"


def attention(mask: str = CAUSAL, masked: str = "where(causal, scores, -inf)", S: int = 96, extra: str = ""):
    return fusec.parse(ATTENTION.format(S=S, mask=mask, masked=masked, extra=extra))


def prepared(graph):
    return plan(graph, "auto").graph  # composites expanded, as the backend sees it


def matmuls(graph) -> dict[str, object]:
    g = prepared(graph)
    return {n: matmul_masks(g, n) for n in g.topo_order() if g.node(n).op == "matmul"}


# ---------------------------------------------------------------------------------- recognition


@pytest.mark.parametrize(
    "mask, band",
    [
        (CAUSAL, Band(lo=0)),
        ("iota(shape=[S, S]) > iota(shape=[S, S], axis=1)", Band(lo=1)),
        ("iota(shape=[S, S], axis=1) <= iota(shape=[S, S])", Band(lo=0)),
        ("iota(shape=[S, S], axis=1) < iota(shape=[S, S])", Band(lo=1)),
        ("iota(shape=[S, S]) <= iota(shape=[S, S], axis=1)", Band(hi=0)),
        ("iota(shape=[S, S], axis=1) >= iota(shape=[S, S])", Band(hi=0)),
        ("iota(shape=[S, S]) >= iota(shape=[S, S], axis=1) + 5", Band(lo=5)),
        ("iota(shape=[S, S]) + 7 >= iota(shape=[S, S], axis=1)", Band(lo=-7)),
        ("iota(shape=[S, S]) - iota(shape=[S, S], axis=1) < 3", Band(hi=2)),
        ("iota(shape=[S, 1]) >= iota(shape=[1, S], axis=1)", Band(lo=0)),
        ("logical_and(iota(shape=[S, S]) >= iota(shape=[S, S], axis=1), "
         "iota(shape=[S, S]) < iota(shape=[S, S], axis=1) + 8)", Band(lo=0, hi=7)),
        ("logical_not(iota(shape=[S, S]) >= iota(shape=[S, S], axis=1))", Band(hi=-1)),
    ],
)
def test_band_of_recognises_index_comparisons(mask, band):
    g = prepared(attention(mask))
    assert band_of(g, "causal") == band


@pytest.mark.parametrize(
    "mask",
    [
        "iota(shape=[S, S]) >= iota(shape=[S, S])",  # the same axis twice: not a band of i - j
        "iota(shape=[S, S]) * 2 >= iota(shape=[S, S], axis=1)",  # not i - j
        "iota(shape=[S, S], dtype=f32) >= iota(shape=[S, S], axis=1, dtype=f32) + 0.5",  # not an integer offset
        "logical_and(iota(shape=[S, S]) >= iota(shape=[S, S], axis=1), "
        "iota(shape=[S, S]) <= iota(shape=[S, S], axis=1) + 3) == false",
    ],
)
def test_no_band_for_other_masks(mask):
    g = prepared(attention(mask))
    assert band_of(g, "causal") is None
    assert not any(matmuls(attention(mask)).values())


def test_a_random_mask_skips_nothing():
    graph = attention("m", extra=", m: bool[S, S]")
    assert not any(matmuls(graph).values())


def test_attention_bands():
    found = matmuls(attention())
    assert found["scores_matmul"].needed == Band(lo=0) and found["scores_matmul"].support is None
    assert found["out"].support == Band(lo=0) and found["out"].needed is None


def test_a_value_read_outside_the_mask_is_needed_everywhere():
    # scores is also returned: every element of it is read, so q @ k^T computes them all
    text = ATTENTION.format(S=96, mask=CAUSAL, masked="where(causal, scores, -inf)", extra="").replace(
        "return out = p @ v", "out = p @ v\n  return out, scores")
    g = prepared(fusec.parse(text))
    assert needed_band(g, "scores_matmul") is None
    # the mask in the other branch: where(causal, -inf, s) keeps the upper triangle
    g = prepared(attention(masked="where(causal, -inf, scores)"))
    assert needed_band(g, "scores_matmul") == Band(hi=-1)
    assert support_band(g, "p") == Band(hi=-1)


def test_a_mask_not_followed_by_the_row_max_has_no_support():
    # exp(w - 1) is not zero where w is -inf only because of the row max: it is, but the row
    # max is what makes a whole masked row NaN instead of 0, so only softmax's shape is recognised
    text = ATTENTION.format(S=96, mask=CAUSAL, masked="where(causal, scores, -inf)", extra="").replace(
        "p = softmax(where(causal, scores, -inf))", "p = exp(where(causal, scores, -inf) - 1.0)")
    g = prepared(fusec.parse(text))
    assert support_band(g, "p") is None


def test_band_columns():
    lower = Band(lo=0)
    assert lower.cols(0, 32, 96) == (0, 32) and lower.cols(64, 96, 96) == (0, 96)
    assert Band(lo=40).cols(0, 32, 96)[1] == 0  # no column kept: the block needs no call
    assert Band(hi=0).cols(32, 64, 96) == (32, 96)
    assert Band(lo=0, hi=7).cols(32, 64, 96) == (25, 64)
    assert lower.fraction(1024, 1024, 128) == pytest.approx(9 / 16)


# ------------------------------------------------------------------- compiled, against the interpreter


def check_against_interpreter(graph, inputs=None, skips: bool = True):
    program = fusec.compile(graph, backend="c")
    xs = inputs if inputs is not None else random_inputs(program.graph, 0)
    actual = program(*xs)
    expected = interpret(program.graph, *xs)
    assert compare_output(program.graph, "out", actual, expected) is None
    blocked = [k for k in program.stages.kernels if "blocks of" in k.source]
    assert bool(blocked) == skips
    return actual


@pytest.mark.parametrize("S", [96, 200])
@pytest.mark.parametrize(
    "mask",
    [
        CAUSAL,
        "iota(shape=[S, S]) <= iota(shape=[S, S], axis=1)",  # upper triangle
        "iota(shape=[S, S]) >= iota(shape=[S, S], axis=1) + 40",  # the first 40 rows fully masked: NaN
        "iota(shape=[S, S]) + 50 >= iota(shape=[S, S], axis=1)",  # a diagonal above the main one
        "iota(shape=[S, S], axis=1) > iota(shape=[S, S]) + 100",  # most rows fully masked
        "logical_and(iota(shape=[S, S]) >= iota(shape=[S, S], axis=1), "
        "iota(shape=[S, S]) < iota(shape=[S, S], axis=1) + 33)",  # a sliding window
    ],
)
def test_masked_attention_matches_the_interpreter(mask, S):
    check_against_interpreter(attention(mask, S=S))


def test_mask_in_the_other_branch_matches_the_interpreter():
    check_against_interpreter(attention(masked="where(causal, -inf, scores)"))


def test_random_mask_matches_the_interpreter():
    graph = attention("m", extra=", m: bool[S, S]")
    check_against_interpreter(graph, skips=False)


def test_fully_masked_rows_stay_nan():
    out = check_against_interpreter(attention("iota(shape=[S, S]) >= iota(shape=[S, S], axis=1) + 40"))
    assert np.isnan(out[:, :40]).all() and np.isfinite(out[:, 40:]).all()


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_inf_in_the_skipped_rows_of_v_reaches_every_row(bad):
    # p is exactly 0 above the diagonal, but 0 * inf is NaN: with a non-finite v nothing is skipped
    graph = attention()
    xs = random_inputs(graph, 1)
    xs[2][:, -1, :] = bad  # the last row of v is read with weight 0 by every other row
    out = check_against_interpreter(graph, xs)
    assert np.isnan(out[:, 0]).all()


def test_the_mask_is_computed_in_the_kernel_that_uses_it():
    p = plan(attention(S=256), "auto")
    assert len(p.groups) == 3  # q @ k^T, softmax with the mask, p @ v: no mask kernel
    assert p.group_of("causal") is p.group_of("p")


@pytest.mark.parametrize("S", [40, 96])
def test_a_two_dimensional_causal_matmul_with_the_mask_in_its_epilogue(S):
    # no batch: the matmul is tiled along i itself, and the epilogue computes the mask from i
    text = f"""
graph g(q: f32[{S}, 16], k: f32[{S}, 16]) {{
  causal = iota(shape=[{S}, {S}]) >= iota(shape=[{S}, {S}], axis=1)
  return y = where(causal, q @ transpose(k) * 0.25, -inf)
}}"""
    graph = fusec.parse(text)
    program = fusec.compile(graph, backend="c")
    assert program.kernels == 1
    xs = random_inputs(program.graph, 0)
    expected = interpret(program.graph, *xs)
    assert compare_output(program.graph, "y", program(*xs), expected) is None


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_a_mask_shared_by_two_batched_matmuls(backend):
    # the mask is read by two kernels: the one that computes it must store it, and a batched
    # matmul kernel stores values of its own shape only, so the mask stays where it can be stored
    graph = fusec.parse("""
graph g(q: f32[2, 64, 16], k: f32[2, 64, 16], v: f32[2, 64, 16]) {
  causal = iota(shape=[64, 64]) >= iota(shape=[64, 64], axis=1)
  y = where(causal, q @ transpose(k, perm=[0, 2, 1]) * 0.25, -inf)
  z = where(causal, q @ transpose(v, perm=[0, 2, 1]), 0.0)
  return y, z
}""")
    program = fusec.compile(graph, backend=backend)
    xs = random_inputs(program.graph, 0)
    for name, a, e in zip(program.graph.outputs, program(*xs), interpret(program.graph, *xs)):
        assert compare_output(program.graph, name, a, e) is None, name


def test_bisection_does_not_blame_a_masked_matmul_for_elements_nobody_reads():
    # q @ k^T computes only the band the causal mask keeps; run alone on exact inputs, its unwritten
    # elements outside the band must not make it "the first kernel that diverges"
    from fusec.bisect import _first_divergent_group, compile_with

    g = fusec.load(Path(__file__).resolve().parent.parent / "examples" / "08_attention.fg", sizes={"H": 2, "S": 64, "Dh": 16})
    assert _first_divergent_group(compile_with(g, "c"), random_inputs(g, seed=0)) is None
