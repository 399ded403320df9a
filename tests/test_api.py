"""fusec.compile and the Compiled object; the executor and buffer pool; `fusec compile` and `fusec run --verify`."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import EXAMPLES, small_sizes

import fusec
from fusec.cli.main import main
from fusec.errors import FusecError, FusecInputError
from fusec.frontend import load, parse
from fusec.inputs import random_inputs
from fusec.interp import interpret
from fusec.runtime.buffers import BufferPool
from fusec.runtime.executor import Executor, Step, ValueType
from fusec.tolerance import compare

ADAM = EXAMPLES[6]
SOFTMAX = EXAMPLES[2]


def test_compile_returns_a_callable_with_input_and_output_specs():
    c = fusec.compile(SOFTMAX, backend="numpy", sizes={"N": 5, "D": 7})
    assert [(s.name, s.shape, s.dtype) for s in c.inputs] == [("x", (5, 7), np.float32)]
    assert [(s.shape, s.dtype) for s in c.outputs] == [((5, 7), np.float32)]
    x = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    y = c(x)
    assert isinstance(y, np.ndarray)
    assert compare(y, interpret(load(SOFTMAX, sizes={"N": 5, "D": 7}), x)) is None
    assert "def softmax_k0(x, y):" in c.source()
    assert "kernel 0" in c.explain()
    assert "softmax" in repr(c)


def test_several_outputs_come_back_as_a_tuple_in_declared_order():
    sizes = small_sizes(ADAM)
    c = fusec.compile(ADAM, backend="numpy", sizes=sizes)
    g = load(ADAM, sizes=sizes)
    arrays = random_inputs(g)
    got = c(*arrays)
    assert isinstance(got, tuple) and len(got) == 3
    assert [o.name for o in c.outputs] == ["p_new", "m_new", "v_new"]
    for a, e in zip(got, interpret(g, *arrays)):
        assert compare(a, e) is None


def test_out_writes_into_the_callers_arrays():
    c = fusec.compile(SOFTMAX, backend="numpy", sizes={"N": 4, "D": 6})
    x = np.ones((4, 6), np.float32)
    out = np.zeros((4, 6), np.float32)
    y = c(x, out=out)
    assert y is out
    np.testing.assert_allclose(out, 1 / 6, rtol=1e-6)
    with pytest.raises(FusecInputError, match="out array for 'y' must have shape"):
        c(x, out=np.zeros((4, 5), np.float32))
    with pytest.raises(FusecInputError, match="C-contiguous"):
        c(x, out=np.zeros((6, 4), np.float32).T)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_adam_updates_its_parameters_in_place_when_they_are_donated(backend):
    sizes = {"N": 1001}
    g = load(ADAM, sizes=sizes)
    arrays = random_inputs(g, seed=2)
    expected = interpret(g, *arrays)
    c = fusec.compile(ADAM, backend=backend, sizes=sizes, donate={"p_new": "p", "m_new": "m", "v_new": "v"})
    p, grad, m, v = (a.copy() for a in arrays)
    got = c(p, grad, m, v)
    assert got[0] is p and got[1] is m and got[2] is v  # the same arrays, updated
    for a, e in zip((p, m, v), expected):
        assert compare(a, e) is None
    np.testing.assert_array_equal(grad, arrays[1])  # an input that was not donated is untouched


def test_donation_errors_are_clear():
    sizes = {"N": 11}
    with pytest.raises(FusecError, match="not an input"):
        fusec.compile(ADAM, backend="numpy", sizes=sizes, donate={"p_new": "q"})
    with pytest.raises(FusecError, match="donated twice"):
        fusec.compile(ADAM, backend="numpy", sizes=sizes, donate={"p_new": "p", "m_new": "p"})
    g = parse("graph t(x: f32[3, 3]) { return transpose(x) * 2 }")
    with pytest.raises(FusecError, match="other elements than it writes"):
        fusec.compile(g, backend="numpy", donate={g.outputs[0]: "x"})
    c = fusec.compile(ADAM, backend="numpy", sizes=sizes, donate={"p_new": "p"})
    frozen = np.zeros(11, np.float32)
    frozen.flags.writeable = False
    with pytest.raises(FusecInputError, match="donated"):
        c(frozen, np.zeros(11, np.float32), np.zeros(11, np.float32), np.zeros(11, np.float32))


def test_wrong_inputs_raise_one_clear_error():
    c = fusec.compile(SOFTMAX, backend="numpy", sizes={"N": 4, "D": 6})
    with pytest.raises(FusecInputError, match="takes 1 inputs"):
        c()
    with pytest.raises(FusecInputError, match="must be f32\\[4, 6\\], got shape \\[4, 5\\]"):
        c(np.zeros((4, 5), np.float32))
    with pytest.raises(FusecInputError, match="dtype f64"):
        c(np.zeros((4, 6), np.float64))
    with pytest.raises(FusecError, match="unknown backend"):
        fusec.compile(SOFTMAX, backend="cuda")


def test_non_contiguous_inputs_are_accepted():
    c = fusec.compile(SOFTMAX, backend="numpy", sizes={"N": 4, "D": 6})
    x = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32).T
    assert compare(c(x), interpret(c.graph, np.ascontiguousarray(x))) is None


def test_intermediates_come_from_a_pool_that_is_reused_across_calls():
    g = parse("""graph two(x: f32[64, 32], w: f32[32, 16]) {
      h = x @ w
      s = softmax(h, axis=-1)
      return s @ transpose(w)
    }""")
    c = fusec.compile(g, backend="numpy")
    assert c.kernels >= 2
    x = np.ones((64, 32), np.float32)
    w = np.full((32, 16), 0.01, np.float32)
    first = c(x, w)
    allocated = c.pool.allocations
    assert allocated >= 1
    for _ in range(3):
        np.testing.assert_array_equal(c(x, w), first)
    assert c.pool.allocations == allocated  # nothing new was allocated for intermediates


def test_executor_gives_an_intermediate_back_after_its_last_reader():
    log = []

    def k1(x, t):
        t[...] = x + 1
        log.append("k1")

    def k2(t, y):
        y[...] = t * 2
        log.append("k2")

    f32 = np.dtype(np.float32)
    types = {v: ValueType((3,), f32) for v in ("x", "t", "y")}
    pool = BufferPool()
    ex = Executor([Step("k1", k1, ("x", "t"), ("x",), ("t",)), Step("k2", k2, ("t", "y"), ("t",), ("y",))], ["y"], types, pool)
    out = ex.run({"x": np.arange(3, dtype=f32)})
    np.testing.assert_array_equal(out["y"], [2, 4, 6])
    assert log == ["k1", "k2"] and pool.allocations == 1 and pool.idle_bytes == 12


def test_graphs_that_return_inputs_constants_or_one_value_twice():
    g = parse("graph r(x: f32[3]) { y = exp(x)\n return y, x, y }")
    c = fusec.compile(g, backend="numpy")
    x = np.arange(3, dtype=np.float32)
    y1, x1, y2 = c(x)
    assert x1 is not x and y1 is not y2
    np.testing.assert_array_equal(x1, x)
    np.testing.assert_allclose(y1, np.exp(x), rtol=1e-6)
    np.testing.assert_array_equal(y1, y2)


def test_c_backend_without_a_compiler_warns_once_and_falls_back_to_numpy(monkeypatch):
    import fusec.pipeline as pipeline

    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setattr(pipeline, "_warned_no_compiler", False)
    with pytest.warns(RuntimeWarning, match="no C compiler"):
        c = fusec.compile(SOFTMAX, backend="c", sizes={"N": 3, "D": 4})
    assert c.backend == "numpy"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c2 = fusec.compile(SOFTMAX, backend="c", sizes={"N": 3, "D": 4})  # no second warning
    x = np.ones((3, 4), np.float32)
    np.testing.assert_allclose(c2(x), 0.25, rtol=1e-6)


# ------------------------------------------------------------------------------ CLI


def test_cli_compile_shows_the_stages_asked_for(capsys):
    assert main(["compile", str(SOFTMAX), "--set", "N=4", "--set", "D=8", "--backend", "numpy", "--show", "ir,loops,source"]) == 0
    out = capsys.readouterr().out
    assert "== ir ==" in out and "== loops ==" in out and "== source ==" in out
    assert "kernel softmax_k0 (reduce)" in out and "def softmax_k0(x, y):" in out
    assert out.rstrip().endswith("compiled graph softmax: 1 kernel (backend numpy)")


def test_cli_compile_rejects_an_unknown_stage(capsys):
    assert main(["compile", str(SOFTMAX), "--show", "everything"]) == 2
    assert "unknown stage 'everything'" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_cli_run_verify_passes_on_every_backend(backend, capsys):
    assert main(["run", str(EXAMPLES[3]), "--set", "N=7", "--set", "D=9", "--backend", backend, "--verify"]) == 0
    out = capsys.readouterr().out
    assert f"(backend {backend})" in out and "verify: ok" in out


def test_cli_run_verify_exits_1_with_the_worst_error_when_results_differ(monkeypatch, capsys):
    import fusec.api

    real = fusec.api.Compiled.__call__

    def off_by_a_bit(self, *arrays, out=None):
        return real(self, *arrays, out=out) + np.float32(0.5)

    monkeypatch.setattr(fusec.api.Compiled, "__call__", off_by_a_bit)
    assert main(["run", str(SOFTMAX), "--set", "N=3", "--set", "D=4", "--backend", "numpy", "--verify"]) == 1
    out = capsys.readouterr().out
    assert "verify: y: values differ beyond the tolerance" in out and "max abs error 0.5" in out
    assert "FAILED" in out


def test_cli_run_verify_needs_a_compiled_backend(capsys):
    assert main(["run", str(SOFTMAX), "--set", "N=3", "--set", "D=4", "--verify"]) == 2
    assert "--backend numpy" in capsys.readouterr().err


def test_every_stage_prints_and_an_opaque_group_runs_its_reference_op():
    from fusec.fusion.plan import make_group
    from fusec.pipeline import STAGES, compile_stages, reference_kernel

    stages = compile_stages(SOFTMAX, backend="numpy", sizes={"N": 3, "D": 4})
    texts = {s: stages.show(s) for s in STAGES}
    assert "graph softmax" in texts["ir"] and "kernel 0" in texts["groups"]
    assert "rewrites in" in texts["rules"] and "for i0 in" in texts["loops"] and "def softmax_k0" in texts["source"]
    with pytest.raises(FusecError, match="unknown stage"):
        stages.show("asm")
    g = parse("graph o(a: f32[2, 3], b: f32[3, 4]) { return a @ b }")
    (m,) = [n.name for n in g.ops()]
    kernel = reference_kernel(g, make_group(g, 0, [m], "opaque"))
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones((3, 4), np.float32)
    out = np.zeros((2, 4), np.float32)
    kernel(a, b, out)
    np.testing.assert_array_equal(out, a @ b)
