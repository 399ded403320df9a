"""@fusec.jit: NumPy-style functions traced on their first call, compiled, cached per signature."""

from __future__ import annotations

import numpy as np
import pytest

import fusec
from fusec.errors import FusecError
from fusec.ir.special import erf

BACKENDS = ["numpy", "c"]
rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def close(a, b, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# ------------------------------------------------------------------------------------ models


def mlp(x, w1, b1, w2, b2):
    return fusec.ops.gelu(x @ w1 + b1) @ w2 + b2


def mlp_reference(x, w1, b1, w2, b2):
    h = x @ w1 + b1
    return (0.5 * h * (1 + erf(h / np.float32(np.sqrt(2))))) @ w2 + b2


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def layernorm(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def swiglu(x, w_gate, w_up):
    g = x @ w_gate
    return g * (1 / (1 + np.exp(-g))) * (x @ w_up)


def adam(p, g, m, v, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, t=1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    return {"p": p - lr * m_hat / (np.sqrt(v_hat) + eps), "m": m, "v": v}


def rotary(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mlp_with_bias_and_gelu(backend):
    args = randn(8, 16), randn(16, 32) * 0.2, randn(32), randn(32, 8) * 0.2, randn(8)
    close(fusec.jit(mlp, backend=backend)(*args), mlp_reference(*args), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_layernorm_swiglu(backend):
    x = randn(6, 32)
    close(fusec.jit(softmax, backend=backend)(x), softmax(x))
    gamma, beta = randn(32), randn(32)
    close(fusec.jit(layernorm, backend=backend)(x, gamma, beta), layernorm(x, gamma, beta), rtol=1e-4, atol=1e-4)
    wg, wu = randn(32, 24) * 0.2, randn(32, 24) * 0.2
    close(fusec.jit(swiglu, backend=backend)(x, wg, wu), swiglu(x, wg, wu), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adam_step_keeps_the_dict_of_outputs(backend):
    p, g, m = randn(1000), randn(1000), randn(1000)
    v = np.abs(randn(1000))
    step = fusec.jit(adam, backend=backend)
    got = step(p, g, m, v, lr=0.01, t=3)
    want = adam(p, g, m, v, lr=np.float32(0.01), b1=np.float32(0.9), b2=np.float32(0.999), eps=np.float32(1e-8), t=3)
    assert set(got) == {"p", "m", "v"} and all(a.dtype == np.float32 for a in got.values())
    for k in got:
        close(got[k], want[k], rtol=1e-5, atol=1e-6)
    step(p, g, m, v, lr=0.02, t=4)  # Python numbers are traced inputs: new values do not retrace
    assert step.traces == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotary_embedding(backend):
    x, cos, sin = randn(2, 5, 16), randn(5, 8), randn(5, 8)
    close(fusec.jit(rotary, backend=backend)(x, cos, sin), rotary(x, cos, sin))


def test_numpy_ufuncs_and_functions_on_traced_tensors():
    def f(a, b):
        return (np.tanh(np.maximum(a, b)), np.sum(np.exp(a), axis=1), np.where(a > b, a, b),
                np.transpose(a) @ b, np.matmul(a, b.T), np.abs(-a), np.clip(a, -0.5, 0.5), a[:, 1::2], a[0])

    a, b = randn(4, 6), randn(4, 6)
    got = fusec.jit(f, backend="numpy")(a, b)
    want = (np.tanh(np.maximum(a, b)), np.sum(np.exp(a), axis=1), np.where(a > b, a, b), a.T @ b, a @ b.T,
            np.abs(a), np.clip(a, -0.5, 0.5), a[:, 1::2], a[0])
    assert isinstance(got, tuple) and len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        close(g, w)


def test_missing_numpy_function_names_itself():
    with pytest.raises(FusecError, match=r"np\.arccosh has no fusec op"):
        fusec.jit(lambda x: np.arccosh(x), backend="numpy")(randn(3))
    with pytest.raises(FusecError, match=r"np\.cumsum has no fusec op"):
        fusec.jit(lambda x: np.cumsum(x), backend="numpy")(randn(3))


def test_cache_per_signature_and_static_args():
    calls = []

    def scale(x, k):
        calls.append(1)
        return x * k

    f = fusec.jit(scale, backend="numpy")
    x = randn(3, 4)
    close(f(x, 2.0), x * 2)
    close(f(x, k=3.0), x * 3)  # keyword or positional: the same signature, no retrace
    assert f.traces == 1 and len(calls) == 1
    f(randn(5, 4), 2.0)  # a new shape retraces
    f(x.astype(np.float64), 2.0)  # and so does a new dtype
    assert f.traces == 3
    g = fusec.jit(lambda x, n: x.reshape(n, -1), backend="numpy", static_argnames="n")
    assert g(x, 2).shape == (2, 6) and g(x, 6).shape == (6, 2) and g.traces == 2


def test_python_numbers_are_weakly_typed():
    f = fusec.jit(lambda x, s: x * s, backend="numpy")
    assert f(randn(3, dtype=np.float64), 2.5).dtype == np.float64  # an f32 scalar does not narrow f64
    assert f(np.arange(3, dtype=np.int32), 2).dtype == np.int32


def test_data_dependent_control_flow_names_the_line():
    def relu_if(x):
        if x.sum() > 0:  # the line the error names
            return x
        return -x

    line = relu_if.__code__.co_firstlineno + 1
    with pytest.raises(FusecError) as info:
        fusec.jit(relu_if, backend="numpy")(randn(3))
    text = str(info.value)
    assert f"test_jit.py:{line}:" in text and "no truth value" in text and "where" in text
    for bad, what in ((lambda x: float(x), "float()"), (lambda x: [v for v in x], "iterating")):
        with pytest.raises(FusecError, match=what.replace("(", r"\(").replace(")", r"\)")):
            fusec.jit(bad, backend="numpy")(randn(3))


def test_literal_names_are_refused_where_the_user_wrote_them():
    """inf, nan, true and false read as literals in every printed graph: no traced input or
    output-dict key may take them, and the error points at the name in the function's source."""
    def scale(inf, x):
        return inf * 2 + x

    def halves(x):
        return {"nan": x * 0.5, "ok": x}

    def shift(true):
        return true + 1

    def nested(p):  # an array inside a container argument is named p_inf: nothing to refuse
        return p["inf"] + 1

    first = scale.__code__.co_firstlineno
    with pytest.raises(FusecError) as info:
        fusec.trace(scale, inf=("f32", (3,)), x=("f32", (3,)))
    assert info.value.message == "'inf' is a literal and cannot name an input of scale; choose another name"
    assert (info.value.location.line, info.value.location.column) == (first, len("    def scale(") + 1)
    cases = ((halves, "'nan' is a literal and cannot name an output of halves"),
             (shift, "'true' is a literal and cannot name an input of shift"))
    for function, message in cases:
        with pytest.raises(FusecError) as info:
            fusec.jit(function, backend="numpy")(randn(3))
        assert info.value.message.startswith(message) and "test_jit.py" in str(info.value.location)
    np.testing.assert_array_equal(fusec.jit(nested, backend="numpy")({"inf": np.ones(3, np.float32)}), [2, 2, 2])


def test_printed_graph_compiles_to_the_same_results():
    x, gamma, beta = randn(4, 16), randn(16), randn(16)
    f = fusec.jit(layernorm, backend="numpy")
    text = str(f.graph(x, gamma, beta))
    program = fusec.compile(fusec.parse(text), backend="numpy")
    eps = np.float32(1e-5)  # a Python number argument (here a default) is a 0-d input of the graph
    np.testing.assert_array_equal(program(x, gamma, beta, eps), f(x, gamma, beta))
    assert "kernel" in f.explain(x, gamma, beta) and "def " in f.source(x, gamma, beta)


def test_captured_arrays_become_inputs():
    w = randn(8, 4)
    f = fusec.jit(lambda x: np.tanh(x @ w), backend="numpy")
    x = randn(3, 8)
    close(f(x), np.tanh(x @ w))
    assert f.graph(x).inputs == ["x", "c0"]


def test_fusec_compile_of_a_function_points_to_jit():
    with pytest.raises(FusecError, match=r"fusec\.jit\(softmax\)"):
        fusec.compile(softmax)


def test_ops_namespace_is_the_op_table():
    assert "softmax" in dir(fusec.ops) and "softmax" in fusec.ops.softmax.__doc__
    f = fusec.jit(lambda x: fusec.ops.softmax(x, axis=0), backend="numpy")
    x = randn(5, 3)
    close(f(x), softmax(x.T).T)


def test_frontends_doc_examples_run(capsys):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "frontends.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, "docs/frontends.md", "exec"), {})
    assert "graph rotary" in capsys.readouterr().out
