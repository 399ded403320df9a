"""The .fg language: parsing, shape and dtype inference, literals, errors with locations, printing."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES, small_sizes

import fusec
from fusec.errors import FusecError
from fusec.ir import BOOL, F32, F64, I32
from fusec.ir.printer import print_graph


def test_parse_softmax_shapes_and_kinds():
    g = fusec.parse(
        """
        graph softmax<N=8, D=16>(x: f32[N, D]) {
          m = max(x, axis=-1, keepdims=true)   # a comment
          e = exp(x - m)
          return e / sum(e, axis=-1, keepdims=true)
        }
        """
    )
    assert g.name == "softmax"
    assert g.inputs == ["x"]
    assert g.type_of("m").shape == (8, 1)
    assert g.type_of("e").shape == (8, 16)
    assert g.node("m").kind == "reduce"
    assert g.node("e").kind == "elementwise"
    (out,) = g.outputs
    assert g.type_of(out).shape == (8, 16) and g.type_of(out).dtype == F32


def test_sizes_override_named_dims():
    text = "graph g<N=4096>(x: f32[N, 3]) { return x * 2 }"
    assert fusec.parse(text).type_of("x").shape == (4096, 3)
    g = fusec.parse(text, sizes={"N": 5})
    assert g.type_of("x").shape == (5, 3)
    assert "graph g<N=5>(x: f32[N, 3])" in print_graph(g)


def test_unknown_size_override_is_an_error():
    with pytest.raises(FusecError, match="no dimension 'M'"):
        fusec.parse("graph g<N=4>(x: f32[N]) { return x }", sizes={"M": 3})


@pytest.mark.parametrize(
    "a, b, expected",
    [((4, 1), (3,), (4, 3)), ((1,), (5, 1, 2), (5, 1, 2)), ((), (2, 2), (2, 2)), ((2, 0), (1,), (2, 0))],
)
def test_broadcasting_shapes(a, b, expected):
    fmt = lambda s: ", ".join(map(str, s))  # noqa: E731
    g = fusec.parse(f"graph g(a: f32[{fmt(a)}], b: f32[{fmt(b)}]) {{ return a + b }}")
    assert g.type_of(g.outputs[0]).shape == expected


def test_broadcast_mismatch_is_located():
    src = "graph g(a: f32[4, 3], b: f32[5]) {\n  y = a + b\n  return y\n}\n"
    with pytest.raises(FusecError) as info:
        fusec.parse(src, filename="bad.fg")
    msg = str(info.value)
    assert msg.startswith("bad.fg:2:9: error:")
    assert "do not broadcast" in msg
    assert "y = a + b" in msg and "^" in msg


def test_weak_literals_take_the_tensor_dtype():
    g = fusec.parse("graph g(x: f64[3], i: i32[3]) { a = x * 2\n b = i + 1\n c = i * 0.5\n return a, b, c }")
    assert g.type_of("a").dtype == F64
    assert g.type_of("b").dtype == I32
    assert g.type_of("c").dtype == F32  # a float literal next to an integer tensor becomes f32


def test_typed_literal_and_comparison():
    g = fusec.parse("graph g(x: f32[3]) { m = x > 0\n w = where(m, x, f64(0.5))\n return m, w }")
    assert g.type_of("m").dtype == BOOL
    assert g.type_of("w").dtype == F64


def test_matmul_batched_numpy_semantics():
    g = fusec.parse("graph g(a: f32[2, 1, 3, 4], b: f32[5, 4, 6], v: f32[4]) { return a @ b, a @ v }")
    assert g.type_of(g.outputs[0]).shape == (2, 5, 3, 6)
    assert g.type_of(g.outputs[1]).shape == (2, 1, 3)


@pytest.mark.parametrize(
    "body, shape",
    [
        ("transpose(x, perm=[2, 0, 1])", (4, 2, 3)),
        ("transpose(x)", (4, 3, 2)),
        ("reshape(x, shape=[6, -1])", (6, 4)),
        ("broadcast_to(x, shape=[5, 2, 3, 4])", (5, 2, 3, 4)),
        ("expand_dims(x, axis=1)", (2, 1, 3, 4)),
        ("squeeze(expand_dims(x, axis=0))", (2, 3, 4)),
        ("slice(x, axis=2, start=1, stop=-1)", (2, 3, 2)),
        ("slice(x, axis=1, step=2)", (2, 2, 4)),
        ("concat(x, x, axis=1)", (2, 6, 4)),
        ("sum(x, axis=[0, 2])", (3,)),
        ("mean(x, keepdims=true)", (1, 1, 1)),
        ("softmax(x, axis=1)", (2, 3, 4)),
        ("logsumexp(x, axis=-1)", (2, 3)),
    ],
)
def test_shape_rules(body, shape):
    g = fusec.parse(f"graph g(x: f32[2, 3, 4]) {{ return {body} }}")
    assert g.type_of(g.outputs[0]).shape == shape


@pytest.mark.parametrize(
    "src, message, line, col",
    [
        ("graph g(x: f32[3]) {\n  return foo(x)\n}", "unknown op 'foo'", 2, 10),
        ("graph g(x: f32[3]) {\n  return exp(x, x)\n}", "exp takes 1 operand, got 2", 2, 10),
        ("graph g(x: f32[3]) {\n  return sum(x, axis=\"a\")\n}", "attribute 'axis' of sum", 2, 17),
        ("graph g(x: f32[3]) {\n  return sum(x, axes=0)\n}", "sum has no attribute 'axes'", 2, 17),
        ("graph g(x: f32[3]) {\n  return y\n}", "'y' is not defined", 2, 10),
        ("graph g(x: f32[3]) {\n  y = x\n  y = x + 1\n  return y\n}", "'y' is already defined", 3, 3),
        ("graph g(x: f32[3], i: i32[3]) {\n  return exp(i)\n}", "exp needs a float tensor", 2, 10),
        ("graph g(x: f32[3]) {\n  return x +\n}", "unexpected '}'", 3, 1),
        ("graph g(x: f32[3]) {\n  return x $ 1\n}", "unexpected character '$'", 2, 12),
        ("graph g(x: f32[3]) {\n  return x\n", "unexpected end of file", 2, 11),
        ("graph g(x: f32[N]) {\n  return x\n}", "unknown dimension 'N'", 1, 16),
        ("graph g(x: f16[3]) {\n  return x\n}", "unknown dtype 'f16'", 1, 12),
        ("graph g(i: i32[3]) {\n  return i + 99999999999\n}", "does not fit i32", 2, 14),
        ("graph g(x: f32[3]) {\n  return x * 1e999\n}", "too large", 2, 14),
    ],
)
def test_errors_are_located(src, message, line, col):
    with pytest.raises(FusecError) as info:
        fusec.parse(src, filename="t.fg")
    err = info.value
    assert message in err.message
    assert err.location is not None
    assert (err.location.line, err.location.column) == (line, col), str(err)
    assert str(err).startswith(f"t.fg:{line}:{col}: error:")


def test_empty_and_binary_input():
    with pytest.raises(FusecError, match="empty"):
        fusec.parse("  \n# nothing\n".replace("# nothing", ""), filename="e.fg")
    with pytest.raises(FusecError, match="not UTF-8"):
        fusec.parse(b"\xff\xfe\x00junk", filename="b.fg")


def test_deep_nesting_gives_an_error_not_a_crash():
    depth = 20000
    src = "graph g(x: f32[3]) { return " + "(" * depth + "x" + ")" * depth + " }"
    try:
        g = fusec.parse(src)
    except FusecError as err:
        assert "nested too deeply" in str(err)
    else:
        assert g.outputs == ["x"]


def test_expectations_are_parsed_and_printed():
    g = fusec.parse("graph g(x: f32[3]) {\n  y = x + 1\n  assert kernels <= 2\n  return y\n}")
    (e,) = g.expectations
    assert (e.what, e.cmp, e.value) == ("kernels", "<=", 2)
    assert e.holds(2) and not e.holds(3)
    assert "assert kernels <= 2" in print_graph(g)


def test_unknown_assertion_is_an_error():
    with pytest.raises(FusecError, match="unknown assertion 'flops'"):
        fusec.parse("graph g(x: f32[3]) { assert flops == 1\n return x }")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_round_trip_and_fmt_is_a_fixpoint(path):
    g = fusec.load(path, sizes=small_sizes(path))
    text = print_graph(g)
    again = fusec.parse(text, sizes=small_sizes(path))
    assert again == g
    assert print_graph(again) == text
    # the default sizes survive printing: named dims stay named
    full = fusec.load(path)
    assert fusec.parse(print_graph(full)) == full


def test_dimension_names_in_attributes_survive_printing():
    g = fusec.parse("graph g<S=4>(x: f32[S, S]) { return x + iota(shape=[S, S], dtype=f32) }")
    assert "shape=[S, S]" in print_graph(g)
    small = fusec.parse(print_graph(g), sizes={"S": 2})
    assert small.type_of(small.outputs[0]).shape == (2, 2)


def test_input_ranges():
    g = fusec.parse("graph g(v: f32[3] in [0, 2.5]) { return v }")
    assert g.input_ranges["v"] == (0, 2.5)
    with pytest.raises(FusecError, match="range of 'v' is empty"):
        fusec.parse("graph g(v: f32[3] in [1, 1]) { return v }")


def test_graph_verify_and_dce():
    g = fusec.parse("graph g(x: f32[3]) { a = exp(x)\n b = log(x)\n return a }")
    assert "b" not in g  # dead code is gone after parsing
    g.add("neg", "x", name="dead")
    assert g.dead_code_elimination() == 1
    g.verify()


def test_interpret_checks_inputs():
    g = fusec.parse("graph g(x: f32[2, 3]) { return x * 2 }")
    with pytest.raises(FusecError, match="takes 1 inputs"):
        fusec.interpret(g)
    with pytest.raises(FusecError, match="dtype f64"):
        fusec.interpret(g, np.zeros((2, 3)))
    with pytest.raises(FusecError, match=r"shape \[3, 2\]"):
        fusec.interpret(g, np.zeros((3, 2), np.float32))
