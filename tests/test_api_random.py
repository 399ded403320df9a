"""Random graphs through the whole pipeline on the C backend (the NumPy backend's run in test_numpy_backend)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from test_numpy_backend import check_against_interpreter, random_graphs, special_inputs

from fusec.api import Compiled
from fusec.pipeline import compile_stages


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(random_graphs(), st.integers(0, 3))
def test_random_graphs_on_the_c_backend_match_the_interpreter(graph, seed):
    note(str(graph))
    stages = compile_stages(graph.copy(), backend="c", rewrite_classes=None)
    check_against_interpreter(Compiled(stages), graph, special_inputs(graph, seed))
