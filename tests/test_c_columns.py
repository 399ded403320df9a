"""Column reductions on the C backend (fusec/loops/interchange.py): a reduce kernel that keeps its
innermost axis runs its reduced loops outside and the kept axis inside, vectorized, with one
accumulator per kept point of a tile. Checked against the interpreter for every reduction and dtype,
odd and degenerate sizes, NaN, keepdims, multi-pass kernels, row values and epilogues; against the
unscheduled nest with the reference executor; and on the generated source itself."""

from __future__ import annotations

import re

import numpy as np
import pytest

import fusec
from fusec.codegen.c_backend import CBackend, c_source
from fusec.fusion.planner import plan
from fusec.interp import interpret
from fusec.loops.defaults import default_schedule
from fusec.loops.interchange import column_var
from fusec.loops.ir import Load, LocalArray, Loop, stmt_exprs, walk, walk_expr
from fusec.loops.lower import lower_group
from fusec.loops.reference import run_nest
from fusec.loops.schedule import Schedule, apply_schedule, schedule_or_fallback
from fusec.loops.simplify import simplify
from fusec.runtime.build import find_compiler
from fusec.tolerance import compare


def c_available() -> bool:
    try:
        find_compiler()
    except fusec.FusecError:
        return False
    return True


needs_c = pytest.mark.skipif(not c_available(), reason="no C compiler")


@pytest.fixture(scope="module")
def backend() -> CBackend:
    return CBackend()


def run_c(backend: CBackend, graph, arrays, force_fuse=()) -> tuple[list, tuple[np.ndarray, ...]]:
    """Plan (one kernel where force_fuse asks), lower, build with the C default and run every group;
    returns (the schedules used, the graph's outputs)."""
    p = plan(graph, "greedy", force_fuse=force_fuse)
    values = dict(zip(graph.inputs, arrays))
    schedules = []
    for group in p.groups:
        nest = lower_group(p.graph, group)
        schedule = backend.default_schedule(nest)
        schedules.append(schedule)
        kernel = backend.build(p.graph, group, nest, schedule)
        args = []
        for b in nest.buffers:
            if b.role == "in":
                args.append(np.ascontiguousarray(values[b.value]).reshape(b.shape))
            else:
                values[b.written_value] = np.empty(b.shape, b.dtype.numpy)
                args.append(values[b.written_value])
        kernel(*args)
    return schedules, tuple(np.asarray(values[o]).reshape(graph.type_of(o).shape) for o in graph.outputs)


def check(backend, text: str, arrays, force_fuse=(), column: bool = True) -> None:
    graph = fusec.parse(text)
    expected = interpret(graph, *arrays)
    expected = expected if isinstance(expected, tuple) else (expected,)
    schedules, actual = run_c(backend, graph, arrays, force_fuse)
    assert any(s.acc_row for s in schedules) == column, f"column form {'not ' if column else ''}used: {schedules}"
    for name, a, e in zip(graph.outputs, actual, expected):
        assert a.dtype == e.dtype, f"{name}: {a.dtype} != {e.dtype}"
        mismatch = compare(a, e)
        assert mismatch is None, f"output {name}: {mismatch}"


def inputs(dtype: str, shape, rng, near_one: bool = False) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in ("i32", "i64"):
        return rng.integers(-5, 6, shape).astype(np.int32 if dtype == "i32" else np.int64)
    x = rng.uniform(0.9, 1.1, shape) if near_one else rng.standard_normal(shape)
    return x.astype(np.float32 if dtype == "f32" else np.float64)


CASES = [(op, dt) for dt in ("f32", "f64", "i32", "bool") for op in ("sum", "mean", "max", "min", "prod")
         if not (dt == "bool" and op in ("mean", "prod"))]


@needs_c
@pytest.mark.parametrize("op,dtype", CASES, ids=[f"{op}-{dt}" for op, dt in CASES])
@pytest.mark.parametrize("shape", [(300, 77), (70, 1000), (5, 16), (1000, 9)], ids=lambda s: "x".join(map(str, s)))
def test_column_reductions_match_the_interpreter(backend, op, dtype, shape):
    """Every reduction and dtype; M a multiple of the vector width or not, one tile or several with a
    short last one, and M just over a vector."""
    rng = np.random.default_rng(hash((op, dtype, shape)) % 2**32)
    x = inputs(dtype, shape, rng, near_one=op == "prod")
    text = f"graph g(x: {dtype}[{shape[0]}, {shape[1]}]) {{ s = {op}(x, axis=0) return s }}"
    with np.errstate(over="ignore"):
        check(backend, text, [x])


