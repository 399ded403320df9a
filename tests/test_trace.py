"""The tracing frontend builds the same graphs as .fg text."""

from __future__ import annotations

import numpy as np
import pytest

import fusec
from fusec import fn
from fusec.errors import FusecError


def softmax(x):
    e = fn.exp(x - fn.max(x, axis=-1, keepdims=True))
    return e / fn.sum(e, axis=-1, keepdims=True)


def test_trace_softmax_matches_numpy():
    g = fusec.trace(softmax, x=("f32", (3, 5)))
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    e = np.exp(x - x.max(-1, keepdims=True))
    np.testing.assert_allclose(fusec.interpret(g, x), e / e.sum(-1, keepdims=True), rtol=1e-6)


def test_trace_equals_parsed_text():
    def chain(x):
        return ((x * 2 + 1) * x - 3) / (x * x + 1) + fn.sqrt(abs(x))

    traced = fusec.trace(chain, x=("f32", (4, 4)))
    parsed = fusec.parse("graph chain(x: f32[4, 4]) { return ((x * 2 + 1) * x - 3) / (x * x + 1) + sqrt(abs(x)) }")
    assert traced == parsed


def test_trace_several_outputs_reflected_ops_and_methods():
    def f(a, b):
        return 1 - a, (a @ b.T).reshape(-1), fn.where(a > 0, a, 0.0).astype("f64")

    g = fusec.trace(f, a=("f32", (2, 3)), b=("f32", (4, 3)))
    outs = [g.type_of(o) for o in g.outputs]
    assert [o.shape for o in outs] == [(2, 3), (8,), (2, 3)]
    assert outs[2].dtype.name == "f64"


def test_trace_errors():
    with pytest.raises(FusecError, match="do not broadcast"):
        fusec.trace(lambda a, b: a + b, a=("f32", (2, 3)), b=("f32", (4,)))
    with pytest.raises(FusecError, match="no truth value"):
        fusec.trace(lambda a: a if a > 0 else -a, a=("f32", (2,)))
    with pytest.raises(FusecError, match="missing"):
        fusec.trace(lambda a, b: a, a=("f32", (2,)))
    with pytest.raises(AttributeError):
        _ = fn.frobnicate
