"""The NumPy backend against the interpreter: every example, tails, odd shapes, every dtype, special
values, random graphs; plus golden snapshots of the generated Python."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, small_sizes
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from fusec.api import Compiled
from fusec.codegen.numpy_backend import NumpyBackend
from fusec.errors import FusecError
from fusec.frontend import load, parse
from fusec.fusion import plan
from fusec.inputs import random_inputs
from fusec.interp import interpret
from fusec.ir import BOOL, F32, F64, I32, I64, Graph
from fusec.loops.lower import lower_group
from fusec.loops.schedule import Schedule
from fusec.pipeline import compile_stages
from fusec.tolerance import compare_output

GOLDEN = Path(__file__).resolve().parent / "golden"


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def check_against_interpreter(compiled, graph, arrays):
    expected = as_tuple(interpret(graph, *arrays))
    got = as_tuple(compiled(*[a.copy() for a in arrays]))
    assert len(got) == len(expected)
    for name, g, e in zip(graph.outputs, got, expected):
        mismatch = compare_output(graph, name, g, e)  # judged by the precision it was computed in
        assert mismatch is None, f"{graph.name}: output {name}: {mismatch}"


def with_schedules(stages, make_schedule):
    """The same compiled graph with every kernel rebuilt under another schedule."""
    be = NumpyBackend()
    kernels = []
    for grp, nest, k in zip(stages.plan.groups, stages.nests, stages.kernels):
        if nest is None:
            kernels.append(k)
            continue
        kept = sum(1 for d in nest.dims if not d.reduced)
        kernels.append(be.build(stages.plan.graph, grp, nest, make_schedule(kept)))
    return Compiled(dataclasses.replace(stages, kernels=kernels))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_matches_the_interpreter(path):
    sizes = small_sizes(path)
    graph = load(path, sizes=sizes)
    stages = compile_stages(path, backend="numpy", sizes=sizes)
    arrays = random_inputs(graph, seed=3)
    check_against_interpreter(Compiled(stages), graph, arrays)
    # small tiles that do not divide the extents: every kernel runs several tiles and a tail
    check_against_interpreter(with_schedules(stages, lambda kept: Schedule(tiles=(3,) * kept)), graph, arrays)
    check_against_interpreter(with_schedules(stages, lambda kept: Schedule(tiles=(1,) * max(kept - 1, 0) + (5,) * min(kept, 1))), graph, arrays)


def test_generated_code_is_tiled_with_scratch_and_out_arguments():
    stages = compile_stages(EXAMPLES[1], backend="numpy", sizes={"N": 64, "M": 1024}, rewrite_classes=())
    src = stages.kernels[0].source
    assert "for i0_o in range(2):" in src  # 65536 elements in tiles of 32768
    assert "np.empty((32768,), np.float32)" in src  # one tile of scratch, allocated once
    assert "out=t0)" in src and "np.tanh(" in src
    compile(src, "<generated>", "exec")  # it is plain Python


SPECIAL_SOURCES = [
    # reductions over a non-trailing axis, keepdims false, several outputs of both shapes
    """graph r(x: f32[5, 4, 3]) {
      s = sum(x, axis=[0, 2])
      m = max(x, axis=[0, 2], keepdims=true)
      y = exp(x - m)
      return s, y, m
    }""",
    # size-0 and size-1 axes, broadcasting from both sides
    """graph z(a: f32[0, 3], b: f32[1, 3], c: f32[4, 1]) {
      y = a * b + 1
      w = b + c
      s = sum(a, axis=0)
      return y, w, s
    }""",
    # layout ops fused into an elementwise kernel: transpose, slice with a step, reshape, concat, iota
    """graph l(x: f32[4, 6], v: f32[6]) {
      t = transpose(x) * 2
      s = slice(x, axis=1, start=5, stop=0, step=-2)
      r = reshape(x, shape=[3, 8]) + 1
      c = concat(x, x * 2, axis=0)
      i = iota(shape=[4, 6], axis=1, dtype=f32) + x
      e = expand_dims(v, axis=0) + x
      return t, s, r, c, i, e
    }""",
    # a reshape that does not line up with a transpose: index arithmetic with / and %
    """graph g(x: f32[2, 3, 4]) {
      y = reshape(transpose(x, perm=[1, 0, 2]), shape=[3, 8]) * 3
      return y
    }""",
    # integer and boolean dtypes, casts, comparisons, where, integer power, mean of integers
    """graph d(i: i32[7], j: i64[7], b: bool[7]) {
      k = i * 3 - 2
      p = i ** 2
      w = where(b, i, 0)
      c = cast(j, dtype=f64) / 4
      q = sum(b)
      m = mean(i)
      n = max(j) + min(i)
      return k, p, w, c, q, m, n
    }""",
    # a scalar graph and a full reduction to a scalar
    """graph s(x: f64[], y: f64[3, 3]) {
      a = x * 2 + sum(y)
      return a
    }""",
    # matmul with vector operands and broadcast batches, with an epilogue
    """graph m(a: f32[2, 3, 4], b: f32[4, 5], v: f32[4]) {
      y = relu(a @ b) + 1
      u = a @ v
      w = v @ b
      return y, u, w
    }""",
]


@pytest.mark.parametrize("source", SPECIAL_SOURCES, ids=lambda s: s.split("(")[0].split()[-1])
def test_odd_shapes_dtypes_and_layouts(source):
    graph = parse(source)
    compiled = Compiled(compile_stages(graph, backend="numpy"))
    check_against_interpreter(compiled, graph, random_inputs(graph, seed=5))


def test_nan_and_inf_are_computed_not_rejected():
    graph = parse("""graph n(x: f32[6, 5]) {
      m = max(x, axis=-1, keepdims=true)
      y = exp(x - m) / sum(exp(x - m), axis=-1, keepdims=true)
      z = sqrt(x) + log(x)
      return y, z, m
    }""")
    x = np.array(np.random.default_rng(0).standard_normal((6, 5)), np.float32)
    x[0, 1] = np.nan
    x[1, :] = -np.inf
    x[2, 3] = np.inf
    x[3, 0] = 0.0
    compiled = Compiled(compile_stages(graph, backend="numpy"))
    check_against_interpreter(compiled, graph, [x])


def test_a_missing_op_spelling_is_an_internal_error_not_silence():
    from fusec.codegen.numpy_backend import KernelEmitter
    from fusec.codegen.numpy_spelling import NumpyCodegenError
    from fusec.loops.ir import Op

    g = parse("graph e(x: f32[3]) { return exp(x) }")
    p = plan(g)
    nest = lower_group(p.graph, p.groups[0])
    store = nest.body[0].body[0]
    bad = dataclasses.replace(nest, body=(dataclasses.replace(nest.body[0], body=(dataclasses.replace(store, value=Op("frobnicate", (store.value,), F32)),)),))
    with pytest.raises(NumpyCodegenError, match="frobnicate"):
        KernelEmitter(bad).function()


# ------------------------------------------------------------------------------ random graphs

DTYPES = [F32, F64, I32, I64, BOOL]
SHAPES = [(3, 4), (4,), (3, 1), (1, 4), (2, 3, 4), (), (0, 4), (5,)]


def _try(g: Graph, op: str, *args, **attrs):
    try:
        return g.add(op, *args, **attrs)
    except FusecError:
        return None


@st.composite
def random_graphs(draw) -> Graph:
    g = Graph("rand")
    values = []
    for i in range(draw(st.integers(1, 3))):
        values.append(g.add_input(f"x{i}", draw(st.sampled_from(DTYPES[:4] + [F32, F32])), draw(st.sampled_from(SHAPES))))
    for _ in range(draw(st.integers(1, 12))):
        a = draw(st.sampled_from(values))
        t = g.type_of(a)
        fam = draw(st.sampled_from(["unary", "binary", "binary", "reduce", "layout", "cmp", "cast", "matmul"]))
        if t.rank == 0 and fam in ("reduce", "layout"):
            continue  # axes of a scalar: the op table's business, not the backend's
        if fam == "unary":
            op = draw(st.sampled_from(["exp", "tanh", "sqrt", "sigmoid", "rsqrt", "erf", "gelu"] if t.dtype.is_float else ["neg", "abs", "relu"]))
            v = _try(g, op, a)
        elif fam == "binary":
            v = _try(g, draw(st.sampled_from(["add", "sub", "mul", "div", "maximum", "minimum", "pow"])), a,
                     draw(st.sampled_from(values + [2, 0.5])))
        elif fam == "reduce":
            axis = draw(st.sampled_from([None, 0, -1, [0, -1]]))
            v = _try(g, draw(st.sampled_from(["sum", "max", "min", "mean", "prod"])), a, axis=axis, keepdims=draw(st.booleans()))
        elif fam == "cmp":
            b = draw(st.sampled_from(values))
            c = _try(g, draw(st.sampled_from(["lt", "ge", "eq"])), a, b)
            v = _try(g, "where", c, a, b) if c else None
        elif fam == "cast":
            v = _try(g, "cast", a, dtype=draw(st.sampled_from(DTYPES)).name)
        elif fam == "matmul":
            v = _try(g, "matmul", a, draw(st.sampled_from(values)))
        else:
            kind = draw(st.sampled_from(["transpose", "reshape", "slice", "expand_dims", "squeeze", "concat", "broadcast_to"]))
            if kind == "transpose":
                v = _try(g, "transpose", a)
            elif kind == "reshape":
                v = _try(g, "reshape", a, shape=[-1])
            elif kind == "slice":
                v = _try(g, "slice", a, axis=0, start=draw(st.sampled_from([0, 1, -1])), step=draw(st.sampled_from([1, 2, -1])))
            elif kind == "expand_dims":
                v = _try(g, "expand_dims", a, axis=0)
            elif kind == "squeeze":
                v = _try(g, "squeeze", a)
            elif kind == "concat":
                v = _try(g, "concat", a, draw(st.sampled_from(values)), axis=0)
            else:
                v = _try(g, "broadcast_to", a, shape=[2] + list(t.shape)) if t.rank < 3 else None
        if v is not None:
            values.append(v)
    ops = [n.name for n in g.ops()]
    if not ops:
        ops = [g.add("neg", values[0]) if g.type_of(values[0]).dtype != BOOL else g.add("cast", values[0], dtype="i32")]
    sinks = [n for n in ops if not g.consumers(n)]
    g.set_outputs(list(dict.fromkeys(sinks + draw(st.lists(st.sampled_from(ops), max_size=2)))))
    return g


def special_inputs(graph: Graph, seed: int, nan: bool = True) -> list[np.ndarray]:
    """Random inputs with zeros, infinities and (unless nan=False) NaN sprinkled into the float ones."""
    arrays = random_inputs(graph, seed=seed)
    rng = np.random.default_rng(seed)
    for a in arrays:
        if a.dtype.kind == "f" and a.size:
            flat = a.reshape(-1)
            for v in (0.0, np.inf, -np.inf, np.nan) if nan else (0.0, np.inf, -np.inf):
                if rng.random() < 0.3:
                    flat[rng.integers(flat.size)] = v
    return arrays


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(random_graphs(), st.integers(0, 3), st.data())
def test_random_graphs_match_the_interpreter(graph, seed, data):
    note(str(graph))
    # no rewrite stage: this test is about lowering and the backend (the rewriter has its own tests)
    compiled = Compiled(compile_stages(graph.copy(), backend="numpy", rewrite_classes=None))
    arrays = special_inputs(graph, seed)
    check_against_interpreter(compiled, graph, arrays)
    tiny = with_schedules(compiled.stages, lambda kept: Schedule(tiles=(1,) * max(kept - 1, 0) + (2,) * min(kept, 1)))
    check_against_interpreter(tiny, graph, arrays)

    def random_schedule(kept: int) -> Schedule:
        tiles = tuple(data.draw(st.lists(st.integers(0, 3), min_size=kept, max_size=kept)))
        return Schedule(tiles=tiles, order=tuple(data.draw(st.permutations(range(kept)))), unroll=2, vectorize=True)

    check_against_interpreter(with_schedules(compiled.stages, random_schedule), graph, arrays)


# ------------------------------------------------------------------------------ golden snapshots

GOLDEN_CASES = {
    "numpy_chain.py": ("01_chain.fg", {"N": 64, "M": 512}),
    "numpy_softmax.py": ("03_softmax.fg", {"N": 64, "D": 256}),
    "numpy_layernorm.py": ("04_layernorm.fg", {"N": 64, "D": 256}),
    "numpy_mlp.py": ("06_mlp.fg", {"B": 64, "K": 32, "F": 256}),
}


@pytest.mark.parametrize("golden", list(GOLDEN_CASES))
def test_generated_python_matches_golden(golden):
    """The generated Python is part of the product (a learner prints it): changes must be deliberate.

    Regenerate with FUSEC_UPDATE_GOLDEN=1 after an intended change, and review the diff.
    """
    name, sizes = GOLDEN_CASES[golden]
    # the pipeline fusec.compile runs (rewrite, plan, lower, default schedules), so the snapshot is the program that is built
    stages = compile_stages(EXAMPLES[0].parent / name, backend="numpy", sizes=sizes, tune_db=False)
    text = "\n".join(k.source for k in stages.kernels)
    path = GOLDEN / golden
    if os.environ.get("FUSEC_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with FUSEC_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"generated Python for {name} changed; see {path} (FUSEC_UPDATE_GOLDEN=1 to accept)"
