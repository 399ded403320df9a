"""Print -> parse round trip and the interpreter, over random graphs (fusec.testing.graphgen).

* printing a graph and parsing the text back gives an equal graph (Graph.__eq__ compares canonical
  text), so `fusec fmt` is a fixpoint;
* the re-parsed graph computes bit-identical results;
* the interpreter never crashes on a well-typed graph, and every value it computes has exactly the
  dtype and shape the type rules inferred, special input values (NaN, inf, -0, denormals) included.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fusec
from fusec.interp import evaluate
from fusec.ir.printer import print_graph
from fusec.testing.arrays import random_arrays
from fusec.testing.graphgen import GenConfig, graphs

SETTINGS = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(graphs(max_ops=10))
def test_print_parse_gives_an_equal_graph(g):
    text = print_graph(g)
    back = fusec.parse(text, filename="<roundtrip>")
    assert back == g, f"round trip changed the graph:\n{text}\n---\n{print_graph(back)}"
    assert print_graph(back) == text  # fmt(fmt(x)) == fmt(x)


@SETTINGS
@given(graphs(max_ops=10, allow_empty=True), st.integers(0, 2**32 - 1))
def test_reparsed_graph_computes_the_same_bits(g, seed):
    back = fusec.parse(print_graph(g))
    arrays = random_arrays(g, np.random.default_rng(seed), special=0.1)
    want = evaluate(g, arrays)
    got = evaluate(back, arrays)
    for o, o2 in zip(g.outputs, back.outputs):
        np.testing.assert_array_equal(got[o2], want[o])  # NaN == NaN here; -0.0 vs 0.0 checked below
        if want[o].dtype.kind == "f":
            assert np.array_equal(np.signbit(got[o2]), np.signbit(want[o]))


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(max_ops=12, allow_empty=True), st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.05, 0.5]))
def test_interpreter_values_have_the_inferred_types(g, seed, special):
    arrays = random_arrays(g, np.random.default_rng(seed), special=special)
    values = evaluate(g, arrays, keep_all=True)
    for node in g.nodes():
        v = values[node.name]
        assert v.dtype == node.type.dtype.numpy, (node.name, node.op, v.dtype, node.type)
        assert v.shape == node.type.shape, (node.name, node.op, v.shape, node.type)
    outs = fusec.interpret(g, *arrays)
    outs = outs if isinstance(outs, tuple) else (outs,)
    for o, a in zip(g.outputs, outs):
        assert a.shape == g.type_of(o).shape and a.dtype == g.type_of(o).dtype.numpy
        assert a.flags["C_CONTIGUOUS"]


@settings(deadline=None, max_examples=60)
@given(graphs(GenConfig(max_ops=6, dtypes=("f32",), matmul=False)))
def test_generator_respects_its_config(g):
    for node in g.nodes():
        # cast picks its dtype, and sum/prod of bools count in i64 (the op table's rule)
        counts_bools = node.op in ("sum", "prod") and g.type_of(node.args[0]).dtype.name == "bool"
        assert node.type.dtype.name in ("f32", "bool", "i32") or node.op == "cast" or counts_bools
        assert node.op != "matmul"
        assert node.type.size <= GenConfig().max_elements


def test_generated_graphs_cover_every_kind():
    """The generator reaches every op kind and several outputs within a few hundred graphs."""
    from fusec.testing.graphgen import random_graph

    kinds, ops, multi = set(), set(), 0
    for seed in range(300):
        g, _ = random_graph(seed)
        kinds |= {n.kind for n in g.ops()}
        ops |= {n.op for n in g.ops()}
        multi += len(g.outputs) > 1
    assert kinds == {"elementwise", "broadcast", "reduce", "layout", "opaque"}
    assert {"softmax", "layernorm", "matmul", "concat", "slice", "transpose", "where", "cast"} <= ops
    assert multi > 50


def test_replaying_recorded_choices_rebuilds_the_graph():
    from fusec.testing.graphgen import random_graph, replay_graph

    for seed in range(20):
        g, record = random_graph(seed)
        assert replay_graph(record) == g
