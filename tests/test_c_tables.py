"""c_passes.tabulate_invariants: an expensive value that depends on a few loop variables only is
computed once into a table before the loops, and the results do not change."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import fusec
from fusec.codegen.c_passes import RowArray, tabulate_invariants
from fusec.fusion import plan
from fusec.inputs import random_inputs
from fusec.kernel_timing import plan_for
from fusec.pipeline import lower
from fusec.tolerance import compare_output

ROOT = Path(__file__).resolve().parent.parent


def _nests(graph):
    p = plan(graph, "auto")
    return [lower(p.graph, grp, {}) for grp in p.groups]


def _tables(nest):
    return [s for s in nest.body if isinstance(s, RowArray)]


def test_rotary_frequencies_become_a_table_computed_once():
    graph = fusec.load(ROOT / "examples" / "10_rotary.fg")
    tabled = [tabulate_invariants(n) for n in _nests(graph)]
    tables = [t for n in tabled for t in _tables(n)]
    assert [t.size for t in tables] == [32]  # 10000 ** (-2 i / Dh): one value per i, not per (head, position, i)
    assert "does not depend on i0, i1" in tables[0].comment
    source = fusec.compile(graph, backend="c").source()
    assert source.count("powf(") == 1  # in the table's loop only: the loop over heads and positions reads the table


@pytest.mark.parametrize("text", [
    # depends on every loop variable: nothing to save
    "graph g<N=64, M=32>(x: f32[N, M]) { return exp(x) }",
    # tanh of a row value broadcast over columns, but the table would not be smaller than the work
    "graph g<N=64>(x: f32[N]) { return tanh(x) * 2.0 }",
])
def test_no_table_where_nothing_repeats(text):
    for nest in _nests(fusec.parse(text)):
        assert tabulate_invariants(nest) == nest


def test_a_broadcast_input_tabulated_and_matches_the_interpreter():
    # exp(b[j]) is the same for every row: one table of M values
    graph = fusec.parse("graph g<N=300, M=40>(x: f32[N, M], b: f32[M]) { return x * exp(b) + sin(iota(shape=[N, M], axis=1, dtype=f32)) }")
    tabled = [tabulate_invariants(n) for n in _nests(graph)]
    sizes = [t.size for n in tabled for t in _tables(n)]
    assert sizes and set(sizes) == {40}  # sin of the column, and exp(b) if the planner fused it in
    xs = random_inputs(graph, seed=3)
    for backend in ("c", "numpy"):
        got = np.asarray(fusec.compile(graph, backend=backend, tune_db=False)(*xs))
        assert compare_output(graph, graph.outputs[0], got, np.asarray(fusec.interpret(graph, *xs))) is None


def _one_kernel(graph):
    """The whole graph as one kernel, whatever the planner would choose."""
    p = plan_for(graph, [[n.name for n in graph.ops()]])
    (group,) = p.groups
    return lower(p.graph, group, {})


def test_a_buffer_the_kernel_updates_in_place_is_never_tabulated():
    # exp(b[j]) repeats over the rows: one table of M values, unless the kernel writes b, in which
    # case the table would be read after the kernel has started writing b
    graph = fusec.parse("graph g<N=300, M=40>(x: f32[N, M], b: f32[M]) { return x * exp(b) }")
    nest = _one_kernel(graph)
    assert [t.size for t in _tables(tabulate_invariants(nest))] == [40]
    written = replace(nest, buffers=tuple(replace(buf, role="inout") if buf.name == "b" else buf for buf in nest.buffers))
    assert tabulate_invariants(written) == written
