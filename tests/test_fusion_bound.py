"""The lower bound on any plan's predicted time (fusion/bound.py): never above the best legal plan a
brute-force search finds, under the default and under differently shaped machine models; met by a
chain fused into one kernel, so `auto` and the optimal policy skip the solver (and scipy) there."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from conftest import ROOT, small_sizes
from test_fusion_traps import SMALL as TRAP_SIZES

import fusec
from fusec.fusion import MachineModel, plan
from fusec.fusion.bound import lower_bound, meets
from fusec.fusion.brute import legal_partitions
from fusec.fusion.explain import compare, format_compare
from fusec.fusion.partition import Partition
from fusec.fusion.planner import prepare
from fusec.ir import F32, Graph
from fusec.testing.graphgen import GenConfig, random_graph

DEFAULT = MachineModel()
# the bound's cases: cache faster or slower than memory, overlap above one, a fork per parallel
# kernel, measured transcendental costs, few or many cores, a tiny cache that every kernel spills
MODELS = {
    "default": DEFAULT,
    "slow cache": dataclasses.replace(DEFAULT, cache_bandwidth_gbs=8.0),
    "overlap 1.5": dataclasses.replace(DEFAULT, overlap_loss=1.5),
    "fork": dataclasses.replace(DEFAULT, fork_us=15.0, parallel_grain=64),
    "op_ns": dataclasses.replace(DEFAULT, op_ns={"exp": 3.0, "erf": 9.0, "tanh": 5.0}, threads=4),
    "tiny cache": dataclasses.replace(DEFAULT, fit_bytes=256, cache_bytes=128, kernel_overhead_us=0.5),
    "stores": dataclasses.replace(DEFAULT, write_factor=1.5),
}
TRAPS = sorted((ROOT / "bench" / "traps").glob("*.fg"))


def _graphs():
    out = []
    for p in TRAPS:
        out.append((p.stem, fusec.load(p, sizes=TRAP_SIZES[p.stem])))
    for p in sorted((ROOT / "examples").glob("0[1-7]*.fg")):
        out.append((p.stem, fusec.load(p, sizes=small_sizes(p))))
    cfg = GenConfig(max_ops=6)
    out += [(f"random{seed}", random_graph(seed, cfg)[0]) for seed in range(40)]
    return [(name, g) for name, g in out if 0 < len(prepare(g).ops()) <= 7]  # composites expand


GRAPHS = _graphs()


@pytest.mark.parametrize("model", MODELS.values(), ids=MODELS.keys())
def test_no_legal_plan_is_predicted_below_the_bound(model):
    met = 0
    for name, graph in GRAPHS:
        g = prepare(graph)
        bound = lower_bound(Partition(g, model))
        if bound is None:
            continue
        plans = legal_partitions(g, model)
        best = min(c.predicted_s for c in plans)
        assert bound <= best * (1 + 1e-12), (name, bound, best, plans[0].groups)
        met += meets(best, bound)
    assert met >= 3, "the bound is tight on some graphs (one kernel, no intermediate traffic)"


def _chain(n: int, shape=(64, 64)) -> Graph:
    g = Graph("chain")
    v = x = g.add_input("x", F32, shape)
    for i in range(n):
        v = g.add("add", v, x) if i % 2 else g.add("neg", v)
    g.set_outputs([v])
    return g


def test_a_chain_fused_into_one_kernel_is_optimal_by_the_bound_without_the_solver():
    p = plan(_chain(10), "optimal", DEFAULT)
    assert p.kernels == 1 and p.gap == 0.0 and p.gap_by == "lower bound"
    auto = plan(_chain(10), "auto", DEFAULT)
    assert auto.candidates["optimal"] == min(auto.candidates.values())
    assert auto.policy != "optimal"  # the heuristic's plan is the optimal one; the earlier policy keeps the tie
    assert auto.gap == 0.0 and auto.gap_by == "lower bound"


def test_a_plan_above_the_bound_still_goes_to_the_solver():
    # two reductions over different axes of one value: no kernel holds both, so no plan meets the bound
    g = Graph("rows_cols")
    x = g.add_input("x", F32, (32, 48))
    e = g.add("exp", x)
    g.set_outputs([g.add("sum", e, axis=1), g.add("sum", e, axis=0)])
    part = Partition(prepare(g), DEFAULT)
    p = plan(g, "optimal", DEFAULT)
    assert not meets(sum(part.cost(grp.nodes).seconds for grp in p.groups), lower_bound(part))
    assert p.gap_by == "solver"


def test_planning_an_easy_graph_does_not_import_scipy():
    code = (
        "import sys, json, fusec\n"
        "from fusec.fusion import plan, MachineModel\n"
        f"g = fusec.load({str(ROOT / 'examples' / '01_chain.fg')!r})\n"
        "p = plan(g, 'auto', MachineModel())\n"
        "print(json.dumps({'scipy': 'scipy' in sys.modules, 'optimal': 'optimal' in p.candidates}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"scipy": False, "optimal": True}


def test_explain_compare_says_when_the_bound_proved_the_plan():
    rows = compare(_chain(6), DEFAULT)
    optimal = next(r for r in rows if r["policy"] == "optimal")
    assert optimal["gap"] == 0.0 and optimal["gap_by"] == "lower bound"
    text = format_compare(rows)
    assert "optimal by lower bound" in text


def test_without_the_solver_auto_still_proves_a_plan_by_the_bound(monkeypatch):
    import fusec.fusion.planner as planner

    monkeypatch.setattr(planner, "_have_scipy", lambda: False)
    p = plan(_chain(10), "auto", DEFAULT)
    assert p.gap == 0.0 and p.gap_by == "lower bound" and "optimal" in p.candidates
    big = plan(_chain(planner.MAX_OPS + 2, shape=(8,)), "auto", DEFAULT)  # over the solver's op limit
    assert big.gap is None and "optimal" not in big.candidates  # its kernels pass values: not provable
