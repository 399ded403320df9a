"""The exhaustive search (fusion/exhaustive.py): it finds the plan the optimal policy's integer program
finds on every example and trap, the best of every legal partition on small and random graphs, and
lets `auto` prove small graphs' plans optimal without importing scipy (`fusec check` of softmax)."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import networkx as nx
import pytest
from conftest import ROOT, small_sizes
from test_fusion_bound import GRAPHS, MODELS
from test_fusion_traps import MEASURED
from test_fusion_traps import SMALL as TRAP_SIZES

import fusec
from fusec.fusion import MachineModel, plan
from fusec.fusion.brute import legal_partitions
from fusec.fusion.exhaustive import _apart, _Kernels, _steps, cheapest
from fusec.fusion.greedy import fuse_greedy
from fusec.fusion.legality import ContractViolation
from fusec.fusion.optimal import guarded_seconds, kernel_dag, solve
from fusec.fusion.partition import Partition
from fusec.fusion.planner import prepare
from fusec.fusion.postdom import fuse_postdom
from fusec.fusion.table import fuse_table
from fusec.pipeline import compile_stages
from fusec.testing.graphgen import GenConfig, random_graph

DEFAULT = MachineModel()
EXAMPLES = sorted((ROOT / "examples").glob("*.fg"))
TRAPS = sorted((ROOT / "bench" / "traps").glob("*.fg"))
CASES = ([(p, small_sizes(p)) for p in EXAMPLES] + [(p, TRAP_SIZES[p.stem]) for p in TRAPS]
         + [(p, None) for p in TRAPS])  # the traps at full size too: other plans win there
IDS = [p.stem for p in EXAMPLES] + [f"{p.stem}-small" for p in TRAPS] + [f"{p.stem}-full" for p in TRAPS]


def _weight(part: Partition, groups) -> float:
    """What both searches minimise, for a plan given as groups of ops."""
    trial = part.copy()
    for members in groups:
        gids = {trial.group_of[n] for n in members}
        if len(gids) > 1:
            trial.merge(gids)
    return guarded_seconds(trial)


def _ilp(part: Partition):
    """The integer program's plan, solved even where a heuristic plan meets the lower bound."""
    extra = []
    for policy in (fuse_greedy, fuse_postdom, fuse_table):
        trial = part.copy()
        policy(trial)
        extra += [frozenset(m) for m in trial.members.values()]
    return solve(part, extra)


@pytest.mark.parametrize("model", [DEFAULT, MEASURED], ids=["defaults", "measured"])
@pytest.mark.parametrize(("path", "sizes"), CASES, ids=IDS)
def test_enumeration_and_the_integer_program_agree(path, sizes, model):
    g = prepare(fusec.load(path, sizes=sizes))
    part = Partition(g, model)
    found = cheapest(part, budget=10**6)
    assert found is not None
    sol = _ilp(part)
    assert sol.status == "optimal"
    # the same least weight, and so the same predicted time up to ties between plans of equal weight
    assert found.weight_s == pytest.approx(_weight(part, sol.groups), rel=1e-9), (path.stem, found.groups, sol.groups)
    assert found.weight_s == pytest.approx(_weight(part, found.groups), rel=1e-12)
    assert found.predicted_s == pytest.approx(math.fsum(part.cost(m).seconds for m in found.groups), rel=1e-12)
    # a plan: every op once, in legal kernels (shape raises if not) that do not depend on each other in a cycle
    assert sorted(n for m in found.groups for n in m) == sorted(part.ops)
    assert all(part.shape(m) for m in found.groups)
    assert nx.is_directed_acyclic_graph(kernel_dag(part, found.groups))


@pytest.mark.parametrize("model", MODELS.values(), ids=MODELS.keys())
def test_enumeration_finds_the_best_legal_partition(model):
    # small traps, examples and random graphs: every partition listed by brute force (Bell(n) of them)
    for name, graph in GRAPHS:
        g = prepare(graph)
        found = cheapest(Partition(g, model), budget=10**6)
        plans = legal_partitions(g, model)
        best = plans[0]  # least guarded time, then predicted time, then kernels
        assert found.weight_s == pytest.approx(best.guarded_s, rel=1e-9), (name, found.groups, best.groups)
        assert {tuple(sorted(m)) for m in found.groups} in [{tuple(sorted(grp)) for grp in c.groups} for c in plans]


