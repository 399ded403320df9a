"""Layout ops that cost nothing: a transpose or reshape that only rearranges a matmul operand is a
member of the matmul's kernel (fusion/legality.operand_views) and becomes the operand's strides;
a reshape merging transposed axes is copied once per call (split axes) or gathered; each path
against the interpreter on both backends."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES, small_sizes

import fusec
from fusec.fusion.planner import plan
from fusec.inputs import random_inputs
from fusec.interp import interpret
from fusec.tolerance import compare_output


def example(stem: str):
    path = next(p for p in EXAMPLES if p.stem == stem)
    return fusec.load(path, sizes=small_sizes(path))


def kinds(graph) -> list[str]:
    return [g.kind for g in plan(graph, "auto").groups]


def check(graph, backend: str = "c"):
    program = fusec.compile(graph, backend=backend)
    xs = random_inputs(program.graph, 3)
    actual = program(*xs)
    expected = interpret(program.graph, *xs)
    outs = actual if isinstance(actual, tuple) else (actual,)
    exps = expected if isinstance(expected, tuple) else (expected,)
    for name, a, e in zip(program.graph.outputs, outs, exps):
        assert compare_output(program.graph, name, a, e) is None, name
    return program


def test_attention_has_no_layout_kernel():
    p = plan(example("08_attention"), "auto")
    assert "layout" not in [g.kind for g in p.groups]
    assert p.group_of("scores_transpose") is p.group_of("scores_matmul")


def test_transformer_block_reads_heads_through_strides():
    p = plan(example("09_transformer_block"), "auto")
    assert "layout" not in [g.kind for g in p.groups]
    assert len(p.groups) <= 12  # 8 matmuls, 2 layernorms, softmax, and the mask unless it joins softmax


@pytest.mark.parametrize("backend", ["c", "numpy"])
@pytest.mark.parametrize("stem", ["08_attention", "09_transformer_block"])
def test_examples_match_the_interpreter(stem, backend):
    check(example(stem), backend)


def test_the_merged_heads_operand_is_copied_not_looped():
    program = check(example("09_transformer_block"))
    source = "\n".join(k.source for k in program.stages.kernels)
    assert "is copied into its matmul layout" in source
    # every matmul goes to BLAS: no kernel runs a matmul as a scalar C loop
    assert all("NumPy's matmul" in k.source for k in program.stages.kernels if k.nest.kind == "matmul")


def test_a_transpose_read_elsewhere_stays_a_kernel():
    graph = fusec.parse("""
graph g(a: f32[32, 16], b: f32[24, 16]) {
  bt = transpose(b)
  return y = a @ bt, z = bt * 2
}""")
    p = plan(graph, "auto")
    assert p.group_of("bt") is not p.group_of("y")
    check(graph)


def test_a_transposed_operand_that_is_an_output_stays_a_kernel():
    graph = fusec.parse("""
graph g(a: f32[32, 16], b: f32[24, 16]) {
  bt = transpose(b)
  return y = a @ bt, bt
}""")
    p = plan(graph, "auto")
    assert p.group_of("bt") is not p.group_of("y")
    check(graph)


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_an_operand_no_axis_split_describes_is_gathered(backend):
    # [6, 4] transposed to [4, 6] and reshaped to [3, 8]: the index is (8i + k) % 6 * 4 + (8i + k) / 6
    graph = fusec.parse("""
graph g(x: f32[6, 4], w: f32[8, 5]) {
  return y = reshape(transpose(x), shape=[3, 8]) @ w
}""")
    program = check(graph, backend)
    assert len(program.stages.kernels) == 1


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_both_operands_through_views(backend):
    graph = fusec.parse("""
graph g(a: f32[16, 2, 8], b: f32[2, 24, 8]) {
  return y = transpose(a, perm=[1, 0, 2]) @ transpose(b, perm=[0, 2, 1]) + 1.0
}""")
    program = check(graph, backend)
    assert len(program.stages.kernels) == 1
    assert np.isfinite(program(*random_inputs(program.graph, 0))).all()


@pytest.mark.parametrize("backend", ["c", "numpy"])
@pytest.mark.parametrize("rows", [16, 40])
def test_a_copied_weight_operand_is_not_cut_into_row_tiles(backend, rows):
    # w's reshape is gathered into a copy over (k, j); an unbatched matmul's row tiles cut i, which is
    # not one of w's axes: the C backend sliced the copy along k (a crash, 16 rows of k for 192)
    g = fusec.parse(f"graph r<A=8, B={rows}, M=24>(x: f32[A, B, M], w: f32[M, 128]) "
                    "{ return reshape(transpose(x, perm=[1, 0, 2]), shape=[B, A * M]) @ reshape(w, shape=[A * M, 16]) * 2.0 }")
    xs = random_inputs(g, seed=0)
    got = np.asarray(fusec.compile(g, backend=backend, tune_db=False)(*xs))
    assert compare_output(g, g.outputs[0], got, np.asarray(interpret(g, *xs))) is None
