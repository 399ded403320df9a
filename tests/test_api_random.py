"""Random graphs through the whole pipeline on the C backend (the NumPy backend's run in test_numpy_backend)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from test_numpy_backend import check_against_interpreter, random_graphs, special_inputs

from fusec.api import Compiled
from fusec.frontend import parse
from fusec.pipeline import compile_stages


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(random_graphs(), st.integers(0, 3))
def test_random_graphs_on_the_c_backend_match_the_interpreter(graph, seed):
    note(str(graph))
    stages = compile_stages(graph.copy(), backend="c", rewrite_classes=None)
    check_against_interpreter(Compiled(stages), graph, special_inputs(graph, seed))


def test_c_max_over_a_size_1_axis_keeps_nan():
    """Regression: a max/min update outside a vector loop (the size-1 reduced axis has no loop) once
    dropped NaN in the C backend."""
    g = parse("graph m(x: f32[3, 1]) { return max(x, axis=-1) }")
    x = np.array([[np.nan], [1.0], [-np.inf]], np.float32)
    check_against_interpreter(Compiled(compile_stages(g, backend="c", rewrite_classes=None)), g, [x])