@pytest.mark.parametrize(("path", "sizes"), CASES[:len(EXAMPLES)], ids=IDS[:len(EXAMPLES)])
def test_every_kernel_costed_from_its_parts_costs_what_the_partition_says(path, sizes):
    # the search costs a union of elementwise kernels from their work; Partition.cost analyses it afresh
    part = Partition(prepare(fusec.load(path, sizes=sizes)), MEASURED)
    atoms = sorted(part.members, key=part.pos.__getitem__)
    bit = {gid: 1 << i for i, gid in enumerate(atoms)}
    needs = [sum(bit[p] for p in part.predecessors(gid)) for gid in atoms]
    listed = _steps(needs, (1 << len(atoms)) - 1, 10**4, _apart(part, [frozenset(part.members[gid]) for gid in atoms]))
    assert listed is not None
    kernels = _Kernels(part, [frozenset(part.members[gid]) for gid in atoms], listed[1])
    fresh = Partition(part.graph, MEASURED)
    grown = 0
    for mask in listed[1]:
        known = kernels.kernel(mask)
        try:
            expected = fresh.cost(kernels.ops(mask))
        except ContractViolation:
            expected = None
        assert (known is None) == (expected is None), sorted(kernels.ops(mask))
        if known is not None:
            assert known[2] == expected or known[2].seconds == pytest.approx(expected.seconds, rel=1e-12)
            grown += known[1] is not None
    assert grown, "some union is costed from its parts (the shortcut is exercised)"


def test_atoms_kept_apart_are_never_a_kernel_together_and_leaving_them_out_changes_nothing(monkeypatch):
    import fusec.fusion.exhaustive as exhaustive

    graphs = [fusec.load(p, sizes=small_sizes(p)) for p in EXAMPLES]
    graphs += [random_graph(seed, GenConfig(max_ops=12))[0] for seed in range(80)]
    for graph in graphs:
        part = Partition(prepare(graph), DEFAULT)
        atoms = sorted(part.members, key=part.pos.__getitem__)
        members = [frozenset(part.members[gid]) for gid in atoms]
        never = _apart(part, members)
        for i, j in itertools.combinations(range(len(atoms)), 2):
            if never[i] >> j & 1:
                with pytest.raises(ContractViolation):
                    part.shape(members[i] | members[j])
        pruned = cheapest(part, budget=10**5)
        with monkeypatch.context() as m:
            m.setattr(exhaustive, "_apart", lambda part, members: [0] * len(members))
            full = cheapest(Partition(part.graph, DEFAULT), budget=5000)  # the block unpruned: over it
        if pruned is not None and full is not None:
            assert pruned.weight_s == pytest.approx(full.weight_s, rel=1e-12), graph.name


def test_auto_proves_softmax_optimal_by_enumeration():
    p = plan(fusec.load(ROOT / "examples" / "03_softmax.fg"), "auto", DEFAULT)
    assert p.gap == 0.0 and p.gap_by == "enumeration"
    assert p.candidates["optimal"] == min(p.candidates.values())
    assert p.kernels == 1


def test_fusec_check_of_a_small_graph_imports_no_scipy():
    code = (
        "import sys, json\n"
        "from fusec.cli.main import main\n"
        f"status = main(['check', {str(ROOT / 'examples' / '03_softmax.fg')!r}])\n"
        "print(json.dumps({'status': status, 'scipy': sorted(m for m in sys.modules if m.split('.')[0] == 'scipy')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "ok: " in out.stdout
    assert json.loads(out.stdout.splitlines()[-1]) == {"status": 0, "scipy": []}


def test_a_graph_over_the_budget_goes_to_the_solver(monkeypatch):
    import fusec.fusion.exhaustive as exhaustive

    block = ROOT / "examples" / "09_transformer_block.fg"
    g = compile_stages(block, sizes=small_sizes(block), stop_after="rules").rewritten.graph  # as compile plans it
    assert plan(g, "auto", DEFAULT).gap_by == "enumeration"  # 1,289 kernels: within the budget
    assert cheapest(Partition(prepare(g), DEFAULT), budget=100) is None
    monkeypatch.setattr(exhaustive, "BUDGET", 100)
    p = plan(g, "auto", DEFAULT)
    assert p.gap_by == "solver" and "optimal" in p.candidates


@pytest.mark.parametrize(("force", "forbid"), [((), ["e,s"]), (["e,s"], ()), (["m,e_sub"], ["s,y"])])
def test_enumeration_keeps_forced_and_forbidden_pairs(force, forbid):
    path = ROOT / "examples" / "03_softmax.fg"
    g = fusec.load(path, sizes=small_sizes(path))
    p = plan(g, "auto", DEFAULT, force_fuse=force, forbid=forbid)
    assert p.gap == 0.0 and p.gap_by == ("enumeration" if forbid else "lower bound")  # forced: one kernel
    for pair in force:
        a, b = pair.split(",")
        assert p.group_of(a) is p.group_of(b)
    for pair in forbid:
        a, b = pair.split(",")
        assert p.group_of(a) is not p.group_of(b)
    ilp = plan(g, "optimal", DEFAULT, force_fuse=force, forbid=forbid)
    part = Partition(p.graph, DEFAULT)
    assert _weight(part, [grp.nodes for grp in p.groups]) == pytest.approx(
        _weight(part, [grp.nodes for grp in ilp.groups]), rel=1e-9)
