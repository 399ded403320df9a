"""Staged transposed tiles (fusec/codegen/c_stage.py): a tile loop that reads through a transpose and
computes a transcendental op first copies the transposed input's tile into a local array, so the
loop that computes reads in order and vectorizes. A loop of plain arithmetic is left as it is. The
results stay the interpreter's, at sizes that are no multiple of the tiles, in float32 and float64,
and every index stays inside its buffer (FUSEC_AT and ASan)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_sanitize import sanitized

import fusec
from fusec.codegen.c_stage import MAX_TILE_BYTES, stage_transposed_tiles
from fusec.fusion.planner import plan, prepare
from fusec.interp import interpret
from fusec.loops.defaults import STAGED_TRANSPOSE_TILES, TRANSPOSE_TILES, default_schedule
from fusec.loops.ir import LocalArray, walk
from fusec.loops.lower import lower_group
from fusec.loops.schedule import schedule_or_fallback
from fusec.loops.simplify import simplify
from fusec.tolerance import compare

ERF_ADD = """graph t(x: f32[{n}, {m}], w: f32[{m}, {n}]) {{
  y = erf(transpose(x, perm=[1, 0])) + w
  return y
}}"""


def _one_kernel(g) -> tuple[str, ...]:
    """force_fuse pairs that put every op of `g` in one kernel (the planner may keep the transpose apart)."""
    ops = [n.name for n in prepare(g).ops()]
    return tuple(f"{a},{b}" for a, b in zip(ops, ops[1:]))


def _compile(text: str):
    g = fusec.parse(text)
    return g, fusec.compile(g, backend="c", policy="greedy", tune_db=False, force_fuse=_one_kernel(g))


def _source(text: str) -> str:
    return _compile(text)[1].source()


def _check(text: str, dtype=np.float32) -> None:
    g, program = _compile(text)
    assert program.source().count("fusec kernel") == 1
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(g.type_of(v).shape).astype(dtype) for v in g.inputs]
    got = program(*arrays)
    got = got if isinstance(got, tuple) else (got,)
    expected = interpret(g, *arrays)
    expected = expected if isinstance(expected, tuple) else (expected,)
    for a, b in zip(got, expected):
        mismatch = compare(np.asarray(a), b)
        assert mismatch is None, mismatch


def test_a_transcendental_over_a_transposed_read_stages_the_tile():
    source = _source(ERF_ADD.format(n=2048, m=1024))
    rows, columns = STAGED_TRANSPOSE_TILES
    assert f"float x_tile[{rows * columns}];" in source, source
    assert f"i1 < i1_o * {columns} + {columns}" in source and f"i0 < i0_o * {rows} + {rows}" in source, source
    # the copy reads x along its rows; the loop that computes reads the tile, not x
    assert re.search(r"x_tile\[[^\]]*\] = x\[i0 \+ i1 \* 1024\];", source), source
    assert "fusec_erff(x_tile[" in source and "fusec_erff(x[" not in source, source


def test_plain_arithmetic_over_a_transposed_read_is_not_staged():
    # the extra pass costs more than the vector loop gains when there is no function to vectorize
    source = _source("graph t(x: f32[2048, 1024], w: f32[1024, 2048]) {\n"
                     "  y = transpose(x, perm=[1, 0]) * 2.0 + w\n  return y\n}")
    assert "_tile[" not in source, source


def test_one_local_array_per_distinct_strided_load():
    text = ("graph t(x: f32[300, 200], v: f32[300, 200]) {\n  a = transpose(x, perm=[1, 0])\n"
            "  y = exp(a) * a + tanh(transpose(v, perm=[1, 0]))\n  return y\n}")
    g = fusec.parse(text)
    p = plan(g, "greedy", force_fuse=_one_kernel(g))
    (nest,) = [lower_group(p.graph, grp) for grp in p.groups]
    scheduled = simplify(schedule_or_fallback(nest, default_schedule(nest, "c")))
    staged = stage_transposed_tiles(scheduled)
    arrays = sorted(s.name for s in walk(staged.body) if isinstance(s, LocalArray))
    assert arrays == ["v_tile", "x_tile"]  # x is read twice, at one index: one tile
    assert stage_transposed_tiles(staged) == staged  # staged once: the loop that computes reads in order
    _check(text)


@pytest.mark.parametrize("shape, perm", [((300, 200), [1, 0]), ((3, 130, 70), [0, 2, 1]), ((40, 5, 33), [2, 1, 0]),
                                         ((17, 129), [1, 0])])
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_staged_tiles_compute_what_the_interpreter_does(shape, perm, dtype):
    out = tuple(shape[p] for p in perm)
    text = (f"graph t(x: {dtype}[{', '.join(map(str, shape))}], w: {dtype}[{', '.join(map(str, out))}]) {{\n"
            f"  y = erf(transpose(x, perm={perm})) * 0.5 + exp(w * 0.1)\n  return y\n}}")
    _check(text, np.float32 if dtype == "f32" else np.float64)


def test_the_largest_tile_fits_the_limit():
    for rows, columns in (TRANSPOSE_TILES, STAGED_TRANSPOSE_TILES):
        assert rows * columns * 8 <= MAX_TILE_BYTES  # the default tiles are staged in float64 too


def test_staged_tiles_stay_inside_their_buffers(tmp_path):
    code = f"""
import numpy as np
import fusec
from fusec.inputs import random_inputs
from fusec.interp import interpret
from fusec.tolerance import compare
g = fusec.parse({ERF_ADD.format(n=300, m=130)!r})
from fusec.fusion.planner import prepare
ops = [n.name for n in prepare(g).ops()]
pairs = tuple(f"{{a}},{{b}}" for a, b in zip(ops, ops[1:]))
program = fusec.compile(g, backend="c", policy="greedy", tune_db=False, force_fuse=pairs)
assert "x_tile[FUSEC_AT(" in program.source(), program.source()
arrays = random_inputs(g, seed=1)
assert compare(np.asarray(program(*arrays)), interpret(g, *arrays)) is None
print("clean")
"""
    r = sanitized(code, tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "clean" in r.stdout


def test_bool_and_integer_tiles_are_staged_in_their_own_types():
    text = ("graph t(m: bool[130, 70], x: f32[70, 130], k: i32[130, 70]) {\n"
            "  y = where(transpose(m, perm=[1, 0]), exp(x), 0.0) + transpose(k, perm=[1, 0])\n  return y\n}")
    source = _source(text)
    assert "uint8_t m_tile[" in source and "int32_t k_tile[" in source, source
    g, program = _compile(text)
    rng = np.random.default_rng(0)
    m = rng.random((130, 70)) < 0.5
    x = rng.standard_normal((70, 130)).astype(np.float32)
    k = rng.integers(-5, 5, (130, 70)).astype(np.int32)
    assert compare(np.asarray(program(m, x, k)), interpret(g, m, x, k)) is None


def test_explain_says_which_loop_a_kernel_runs():
    from fusec.fusion.explain import explain, format_report

    g = fusec.parse(ERF_ADD.format(n=256, m=128))
    report = explain(plan(g, "greedy", force_fuse=_one_kernel(g)))
    assert [grp["loop"] for grp in report["groups"]] == ["staged"]
    assert "transposed tiles staged, then a vector loop" in format_report(report)
    plain = fusec.parse("graph t(x: f32[256, 128], w: f32[128, 256]) {\n  y = transpose(x, perm=[1, 0]) + w\n  return y\n}")
    assert [grp["loop"] for grp in explain(plan(plain, "greedy"))["groups"]] == ["strided"]
