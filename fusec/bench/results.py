"""What one measured path (fusec's or a peer's) reports, and the check that its outputs are right.

Both the protocol (fusec's paths) and the peers' worker processes build these, so they live apart
from either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusec.bench.timing import Timing
from fusec.ir.graph import Graph
from fusec.tolerance import compare_output


@dataclass
class PathResult:
    name: str
    status: str  # "ok", "wrong: ...", "failed: ...", "skipped: ...", "unsupported: ..."
    outputs: str = "fresh"  # "fresh" (the path allocates its outputs) or "caller" (out=)
    timing: Timing | None = None
    kernels: int | None = None
    nbytes: int | None = None  # bytes the path must move (its plan's), for the GB/s column
    predicted_ms: float | None = None
    version: str | None = None  # a peer's library version

    def to_dict(self, baseline: Timing | None, triad_gbs: float) -> dict:
        d: dict = {"status": self.status, "outputs": self.outputs, "kernels": self.kernels, "bytes": self.nbytes,
                   "predicted_ms": self.predicted_ms}
        if self.version:
            d["version"] = self.version
        keys = ("median_ms", "spread_ms", "speedup_vs_unfused", "gbps", "pct_of_bandwidth")
        d.update(dict.fromkeys(keys))
        if self.timing is not None:
            t = self.timing
            d.update(t.to_dict())
            d["speedup_vs_unfused"] = baseline.median / t.median if baseline is not None else None
            if self.nbytes:
                d["gbps"] = self.nbytes / t.median / 1e9
                d["pct_of_bandwidth"] = 100 * d["gbps"] / triad_gbs
        return d


def check_outputs(graph: Graph, got, expected: tuple[np.ndarray, ...]) -> str | None:
    """None when every output matches the interpreter within the tolerance policy, else why not."""
    got = got if isinstance(got, tuple) else (got,)
    for name, a, e in zip(graph.outputs, got, expected):
        mismatch = compare_output(graph, name, a, e)
        if mismatch is not None:
            return f"wrong: output '{name}': {mismatch}"
    return None
