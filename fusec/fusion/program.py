"""What the cost model assumes about the program around a kernel, from the graph alone: how much
memory the program keeps (its working set, which decides what the last-level cache holds between
runs) and whether the kernel most likely starts right after a large one (a cold call).

Both are judged without knowing the rest of the plan, so that each kernel keeps a cost of its own
and the planners can add kernels' costs up (fusion/cost.py uses them; MachineModel.for_program and
cold_call_us are the machine's side). A whole plan, once made, is costed with its own arrays
(`plan_bytes`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import networkx as nx

from fusec.errors import FusecError
from fusec.fusion.legality import group_outputs
from fusec.fusion.machine import MachineModel
from fusec.ir.graph import Graph


def program_bytes(graph: Graph) -> int:
    """The working set the model assumes for a program of `graph`: every array of the graph, its
    inputs and each op's value. That is what an unfused run keeps, and more than a fused plan's (its
    intermediates live in registers), so for a fused plan whose arrays would fit in the last-level
    cache when the graph's do not, the model errs slow. It is one figure per graph, not per plan,
    so each kernel keeps a cost of its own and the planners can add kernels' costs up."""
    return sum(graph.type_of(n).nbytes for n in graph.topo_order() if graph.node(n).op != "const")


def plan_bytes(graph: Graph, groups: Iterable[Iterable[str]]) -> int:
    """The arrays a plan keeps: the graph's inputs and every value a kernel of it writes. What a
    program that runs the plan again and again has for the last-level cache to keep; the costs of a
    whole plan (auto's choice between the policies' plans, explain, plan_cost) use it, while the
    searches inside a policy cost each candidate kernel with the graph's `program_bytes`."""
    return kept_bytes(graph, (o for members in groups for o in group_outputs(graph, set(members))))


def kept_bytes(graph: Graph, written: Iterable[str]) -> int:
    """The bytes of the graph's inputs and of the values `written` (each once)."""
    kept = set(graph.inputs) | set(written)
    return sum(graph.type_of(v).nbytes for v in kept if graph.node(v).op != "const")


def run_order(graph: Graph, groups: list[Collection[str]], order: dict[str, int] | None = None) -> list[int]:
    """The order a plan runs its kernels in, as indices into `groups` (member collections covering
    the graph's ops): each kernel after the kernels whose values it reads, and of the kernels that
    may run next, the one whose first op comes first in the graph's topological order (`order`).
    Partition.member_lists and kernel_timing.plan_for order a plan's kernels so. FusecError if the
    kernels depend on each other in a cycle."""
    order = order or {n: i for i, n in enumerate(graph.topo_order())}
    where = {n: i for i, members in enumerate(groups) for n in members}
    dag = nx.DiGraph()
    dag.add_nodes_from(range(len(groups)))
    for i, members in enumerate(groups):
        for n in members:
            for a in graph.producers(n):
                if a in where and where[a] != i:
                    dag.add_edge(where[a], i)
    first = [min(order[n] for n in members) for members in groups]
    try:
        return list(nx.lexicographical_topological_sort(dag, key=first.__getitem__))
    except nx.NetworkXUnfeasible:
        raise FusecError("the partition's kernels depend on each other in a cycle") from None


def starts_cold(graph: Graph, inputs: Iterable[str], model: MachineModel) -> bool:
    """Whether a kernel reading `inputs` most likely runs right after a kernel that moved more than
    `fit_bytes` (and so pays `cold_call_us`), judged without the rest of the plan (a whole plan's
    costs look at the kernel that does run before it: cost.in_plan). The kernel before it is, most
    likely, the one that made one of its inputs: if every input is a small value made by an op whose
    arguments are small too, that kernel was small, whatever else it held. A graph input was last touched a program
    run ago, after the program's other kernels; a kernel with no input follows any kernel."""
    inputs = list(inputs)
    if not inputs:
        return True
    for a in inputs:
        node = graph.node(a)
        if node.op == "input" or node.type.nbytes > model.fit_bytes:
            return True
        if any(graph.type_of(x).nbytes > model.fit_bytes for x in node.args):
            return True
    return False