@needs_c
@pytest.mark.parametrize("width", [3, 7, 8, 9, 15])
def test_integer_product_read_by_a_later_pass(backend, width):
    """gcc 12.2 -O3 -march=native vectorized the plain inner loops of this kernel wrongly (3-15
    columns); the form's inner loops carry `omp simd`, and under 8 columns the strided form is kept."""
    x = np.random.default_rng(176).integers(-3, 4, (36, width)).astype(np.int32)
    text = f"""graph g(x: i32[36, {width}]) {{
      a = x - 1
      r = prod(a, axis=0, keepdims=true)
      d = a - r
      q = min(d, axis=0)
      y = d * 2
      return q, y, r
    }}"""
    with np.errstate(over="ignore"):
        check(backend, text, [x], force_fuse=[("a", "r"), ("r", "d"), ("d", "q"), ("q", "y")], column=width >= 8)


@needs_c
@pytest.mark.parametrize("keepdims", [True, False])
def test_keepdims_and_three_axes(backend, keepdims):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 50, 40)).astype(np.float32)
    k = "true" if keepdims else "false"
    text = f"""graph g(x: f32[4, 50, 40]) {{
      m = max(x, axis=1, keepdims={k})
      s = sum(x, axis=1, keepdims={k})
      a = mean(x, axis=[0, 1], keepdims={k})
      return m, s, a
    }}"""
    check(backend, text, [x])


@needs_c
def test_nan_propagates_per_column(backend):
    x = np.random.default_rng(4).standard_normal((200, 40)).astype(np.float32)
    x[0, 3] = np.nan       # first row
    x[117, 9] = np.nan     # middle
    x[199, 39] = np.nan    # last row, last column
    x[:, 20] = -np.inf     # a column of -inf: max is -inf
    x[50, 21] = np.inf
    text = "graph g(x: f32[200, 40]) { a = max(x, axis=0) b = min(x, axis=0) c = sum(x, axis=0) return a, b, c }"
    check(backend, text, [x])
    _, (a, b, c) = run_c(backend, fusec.parse(text), [x])
    assert np.isnan(a[[3, 9, 39]]).all() and np.isnan(b[[3, 9, 39]]).all() and np.isnan(c[[3, 9, 39]]).all()
    assert a[20] == -np.inf and a[21] == np.inf


@needs_c
def test_argmax_and_argmin_per_column(backend):
    """argmax/argmin are two passes (the max, then the first index holding it or a NaN): ties, NaN."""
    x = np.random.default_rng(10).integers(-3, 4, (300, 77)).astype(np.float32)  # many ties
    x[150, 5] = np.nan
    x[0, 6] = np.nan
    text = "graph g(x: f32[300, 77]) { a = argmax(x, axis=0) b = argmin(x, axis=0, keepdims=true) return a, b }"
    check(backend, text, [x])


SOFTMAX = "graph sm(x: f32[{n}, {m}]) {{ m = max(x, axis=0, keepdims=true) e = exp(x - m) s = sum(e, axis=0, keepdims=true) y = e / s return y }}"
SOFTMAX_FUSED = [("m", "e_sub"), ("e_sub", "e"), ("e", "s"), ("s", "y")]


