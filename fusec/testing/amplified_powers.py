"""The fuzzer's "amplified powers" family: a float32 power whose rounding a large factor amplifies.

Rotary embeddings compute angle = position * base ** (-2 i / D) and then its sine and cosine. At
position 1000, one ulp of the power moves the angle by 1e-4 and the result by as much, so the
compiled kernel and the interpreter must round the power the same way. NumPy's own float32 power is
off by an ulp for a quarter of such arguments, so the interpreter computes float32 powers in float64
and rounds once (as C's powf does); this family keeps the backends and the reference agreeing at
the sizes where it matters. `amplified_power_graph(seed)` makes one graph of the family.
"""

from __future__ import annotations

import numpy as np

from fusec.frontend import parse
from fusec.ir.graph import Graph

FAMILY = "amplified_powers"
USES = ("cos(angle) * x", "sin(angle) * x", "cos(angle) * x - sin(angle) * y", "angle * 0.001 + x")


def amplified_power_graph(seed: int, positions: int = 1024) -> Graph:
    """A random graph of the family: `positions` positions times a power of a random base."""
    rng = np.random.default_rng(seed)
    base = float(rng.choice([10000.0, 500000.0, 2.0, 1.0001, 7.5]))
    width = int(rng.choice([8, 16, 32]))
    scale = float(rng.choice([-2.0, -1.0, 0.5]))
    use = str(rng.choice(USES))
    return parse(
        f"graph amplified{seed}<S={positions}, D={width}>(x: f32[S, D], y: f32[S, D]) {{\n"
        f"  pos = iota(shape=[S, D], axis=0, dtype=f32)\n"
        f"  i = iota(shape=[S, D], axis=1, dtype=f32)\n"
        f"  angle = pos * {base!r} ** ({scale!r} * i / D)\n"
        f"  return {use}\n"
        f"}}\n"
    )
