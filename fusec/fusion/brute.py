"""Every legal plan of a small graph, by brute force: what the planner's choice is checked against.

`legal_partitions` enumerates every partition of a graph's ops into groups (restricted growth
strings: each partition once) and keeps those the planner could build: every group a kernel
lowering can build (legality.analyze) and no cycle between the groups. There are Bell(n) partitions
of n ops (4,140 for 8), so this is for trap graphs and tests, not for planning.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import networkx as nx

from fusec.errors import FusecError
from fusec.fusion.cost import risk_seconds
from fusec.fusion.legality import ContractViolation
from fusec.fusion.machine import MachineModel
from fusec.fusion.optimal import kernel_dag
from fusec.fusion.partition import Partition
from fusec.ir.graph import Graph

MAX_OPS = 8


@dataclass(frozen=True)
class Candidate:
    groups: tuple[tuple[str, ...], ...]  # member lists, each in topological order
    predicted_s: float  # the cost model's predicted time: the sum of its kernels'
    guarded_s: float  # predicted time plus the guard's risk on each kernel (what the planners minimise)


def _set_partitions(items: list[str]) -> Iterator[list[list[str]]]:
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for smaller in _set_partitions(rest):
        for i in range(len(smaller)):
            yield smaller[:i] + [[first, *smaller[i]]] + smaller[i + 1:]
        yield [[first], *smaller]


def _acyclic(part: Partition, groups: list[list[str]]) -> bool:
    return nx.is_directed_acyclic_graph(kernel_dag(part, groups))


def legal_partitions(graph: Graph, model: MachineModel | None = None, max_ops: int = MAX_OPS) -> list[Candidate]:
    """Every legal plan of `graph` (prepared: composites expanded, see planner.prepare), cheapest first."""
    part = Partition(graph, model or MachineModel())
    if len(part.ops) > max_ops:
        raise FusecError(f"graph '{graph.name}' has {len(part.ops)} ops; brute force enumerates at most {max_ops}")
    legal: dict[frozenset[str], bool] = {}

    def ok(members: list[str]) -> bool:
        key = frozenset(members)
        if key not in legal:
            try:
                part.shape(key)
                legal[key] = True
            except ContractViolation:
                legal[key] = False
        return legal[key]

    out = []
    for groups in _set_partitions(part.ops):
        if not all(ok(grp) for grp in groups) or not _acyclic(part, groups):
            continue
        ordered = tuple(tuple(sorted(grp, key=part.order.__getitem__)) for grp in groups)
        ordered = tuple(sorted(ordered, key=lambda grp: part.order[grp[0]]))
        risk = sum(risk_seconds(part.cost(grp), [part.cost([n]) for n in grp], part.model)
                   for grp in ordered if len(grp) > 1)
        predicted = part.plan_seconds(ordered)  # for the plan's own arrays
        out.append(Candidate(ordered, predicted, predicted + risk))
    return sorted(out, key=lambda c: (c.guarded_s, c.predicted_s, len(c.groups)))
