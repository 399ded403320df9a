"""Checks every fusion test applies to a plan: the group contract, acyclicity, bookkeeping, reasons,
and that running the kernels one after another computes what the reference interpreter computes."""

from __future__ import annotations

import networkx as nx
import numpy as np

from fusec.fusion import Plan, validate_group
from fusec.interp import evaluate


def check_plan(plan: Plan) -> None:
    g = plan.graph
    ops = [n.name for n in g.ops()]
    seen: dict[str, int] = {}
    for grp in plan.groups:
        validate_group(g, grp)
        for n in grp.nodes:
            assert n not in seen, f"{n} is in groups {seen[n]} and {grp.id}: an op must never be duplicated"
            seen[n] = grp.id
    assert sorted(seen) == sorted(ops), "every op is in exactly one group"
    # the graph of groups is acyclic, and the groups are listed in a dependency order
    quotient = nx.DiGraph()
    quotient.add_nodes_from(grp.id for grp in plan.groups)
    position = {grp.id: i for i, grp in enumerate(plan.groups)}
    cut = set()
    for c in ops:
        for p in g.producers(c):
            if p in seen and seen[p] != seen[c]:
                quotient.add_edge(seen[p], seen[c])
                cut.add((p, c))
                assert position[seen[p]] < position[seen[c]], f"group of {p} must run before the group of {c}"
    assert nx.is_directed_acyclic_graph(quotient)
    # exactly one reason for every edge between kernels, and none for edges inside one
    named = [(nf.producer, nf.consumer) for nf in plan.not_fused]
    assert sorted(named) == sorted(cut)
    for nf in plan.not_fused:
        assert nf.reason and nf.rule, nf


def run_by_groups(plan: Plan, arrays) -> dict[str, np.ndarray]:
    """Evaluate kernel by kernel: each group sees only its declared inputs, and keeps only its outputs."""
    g = plan.graph
    memory = dict(zip(g.inputs, arrays))
    with np.errstate(all="ignore"):
        for grp in plan.groups:
            local = {a: memory[a] for a in grp.inputs}
            for n in grp.nodes:
                node = g.node(n)
                args = []
                for a in node.args:
                    if a not in local:
                        leaf = g.node(a)
                        assert leaf.op == "const", f"group {grp.id} reads {a}, which is not among its inputs"
                        local[a] = leaf.opdef.numpy([], leaf.attrs)
                    args.append(local[a])
                local[n] = np.asarray(node.opdef.numpy(args, node.attrs)).astype(node.type.dtype.numpy, copy=False)
            for o in grp.outputs:
                memory[o] = local[o]
    return {o: memory[o] for o in g.outputs}


def check_semantics(plan: Plan, arrays) -> None:
    want = evaluate(plan.graph, arrays)
    got = run_by_groups(plan, arrays)
    for o in plan.graph.outputs:
        np.testing.assert_array_equal(got[o], want[o])
