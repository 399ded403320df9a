"""The fuzzer's "long reductions" family: random graphs that reduce at least `elements` values at once.

Issue 10 found that a single f32 accumulator over a million values misses the tolerance; the C
backend now sums in blocks (fusec/loops/blocked.py). This family keeps that covered: a random
prologue (masked, squared, exponentials, ...) feeding a random reduction over a long last axis or
over everything, or a row composite (softmax, log_softmax, logsumexp, layernorm, rmsnorm) over long
rows. `tools/fuzz.py --long-reductions N` runs N of them at 1e6 values; tests/ runs a few smaller.

Reductions run along the last axis or over the whole tensor, where the interpreter's np.sum is
pairwise: along another axis NumPy adds one row after another and the interpreter itself is off by
~5e-4 at a million rows (docs/tolerances.md), so it could not judge. Sums and means only see
nonnegative prologues: a sum of signed values that cancels is ill-conditioned for any summation.
"""

from __future__ import annotations

import numpy as np

from fusec.frontend import parse
from fusec.ir.graph import Graph

FAMILY = "long_reductions"
NONNEGATIVE = ("x * x", "where(keep, x * x, 0.0)", "exp(x * 0.5)", "abs(x)", "tanh(x) + 1.0", "where(keep, 1.0, 0.0)")
SIGNED = ("x", "where(keep, x, -x * 0.5)", "x * 3.0 - 1.0")
REDUCTIONS = ("sum", "mean", "max", "min")
ROW_COMPOSITES = ("softmax({e}, axis=-1)", "log_softmax({e}, axis=-1)", "logsumexp({e}, axis=-1)",
                  "layernorm({e}, g, b)", "rmsnorm({e}, g)")


def long_reduction_graph(seed: int, elements: int = 1_000_000) -> Graph:
    """A random graph of the family, reducing at least `elements` values in one reduction."""
    rng = np.random.default_rng(seed)
    rows = int(rng.choice([1, 1, 2, 3]))
    d = -(-elements // rows) + int(rng.integers(0, 7))  # odd lengths: a tail block
    kind = str(rng.choice(["reduce", "reduce", "composite"]))
    params = "x: f32[N, D], keep: bool[N, D]"
    if kind == "composite":
        template = str(rng.choice(ROW_COMPOSITES))
        body = template.format(e=str(rng.choice(SIGNED + NONNEGATIVE)))
        params += ", g: f32[D], b: f32[D]"
    else:
        op = str(rng.choice(REDUCTIONS))
        e = str(rng.choice(NONNEGATIVE if op in ("sum", "mean") else SIGNED + NONNEGATIVE))
        whole = rows == 1 or rng.random() < 0.3
        body = f"{op}({e})" if whole else f"{op}({e}, axis=-1)"
    return parse(f"graph long{seed}<N={rows}, D={d}>({params}) {{ return {body} }}")
