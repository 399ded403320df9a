"""What the fusion planner produces: a partition of a graph's ops into groups, one kernel each.

This file holds only the data structures (and the trivial one-op-per-kernel plan, which is what an
unfused framework runs); the planners live beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fusec.fusion.machine import MachineModel
from fusec.ir.graph import Graph


@dataclass
class Group:
    """A set of ops that will run as one kernel (one loop nest).

    nodes:   op nodes in topological order (inputs and constants are never members: constants are
             inlined into the kernels that use them, inputs are read from memory)
    inputs:  values the kernel reads from memory: graph inputs or other groups' outputs
    outputs: values the kernel writes to memory: graph outputs or values other groups read
    kind:    the group's shape of loop: elementwise, reduce, matmul, layout or opaque
    """

    id: int
    nodes: list[str]
    inputs: list[str]
    outputs: list[str]
    kind: str


@dataclass
class NotFused:
    """A producer -> consumer edge the planner left between two kernels, and why."""

    producer: str
    consumer: str
    reason: str
    rule: str = ""  # short name of the legality rule, "unprofitable", "forbidden", ... ("" if unknown)


@dataclass
class Plan:
    graph: Graph
    groups: list[Group]  # in an order that respects the dependences between groups
    not_fused: list[NotFused] = field(default_factory=list)
    policy: str = "none"  # the policy whose grouping this is
    requested: str = ""  # the policy asked for ("auto" picks one of the others)
    model: MachineModel | None = None  # the machine model the plan was costed with (None: defaults)
    candidates: dict[str, float] = field(default_factory=dict)  # auto: predicted ms of each policy's plan
    # optimal, or auto when its plan is proven optimal: the proven relative optimality gap (0.0: optimal)
    gap: float | None = None
    gap_by: str = ""  # what proved the gap: "solver", or "lower bound" (fusion/bound.py; no solver ran)

    @property
    def kernels(self) -> int:
        return len(self.groups)

    def group_of(self, node: str) -> Group | None:
        for grp in self.groups:
            if node in grp.nodes:
                return grp
        return None

    def __repr__(self) -> str:
        """<Plan softmax: 5 ops -> 1 kernel (greedy): K0 reduce [m, e_sub, e, s, y]>"""
        n_ops = sum(len(grp.nodes) for grp in self.groups)
        groups = "; ".join(f"K{grp.id} {grp.kind} [{', '.join(grp.nodes)}]" for grp in self.groups)
        return f"<Plan {self.graph.name}: {n_ops} ops -> {self.kernels} kernel{'s' * (self.kernels != 1)} ({self.policy}): {groups}>"

    def _repr_svg_(self) -> str:
        """Jupyter shows a plan as the graph with one colour per group (see fusec.fusion.dot)."""
        from fusec.fusion.dot import plan_svg

        return plan_svg(self)


def make_group(graph: Graph, gid: int, members: list[str], kind: str, order: dict[str, int] | None = None) -> Group:
    """Build a Group from its member ops: work out what it reads and what it must write.

    `order` (name -> topological position) saves recomputing it when building many groups.
    """
    member_set = set(members)
    order = order or {n: i for i, n in enumerate(graph.topo_order())}
    members = sorted(member_set, key=order.__getitem__)
    inputs: list[str] = []
    outputs: list[str] = []
    graph_outputs = set(graph.outputs)
    for n in members:
        for a in graph.node(n).args:
            if a not in member_set and graph.node(a).op != "const" and a not in inputs:
                inputs.append(a)
        if n in graph_outputs or any(c not in member_set for c in graph.consumers(n)):
            outputs.append(n)
    return Group(gid, members, inputs, outputs, kind)


def group_kind(graph: Graph, members: list[str]) -> str:
    """The loop shape of a group: matmul if it holds one, else reduce, else elementwise.

    A lone layout op (transpose, reshape, ...) is a layout kernel; layout ops inside a larger group
    are index maps on its loads, so that group is elementwise.
    """
    kinds = {graph.node(n).kind for n in members}
    if "opaque" in kinds:
        return "matmul" if any(graph.node(n).op == "matmul" for n in members) else "opaque"
    if "reduce" in kinds:
        return "reduce"
    if kinds <= {"layout"} and len(members) == 1:
        return "layout"
    return "elementwise"


def unfused_plan(graph: Graph) -> Plan:
    """One kernel per op: what an eager framework (or the interpreter) runs."""
    groups = []
    order = {n: i for i, n in enumerate(graph.topo_order())}
    for node in graph.ops():
        groups.append(make_group(graph, len(groups), [node.name], group_kind(graph, [node.name]), order))
    not_fused = [
        NotFused(a, node.name, "unfused plan: every op is its own kernel", "unfused")
        for node in graph.ops()
        for a in dict.fromkeys(node.args)
        if graph.node(a).kind != "leaf"
    ]
    return Plan(graph, groups, not_fused, policy="unfused")
