"""The state every fusion policy works on: a partition of a graph's ops into groups.

Policies differ only in which merges they propose and in what order. Whether a merge is allowed is
decided here, the same way for all of them, in this order:

1. forbidden  the user said two of the ops must stay apart (--forbid A,B);
2. table      the pairwise fusion table says the edge's kinds never fuse;
3. contract   the merged ops do not form a kernel lowering can build (legality.analyze), incl. size;
4. cycle      the graph of groups would get a cycle (a path from one group to the other that leaves
              both would have to run both before and after itself);
5. profit     the cost model does not predict the merged kernel faster than the kernels apart; and
              a merge that adds work (recomputes a value, or runs a producer in a strided loop)
              must gain more than the model's measured error (`MachineModel.margin`), since
              within that error it could be a slowdown.

Every check returns a Verdict with the rule that failed and a sentence, which the planner turns
into the reason explain shows for an edge left unfused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from fusec.fusion.cost import KernelCost, Work, combine, group_cost, group_work, in_plan, risk_seconds, work_cost
from fusec.fusion.kinds import NEVER, edge_verdict
from fusec.fusion.legality import MAX_GROUP_OPS, ContractViolation, GroupShape, analyze, group_outputs
from fusec.fusion.machine import MachineModel
from fusec.fusion.program import kept_bytes, program_bytes, run_order
from fusec.ir.graph import Graph


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rule: str = ""  # "" when ok
    reason: str = ""
    saved_s: float = 0.0  # predicted seconds saved by the merge (negative: it would be slower)


def _fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def _fmt_bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


class Partition:
    def __init__(self, graph: Graph, model: MachineModel, forbid: Iterable[tuple[str, str]] = ()):
        self.graph = graph
        self.order = {n: i for i, n in enumerate(graph.topo_order())}
        self.model = model.for_program(program_bytes(graph))  # its kernels' memory rate depends on the graph's size
        self.ops = [n for n in self.order if graph.node(n).kind != "leaf"]  # graph.ops(), without sorting again
        # the graph does not change while a policy runs: look its edges up once
        self.consumers: dict[str, list[str]] = {n: graph.consumers(n) for n in self.order}
        self.producers: dict[str, list[str]] = {n: graph.producers(n) for n in self.order}
        self.group_of: dict[str, int] = {n: i for i, n in enumerate(self.ops)}
        self.members: dict[int, set[str]] = {i: {n} for i, n in enumerate(self.ops)}
        # a topological order of the groups, kept up to date by merge (positions may have gaps)
        self.pos: dict[int, int] = {i: self.order[n] for i, n in enumerate(self.ops)}
        # the graph of groups, kept up to date by merge: a group's neighbours without walking its members
        self.succ: dict[int, set[int]] = {i: {self.group_of[c] for c in self.consumers[n]} for i, n in enumerate(self.ops)}
        self.pred: dict[int, set[int]] = {
            i: {self.group_of[a] for a in self.producers[n] if a in self.group_of} for i, n in enumerate(self.ops)
        }
        self.forbid = [tuple(p) for p in forbid]
        self._keys: dict[int, frozenset[str]] = {}  # each group's members as a frozenset (the caches' key)
        self._costs: dict[frozenset[str], KernelCost] = {}
        self._works: dict[frozenset[str], Work] = {}
        self._shapes: dict[frozenset[str], GroupShape | ContractViolation] = {}
        self._outputs: dict[frozenset[str], set[str]] = {}
        self.graph_outputs = set(graph.outputs)
        self.shapes = {n: graph.type_of(n).shape for n in self.order}
        self.solution = None  # the optimal policy's solver result (fusion.optimal.Solution)
        self.merges = 0  # merges made so far: the partition is unchanged while this is

    def copy(self) -> Partition:
        """An independent partition in the same state (the caches are shared: they depend only on
        member sets, never on the grouping)."""
        other = Partition.__new__(Partition)
        other.__dict__.update(self.__dict__)
        other.group_of = dict(self.group_of)
        other.members = {g: set(m) for g, m in self.members.items()}
        other.pos = dict(self.pos)
        other._keys = dict(self._keys)
        other.succ = {g: set(s) for g, s in self.succ.items()}
        other.pred = {g: set(s) for g, s in self.pred.items()}
        return other

    # ------------------------------------------------------------------ queries

    def key(self, gid: int) -> frozenset[str]:
        """The group's members as a frozenset, made once per group (frozenset() of it is free)."""
        key = self._keys.get(gid)
        if key is None:
            key = self._keys[gid] = frozenset(self.members[gid])
        return key

    def groups(self) -> list[int]:
        return sorted(self.members, key=lambda g: min(self.order[n] for n in self.members[g]))

    def shape(self, members: Iterable[str]) -> GroupShape:
        """analyze() of a member set, remembered (raises ContractViolation like analyze)."""
        key = frozenset(members)
        if key not in self._shapes:
            try:
                self._shapes[key] = analyze(self.graph, key, self.order)
            except ContractViolation as err:
                self._shapes[key] = err
        result = self._shapes[key]
        if isinstance(result, ContractViolation):
            raise ContractViolation(result.rule, result.message)
        return result

    def outputs(self, gid: int) -> set[str]:
        """Members of a group whose value leaves it (graph outputs and values other groups read)."""
        return self._outputs_of(self.key(gid))

    def _outputs_of(self, key: frozenset[str]) -> set[str]:
        if key not in self._outputs:
            self._outputs[key] = set(group_outputs(self.graph, key))
        return self._outputs[key]

    def _merged_shape(self, gids: set[int], union: set[str]) -> GroupShape:
        """shape(union), without walking every member in the common case of elementwise groups over
        one iteration space: their union is one exactly when its outputs have that shape too."""
        key = frozenset(union)
        if key not in self._shapes and len(union) <= MAX_GROUP_OPS:
            shapes = [self.shape(self.key(g)) for g in gids]
            space = shapes[0].space
            if all(s.kind == "elementwise" and s.space == space for s in shapes):
                outs = self._outputs[key] = {
                    o for g in gids for o in self.outputs(g)
                    if o in self.graph_outputs or any(c not in union for c in self.consumers[o])
                }
                if all(self.shapes[o] == space for o in outs):
                    self._shapes[key] = GroupShape("elementwise", space)
        return self.shape(key)

    def cost(self, members: Iterable[str]) -> KernelCost:
        key = frozenset(members)
        if key not in self._costs:
            self._costs[key] = group_cost(self.graph, key, self.model, self.shape(key))
        return self._costs[key]

    def plan_model(self, groups: Iterable[Iterable[str]]) -> MachineModel:
        """The model for the program of a whole plan (`groups`: its member lists): its own arrays."""
        written = (o for members in groups for o in self._outputs_of(frozenset(members)))
        return self.model.for_program(kept_bytes(self.graph, written))

    def plan_seconds(self, groups: Iterable[Iterable[str]]) -> float:
        """A whole plan's predicted time: its kernels costed for the plan's own arrays (plan_model),
        in the order the plan runs them (cost.in_plan). The kernels' costs in the searches use the
        graph's arrays, as cost() does; where the two give the last-level cache the same share, so
        are the times."""
        return math.fsum(c.seconds for c in self.plan_costs(groups))

    def plan_costs(self, groups: Iterable[Iterable[str]]) -> list[KernelCost]:
        """The costs of a whole plan's kernels (`groups`: member lists), in the order it runs them."""
        groups = [frozenset(m) for m in groups]
        groups = [groups[i] for i in run_order(self.graph, groups, self.order)]
        model = self.plan_model(groups)
        if model.resident_share() == self.model.resident_share():
            costs = [self.cost(m) for m in groups]
        else:
            costs = [work_cost(self.graph, self.work(key), self._outputs_of(key), self.shape(key), model)
                     for key in groups]
        return in_plan(costs, model)

    def work(self, members: Iterable[str]) -> Work:
        key = frozenset(members)
        if key not in self._works:
            self._works[key] = group_work(self.graph, key, self.shape(key))
        return self._works[key]

    def merged_cost(self, gids: set[int], union: set[str]) -> KernelCost:
        """cost(union), from the groups' own work when they and their union are elementwise over one
        iteration space (a merge along a chain): then each member's work is what it was in its
        group, and the union's is the sum, without walking every member again."""
        key = frozenset(union)
        if key in self._costs:
            return self._costs[key]
        shape = self.shape(key)
        parts = [self.key(g) for g in gids]
        if shape.kind != "elementwise" or any(self.shape(p) != shape for p in parts):
            return self.cost(key)
        work = combine([self.work(p) for p in parts], key)
        if work is None:  # a part reads through a transpose, or a table may shrink: walk the union
            return self.cost(key)
        self._works[key] = work
        self._costs[key] = work_cost(self.graph, work, self._outputs_of(key), shape, self.model)
        return self._costs[key]

    def successors(self, gid: int) -> set[int]:
        """Groups that read a value `gid` makes (the partition's own set: do not modify it)."""
        return self.succ[gid]

    def predecessors(self, gid: int) -> set[int]:
        """Groups whose values `gid` reads (the partition's own set: do not modify it)."""
        return self.pred[gid]

    def kind_of(self, gid: int) -> str:
        return self.shape(self.key(gid)).kind

    def _reach(self, gids: set[int], lo: int, hi: int, forward: bool) -> set[int]:
        """Groups outside `gids` reachable from them (forward) or reaching them (backward) whose
        topological position lies strictly between lo and hi."""
        step = self.successors if forward else self.predecessors
        found: set[int] = set()
        stack = list(gids)
        while stack:
            for s in step(stack.pop()):
                if s not in gids and s not in found and lo < self.pos[s] < hi:
                    found.add(s)
                    stack.append(s)
        return found

    def _cycle_through(self, gids: set[int]) -> int | None:
        """A group outside `gids` on a path from `gids` back into `gids`, if merging them makes a cycle.

        Groups keep a topological order (`pos`), so a path that returns into `gids` only visits
        groups placed before the last of them: the search never walks the rest of the graph, which
        keeps planning linear on chains and layer stacks.
        """
        hi = max(self.pos[g] for g in gids)
        start = set()
        for g in gids:
            start |= {s for s in self.successors(g) - gids if self.pos[s] < hi}
        seen, stack = set(start), sorted(start, reverse=True)
        parent = {g: g for g in start}
        while stack:  # depth first, in a fixed order so the reported group is reproducible
            g = stack.pop()
            for s in sorted(self.successors(g)):
                if s in gids:
                    return parent[g]
                if s not in seen and self.pos[s] < hi:
                    seen.add(s)
                    parent[s] = parent[g]
                    stack.append(s)
        return None

    def name_of(self, gid: int) -> str:
        nodes = sorted(self.members[gid], key=self.order.__getitem__)
        return f"[{nodes[0]}]" if len(nodes) == 1 else f"[{nodes[0]} .. {nodes[-1]}]"

    # ------------------------------------------------------------------ the checks

    def check(self, gids: Iterable[int], edge: tuple[str, str] | None = None, profit: bool = True) -> Verdict:
        """May these groups become one? `edge` is the producer->consumer edge that proposes it."""
        gids = set(gids)
        if len(gids) < 2:
            return Verdict(True)
        for a, b in self.forbid:
            ga, gb = self.group_of[a], self.group_of[b]
            if ga in gids and gb in gids and ga != gb:
                return Verdict(False, "forbidden", f"--forbid {a},{b} keeps '{a}' and '{b}' in different kernels")
        if edge is not None:
            v, why = edge_verdict(self.graph, *edge)
            if v == NEVER:
                pk, ck = self.graph.node(edge[0]).kind, self.graph.node(edge[1]).kind
                return Verdict(False, "table", f"{pk} -> {ck} never fuses: {why}")
        size = sum(len(self.members[g]) for g in gids)
        if size > MAX_GROUP_OPS:  # what analyze() says of the union, without building it
            return Verdict(False, "size", f"{size} ops exceed the bound of {MAX_GROUP_OPS} ops per kernel")
        union = frozenset().union(*(self.key(g) for g in gids))
        try:
            self._merged_shape(gids, union)
        except ContractViolation as err:
            return Verdict(False, err.rule, err.message)
        via = self._cycle_through(gids)
        if via is not None:
            return Verdict(
                False, "cycle", f"the kernel {self.name_of(via)} reads one side and feeds the other, so merging would make a cycle"
            )
        if not profit:
            return Verdict(True)
        apart = [self.cost(self.key(g)) for g in gids]
        fused = self.merged_cost(gids, union)
        apart_s = sum(c.seconds for c in apart)
        saved = apart_s - fused.seconds
        risk = risk_seconds(fused, apart, self.model)  # what the gain must beat: the model's error
        if saved <= risk:
            apart_b = sum(c.nbytes for c in apart)
            return Verdict(
                False,
                "unprofitable",
                f"fused {_fmt_ms(fused.seconds)} ({_fmt_bytes(fused.nbytes)}, {fused.flops:.3g} flops) "
                f"vs apart {_fmt_ms(apart_s)} ({_fmt_bytes(apart_b)}, {sum(c.flops for c in apart):.3g} flops)"
                + (f", a gain within the model's {self.model.margin:.0%} error margin ({_fmt_ms(risk)}) on the work it adds" if saved > 0 else ""),
                saved,
            )
        return Verdict(True, saved_s=saved)

    # ------------------------------------------------------------------ editing

    def merge(self, gids: Iterable[int]) -> int:
        """Merge groups (the caller has checked the merge; it must not make a cycle); the merged group
        keeps the smallest of their ids, which it returns.

        The groups' topological order is repaired locally, as in Pearce and Kelly's dynamic
        topological sort: between the first and the last merged group, the groups that reach one
        of them move first, the merged group next, and the groups reached from them last, into
        the positions those groups held; everything else keeps its place.
        """
        gset = set(gids)
        if len(gset) < 2:
            return next(iter(gset))
        keep = min(gset)
        lo = min(self.pos[g] for g in gset)
        hi = max(self.pos[g] for g in gset)
        back = sorted(self._reach(gset, lo, hi, forward=False), key=self.pos.__getitem__)
        ahead = sorted(self._reach(gset, lo, hi, forward=True), key=self.pos.__getitem__)
        slots = sorted(self.pos[g] for g in [*back, *gset, *ahead])
        for g, slot in zip(back, slots):
            self.pos[g] = slot
        for g, slot in zip(ahead, slots[len(slots) - len(ahead):]):
            self.pos[g] = slot
        self.pos[keep] = slots[len(back)]
        succ = set().union(*(self.succ.pop(g) for g in gset)) - gset
        pred = set().union(*(self.pred.pop(g) for g in gset)) - gset
        for g in succ:
            self.pred[g] -= gset
            self.pred[g].add(keep)
        for g in pred:
            self.succ[g] -= gset
            self.succ[g].add(keep)
        self.succ[keep], self.pred[keep] = succ, pred
        merged = self.members[keep]
        self.merges += 1
        for g in gset:
            self._keys.pop(g, None)
        for g in sorted(gset - {keep}):
            del self.pos[g]
            for n in self.members.pop(g):
                self.group_of[n] = keep
                merged.add(n)
        return keep

    def try_merge(self, gids: Iterable[int], edge: tuple[str, str] | None = None) -> Verdict:
        v = self.check(gids, edge)
        if v.ok:
            self.merge(gids)
        return v

    def member_lists(self) -> list[list[str]]:
        """Groups as member lists, in the order the plan runs them (program.run_order)."""
        lists = [sorted(members, key=self.order.__getitem__) for members in self.members.values()]
        return [lists[i] for i in run_order(self.graph, lists, self.order)]