@needs_c
@pytest.mark.parametrize("n,m", [(300, 77), (1000, 2100), (3, 40)])
def test_column_softmax_in_one_kernel(backend, n, m):
    """Three passes over the columns (max, sum of exp(x - max), the outputs), each over the rows
    with an accumulator row: the sum in blocks (f32 partial and f64 total rows), then the quotient."""
    x = np.random.default_rng(5).standard_normal((n, m)).astype(np.float32) * 4
    x[n // 2, 0] = np.nan
    check(backend, SOFTMAX.format(n=n, m=m), [x], force_fuse=SOFTMAX_FUSED)


@needs_c
def test_row_values_and_epilogues(backend):
    """layernorm over axis 0 as one kernel: two levels, a row value (rsqrt of the variance) that a
    later pass reads, and a store over the whole space; plus a kept-shape epilogue output."""
    text = """graph ln(x: f32[300, 70], gamma: f32[70], beta: f32[70]) {
      mean = mean(x, axis=0, keepdims=true)
      d = x - mean
      var = mean(d * d, axis=0, keepdims=true)
      inv = rsqrt(var + 1e-5)
      y = d * inv * gamma + beta
      return y, inv
    }"""
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(s).astype(np.float32) * 3 + 1 for s in ((300, 70), (70,), (70,))]
    chain = ["mean", "d", "var_mul", "var", "inv_add", "inv", "y_mul", "y_mul_2", "y"]
    check(backend, text, arrays, force_fuse=list(zip(chain, chain[1:])))
    p = plan(fusec.parse(text), "greedy", force_fuse=list(zip(chain, chain[1:])))
    assert len(p.groups) == 1


@needs_c
def test_degenerate_sizes(backend):
    """M = 1 is a full reduction (no kept axis: the old form); N = 0 gives the identities."""
    x = np.random.default_rng(7).standard_normal((500, 1)).astype(np.float32)
    check(backend, "graph g(x: f32[500, 1]) { s = sum(x, axis=0) return s }", [x], column=False)
    check(backend, "graph g(x: f32[500, 5]) { s = sum(x, axis=0) return s }", [x.repeat(5, axis=1)], column=False)
    empty = np.zeros((0, 33), np.float32)
    text = "graph g(x: f32[0, 33]) { s = sum(x, axis=0) p = prod(x, axis=0) a = mean(x + 1, axis=0) return s, p, a }"
    with np.errstate(invalid="ignore"):
        check(backend, text, [empty], column=column_var_of(text))


def column_var_of(text: str) -> bool:
    graph = fusec.parse(text)
    p = plan(graph)
    return any(column_var(lower_group(p.graph, g)) is not None for g in p.groups if g.kind == "reduce")


def nest_of(text: str):
    graph = fusec.parse(text)
    p = plan(graph)
    (group,) = p.groups
    return lower_group(p.graph, group)


@pytest.mark.parametrize("text,shape", [
    ("graph g(x: f32[70, 37]) { s = sum(x, axis=0) m = max(x, axis=0) return s, m }", (70, 37)),
    ("graph g(x: i32[9, 40]) { s = sum(x, axis=0, keepdims=true) p = prod(x, axis=0) return s, p }", (9, 40)),
])
@pytest.mark.parametrize("width", [1, 8, 16, 32, 64])
def test_reference_executor_agrees_with_the_unscheduled_nest(text, shape, width):
    """The interchange as the IR means it (fusec.loops.reference), any tile width, blocks of 4 rows."""
    nest = nest_of(text)
    rng = np.random.default_rng(8)
    x = rng.integers(-3, 4, shape).astype(nest.buffers[0].dtype.numpy)
    outs_a = [np.zeros(b.shape, b.dtype.numpy) for b in nest.buffers[1:]]
    outs_b = [np.zeros(b.shape, b.dtype.numpy) for b in nest.buffers[1:]]
    run_nest(nest, x, *outs_a)
    scheduled = apply_schedule(nest, Schedule(parallel=True, acc_row=width, reduce_block=32))
    assert any(isinstance(s, LocalArray) for s in walk(scheduled.body))
    run_nest(simplify(scheduled), x, *outs_b)
    for a, b in zip(outs_a, outs_b):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_only_column_reductions_take_the_form():
    assert column_var(nest_of("graph g(x: f32[64, 64]) { s = sum(x, axis=1) return s }")) is None  # a row sum
    assert column_var(nest_of("graph g(x: f32[64, 64]) { s = sum(x, axis=0) return s }")) == "i1"
    assert default_schedule(nest_of("graph g(x: f32[64, 64]) { s = sum(x, axis=0) return s }"), "numpy").acc_row == 0
    with pytest.raises(Exception, match="keeps its innermost axis"):
        apply_schedule(nest_of("graph g(x: f32[64, 64]) { s = sum(x, axis=1) return s }"), Schedule(acc_row=16))


