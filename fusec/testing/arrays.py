"""Random input arrays for a graph, with an optional share of special floats (0, -0, inf, nan,
denormals, large values).

Separate from the graph generator: the fuzzer, the edge-case families and the property tests all
draw inputs for graphs they did not generate.
"""

from __future__ import annotations

import numpy as np

from fusec.ir.graph import Graph

SPECIAL_FLOATS = (0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1e-40, -1e-45, 1e4, -1e4)


def random_arrays(graph: Graph, rng: np.random.Generator, special: float = 0.0) -> list[np.ndarray]:
    """Inputs for `graph`. A fraction `special` of float elements are 0, -0, inf, nan, denormals or
    large; the rest come from the input's declared range or a standard normal. Integers are drawn
    from [-10, 10] (the bound the generator assumes), bools are coin flips."""
    arrays = []
    for name in graph.inputs:
        t = graph.type_of(name)
        dt = t.dtype.numpy
        if t.dtype.is_float:
            low_high = graph.input_ranges.get(name)
            if low_high:
                a = rng.uniform(low_high[0], low_high[1], size=t.shape).astype(dt)
            else:
                a = rng.standard_normal(size=t.shape).astype(dt)
            if special > 0 and a.size:
                mask = rng.random(size=t.shape) < special
                with np.errstate(all="ignore"):
                    picks = np.array(SPECIAL_FLOATS, dtype=dt)[rng.integers(0, len(SPECIAL_FLOATS), size=t.shape)]
                a = np.where(mask, picks, a).astype(dt)
        elif t.dtype.is_int:
            low, high = graph.input_ranges.get(name, (-10, 10))
            a = rng.integers(int(low), int(high), size=t.shape, endpoint=True).astype(dt)
        else:
            a = rng.random(size=t.shape) < 0.5
        arrays.append(np.require(a, dtype=dt, requirements="C"))
    return arrays
