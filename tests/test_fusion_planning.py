"""Planning scales linearly: the incremental topological order of groups keeps every plan legal, and
a 4x longer chain takes about 4x the CPU time, measured in one run (slow-marked). The absolute
budgets (a 5,000-op chain under 2 s, a 12-layer decoder under 1 s) are a benchmark's business:
bench/bench_planning.py, whose table is in bench/README.md."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from fusec.fusion import MachineModel, plan, validate_group
from fusec.fusion.partition import Partition
from fusec.fusion.planner import prepare

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from bench_planning import chain, decoder  # noqa: E402

MODEL = MachineModel()


def _check_acyclic_and_legal(p):
    where = {n: grp.id for grp in p.groups for n in grp.nodes}
    index = {grp.id: i for i, grp in enumerate(p.groups)}
    for grp in p.groups:
        validate_group(p.graph, grp)
        for n in grp.nodes:
            for a in p.graph.producers(n):
                if a in where and where[a] != grp.id:
                    assert index[where[a]] < index[grp.id], "groups are not in dependency order"


@pytest.mark.parametrize("policy", ["greedy", "postdom", "table", "auto"])
def test_a_long_chain_plans_into_full_kernels(policy):
    g = chain(300)
    p = plan(g, policy, MODEL)
    _check_acyclic_and_legal(p)
    assert sum(len(grp.nodes) for grp in p.groups) == 300
    assert p.kernels <= 300 // 64 + 2  # cheap ops: kernels fill up to the size bound


def test_a_decoder_stack_plans_legally_with_every_policy():
    g = decoder(2)
    for policy in ("greedy", "postdom", "table", "auto"):
        _check_acyclic_and_legal(plan(g, policy, MODEL))


def test_the_group_order_stays_topological_after_every_merge():
    g = prepare(decoder(1))
    part = Partition(g, MODEL)
    from fusec.fusion.greedy import fuse_greedy

    fuse_greedy(part)
    for gid in part.members:
        for s in part.successors(gid):
            assert part.pos[gid] < part.pos[s]


def _cpu_seconds(g) -> float:
    """CPU seconds of plan(g, "auto"): planning runs on one core, so other work on a shared machine
    inflates this far less than wall time."""
    start = time.process_time()
    plan(g, "auto", MODEL)
    return time.process_time() - start


@pytest.mark.slow
def test_planning_grows_about_linearly():
    small, large = _cpu_seconds(chain(1000)), _cpu_seconds(chain(4000))
    assert large < 4 * small * 1.6, (small, large)  # quadratic growth would be 16x


def _examples():
    from conftest import EXAMPLES, small_sizes

    import fusec

    return [(p.stem, fusec.load(p, sizes=small_sizes(p))) for p in EXAMPLES]


@pytest.mark.parametrize("policy", ["greedy", "postdom", "table"])
def test_costs_of_merges_built_from_their_parts_equal_the_direct_cost(policy):
    """Partition.merged_cost adds up the groups' work instead of walking the union: every cost it
    cached (chains, decoders, every example) is exactly what group_cost computes from scratch."""
    from fusec.fusion.cost import group_cost
    from fusec.fusion.legality import analyze
    from fusec.fusion.planner import POLICIES

    graphs = [("chain", chain(200)), ("decoder", decoder(1))] + _examples()
    for name, graph in graphs:
        g = prepare(graph)
        part = Partition(g, MODEL)
        POLICIES[policy](part)
        assert part._works or name != "chain", "a chain's merges are costed from their parts"
        for key in part._works:
            assert part.cost(key) == group_cost(g, key, MODEL, analyze(g, key, part.order)), (name, sorted(key))


def test_naming_a_long_chain_of_temporaries_is_linear_and_skips_taken_names():
    """name_temporaries numbers y_neg, y_neg_2, ... from a counter per stem (it rescanned from
    y_neg for each one: quadratic on a 5,000-op chain) and still skips names already taken."""
    from fusec.ir import F32, Graph

    g = Graph("c")
    x = g.add_input("x", F32, (4,))
    g.add("abs", x, name="y_neg_3")
    v = x
    for _ in range(2000):
        v = g.add("neg", v)
    y = g.add("add", v, "y_neg_3", name="y")
    g.set_outputs([y])
    start = time.perf_counter()
    g.name_temporaries()
    elapsed = time.perf_counter() - start
    names = [n.name for n in g.ops() if n.op == "neg"]
    assert names[:3] == ["y_neg", "y_neg_2", "y_neg_4"] and names[-1] == "y_neg_2001"
    assert len(set(names)) == 2000 and "y_neg_3" in g
    assert elapsed < 30  # generous (a shared, busy machine); the quadratic version was far slower at 5,000
