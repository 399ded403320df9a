"""The optimal policy and the trap graphs: the ILP's plan is legal, never predicted slower than any
heuristic's, reports its gap, and keeps an expensive producer out of a strided column reduction."""

from __future__ import annotations

from pathlib import Path

import fusec
from fusec.fusion import explain, plan, validate_group

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"S": 32, "D": 32, "H": 4, "Dh": 8, "F": 64, "N": 64, "M": 64, "B": 16, "K": 32}


def test_optimal_is_legal_and_never_predicted_slower_than_a_heuristic():
    for path in sorted((ROOT / "examples").glob("*.fg")):
        g = fusec.load(path, sizes={k: v for k, v in SMALL.items() if f"{k}=" in path.read_text()})
        best = plan(g, "optimal")
        assert best.gap is not None and 0.0 <= best.gap <= 1e-6, path.name
        for grp in best.groups:
            validate_group(best.graph, grp)
        ms = explain(best)["predicted_ms_fused"]
        for policy in ("greedy", "postdom", "table", "unfused"):
            assert ms <= explain(plan(g, policy))["predicted_ms_fused"] + 1e-9, (path.name, policy)


def test_the_erf_trap_keeps_erf_out_of_a_strided_column_sum():
    # down 4 columns the column sum is a strided loop (a wider one streams: loops/interchange.py)
    g = fusec.load(ROOT / "bench" / "traps" / "erf_row_col.fg", sizes={"N": 65536, "M": 4})
    for policy in ("auto", "optimal", "greedy", "postdom", "table"):
        p = plan(g, policy)
        cols = p.group_of("cols")
        assert cols.nodes == ["cols"], (policy, p)