def test_column_sum_source_walks_memory_contiguously():
    """The generated C of a column sum: one parallel tile loop, the reduced loop outside, and the
    innermost (simd) loop over the tile's kept points, reading x with unit stride."""
    nest = nest_of("graph cs(x: f32[2048, 2048]) { s = sum(x, axis=0) return s }")
    schedule = default_schedule(nest, "c")
    assert schedule.acc_row >= 256
    scheduled = simplify(schedule_or_fallback(nest, schedule))
    vector_loops = [lp for lp in walk(scheduled.body) if isinstance(lp, Loop) and lp.kind == "vector"]
    x_loads = [(lp, e) for lp in vector_loops for s in walk(lp.body) for top in stmt_exprs(s)
               for e in walk_expr(top) if isinstance(e, Load) and e.buffer == "x"]
    assert x_loads
    for lp, load in x_loads:
        assert load.index.coef("i1") == 1 and load.index.coef("r0") == 2048  # i1 = i1_o*W + i1_i: unit stride
        assert lp.var == "i1_i"
    source, _ = c_source(scheduled, sanitize=False)
    assert "#pragma omp parallel for" in source
    assert re.search(r"float acc_s_block\[\d+\];", source)
    inner = re.search(r"for \(int64_t r0 = .*?\{\s*#pragma omp simd\s*for \(int64_t i1_i = 0; i1_i < \d+; i1_i\+\+\) \{"
                      r"\s*const int64_t i1 = i1_i \+ i1_o \* \d+;\s*acc_s_block\[i1_i\] = acc_s_block\[i1_i\] \+ x\[i1 \+ r0 \* 2048\];",
                      source, re.S)
    assert inner, source


@needs_c
def test_blocked_column_sum_is_accurate(backend):
    """Blocks of reduce_block // 8 rows per accumulator element: a column sum of 200,000 rows is as
    accurate as the row sum's blocks (f64 truth; the interpreter sums in f64 too)."""
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((200_000, 24)) + 1000).astype(np.float32)
    text = "graph g(x: f32[200000, 24]) { s = sum(x, axis=0) return s }"
    _, (s,) = run_c(backend, fusec.parse(text), [x])
    truth = x.astype(np.float64).sum(axis=0)
    rel = np.abs(s - truth) / np.abs(truth)
    assert rel.max() < 4 * np.finfo(np.float32).eps, rel.max()


SANITIZED_COLUMNS = """
import numpy as np
import fusec
from fusec.tolerance import compare
softmax = "graph sm(x: f32[40, 2100]) { m = max(x, axis=0, keepdims=true) e = exp(x - m) s = sum(e, axis=0, keepdims=true) y = e / s return y }"
chain = ["m", "e_sub", "e", "s", "y"]
for text, fuse in [(softmax, [f"{a},{b}" for a, b in zip(chain, chain[1:])]),
                   ("graph g(x: i32[9, 2063]) { s = sum(x, axis=0) p = max(x, axis=0, keepdims=true) return s, p }", [])]:
    graph = fusec.parse(text)
    compiled = fusec.compile(graph, backend="c", tune_db=False, policy="greedy", force_fuse=fuse)
    source = compiled.source()
    assert "FUSEC_AT(" in source and "accumulator row" in source, source
    x = (np.random.default_rng(0).standard_normal(graph.type_of("x").shape) * 3).astype(graph.type_of("x").dtype.numpy)
    got, want = compiled(x), fusec.interpret(graph, x)
    for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert compare(a, b) is None
print("sanitized column kernels ok")
"""


@needs_c
def test_column_kernels_run_clean_under_asan_and_ubsan(tmp_path):
    """Two tiles with a short last one, a block tail, bounds-checked accumulator rows, in a child process."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    from fusec.runtime.build import sanitizer_env

    env = dict(os.environ, **sanitizer_env(), FUSEC_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", SANITIZED_COLUMNS], env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sanitized column kernels ok" in proc.stdout


def test_the_tuner_stores_and_measures_the_column_form():
    """Schedules travel to the tuner's worker and the database as dicts: acc_row must survive, or a
    tuned column kernel would come back strided."""
    from fusec.tune.space_knobs import schedule_from_dict, schedule_to_dict

    nest = nest_of("graph cs(x: f32[512, 512]) { s = sum(x, axis=0) return s }")
    default = default_schedule(nest, "c")
    assert default.acc_row and schedule_from_dict(schedule_to_dict(default)) == default
    assert schedule_from_dict({"tiles": [8]}).acc_row == 0  # records from before the knob
