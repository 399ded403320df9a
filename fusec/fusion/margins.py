"""The negative-optimization margin of every edge of a plan: how far each decision clears the guard.

For an edge producer -> consumer the margin is the predicted gain of having both ops in one kernel,
less the model's error on the work that adds (cost.risk_seconds, the gain a merge must beat):

- an edge between two kernels: the gain of merging those two kernels, less the risk. A negative
  margin is the guard keeping them apart; a positive one is a gain the policy left (see --compare).
  An edge no merge could take (forbidden, the fusion table, a contract, a cycle) has no margin.
- an edge inside a kernel: the gain of the kernel over the same ops cut after the producer (the
  kernel's ops up to and including the producer, in topological order, against the rest), less
  the risk. Cutting a convex kernel at a topological position never makes a cycle, so this is the
  nearest plan that puts the two ops apart; when the cut is not a kernel the contract allows (a
  matmul reading its operands through layout ops), the kernel is compared with its ops apart. A positive margin is a fusion taken beyond the model's
  error; a negative one can only come from a forced fusion (--force-fuse).
"""

from __future__ import annotations

from fusec.fusion.cost import group_cost, risk_seconds
from fusec.fusion.legality import ContractViolation, analyze
from fusec.fusion.machine import MachineModel
from fusec.fusion.plan import Plan

NO_MARGIN_RULES = ("forbidden", "table", "cycle")  # rules no merge of the two kernels can pass


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 6)


def edge_margins(plan: Plan, model: MachineModel) -> list[dict]:
    """One entry per op -> op edge of the plan's graph, in topological order of the consumer.
    `model`: the model for the plan's program (explain passes it, for_program of the plan's arrays)."""
    g = plan.graph
    order = {n: i for i, n in enumerate(g.topo_order())}
    where = {n: grp for grp in plan.groups for n in grp.nodes}
    why = {(nf.producer, nf.consumer): nf for nf in plan.not_fused}
    costs: dict[frozenset, object] = {}

    def cost(members):
        key = frozenset(members)
        if key not in costs:
            costs[key] = group_cost(g, key, model, analyze(g, key, order))
        return costs[key]

    edges = []
    for grp in plan.groups:
        for c in grp.nodes:
            for p in dict.fromkeys(g.producers(c)):
                if p not in where:
                    continue
                fused = where[p] is grp
                entry = {"producer": p, "consumer": c, "fused": fused,
                         "kernels": [grp.id] if fused else [where[p].id, grp.id]}
                nf = why.get((p, c))
                entry["rule"] = "" if fused else (nf.rule if nf else "")
                if fused:
                    cut = order[p]
                    sides = [[n for n in grp.nodes if order[n] <= cut], [n for n in grp.nodes if order[n] > cut]]
                    whole = grp.nodes
                else:
                    sides = [where[p].nodes, grp.nodes]
                    whole = where[p].nodes + grp.nodes
                if entry["rule"] in NO_MARGIN_RULES:
                    entry.update(saved_ms=None, risk_ms=None, margin_ms=None)
                else:
                    try:
                        apart = _apart(cost, sides, grp.nodes if fused else None)
                        together = cost(whole)
                    except ContractViolation as err:
                        entry.update(saved_ms=None, risk_ms=None, margin_ms=None, rule=entry["rule"] or err.rule)
                    else:
                        saved = sum(a.seconds for a in apart) - together.seconds
                        risk = risk_seconds(together, apart, model)
                        entry.update(saved_ms=_ms(saved), risk_ms=_ms(risk), margin_ms=_ms(saved - risk))
                edges.append(entry)
    edges.sort(key=lambda e: (order[e["consumer"]], order[e["producer"]]))
    return edges


def _apart(cost, sides: list[list[str]], kernel: list[str] | None) -> list:
    """The costs of `sides`; for a kernel whose cut is not a legal plan (a matmul kernel reading its
    operands through layout ops), the costs of its ops one per kernel, always a legal plan."""
    try:
        return [cost(s) for s in sides]
    except ContractViolation:
        if kernel is None:
            raise
        return [cost([n]) for n in kernel]


def format_margin(edge: dict) -> str:
    """'gain 0.120 ms - risk 0.000 ms = margin +0.120 ms', or why there is none."""
    if edge["margin_ms"] is None and edge["fused"]:
        return f"no margin: the kernel cut after {edge['producer']} is not a legal plan ({edge['rule']})"
    if edge["margin_ms"] is None:
        return f"no margin: the two kernels cannot be one ({edge['rule']})"
    return f"gain {edge['saved_ms']:.3f} ms - risk {edge['risk_ms']:.3f} ms = margin {edge['margin_ms']:+.3f} ms"
