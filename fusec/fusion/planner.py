"""plan(): partition a graph into kernels with a chosen policy, and say why each cut edge is cut.

    graph --copy, expand composites, drop dead ops--> Partition --policy--> groups --> Plan

The planner never changes the graph it is given. "auto" runs every policy and keeps the plan the
cost model predicts fastest (the unfused plan is a candidate too, so fusion never makes the
prediction worse), including the optimal plan, the cheapest partition the model knows of, found the
cheapest way that proves it:
1. when the heuristics' best plan meets the lower bound on every plan (fusion/bound.py), it is that
   plan already ("lower bound");
2. else, on a graph small enough to search every plan in less time than importing scipy takes
   (fusion/exhaustive.py), by that search ("enumeration");
3. else, on graphs of up to fusion.optimal.MAX_OPS ops, by the optimal policy's integer program
   ("solver"), when the solver is installed and finishes within its time limit.
`Plan.gap_by` names which; `policy="optimal"` itself is always step 1, else step 3.
"""

from __future__ import annotations

import gc
import importlib.util
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from fusec.errors import FusecError
from fusec.fusion.bound import TOLERANCE
from fusec.fusion.exhaustive import fuse_exhaustive
from fusec.fusion.greedy import fuse_greedy
from fusec.fusion.machine import MachineModel, load_model
from fusec.fusion.optimal import MAX_OPS, fuse_optimal, guarded_seconds, proven_by_bound
from fusec.fusion.partition import Partition
from fusec.fusion.plan import NotFused, Plan, group_kind, make_group
from fusec.fusion.postdom import fuse_postdom
from fusec.fusion.table import fuse_table
from fusec.ir.graph import Graph


def _fuse_nothing(part: Partition) -> None:
    """The unfused plan: one kernel per op, as an eager framework runs it."""


POLICIES: dict[str, Callable[[Partition], None]] = {
    "greedy": fuse_greedy,
    "postdom": fuse_postdom,
    "table": fuse_table,
    "optimal": fuse_optimal,
    "unfused": _fuse_nothing,
}
POLICY_HELP = {
    "greedy": "XLA-like: pull producers into consumers edge by edge, then merge siblings",
    "postdom": "TVM-like: fuse each op with everything up to its immediate post-dominator",
    "table": "DNNFusion-like: grow kernels from heavy seeds by the pairwise kind table",
    "optimal": "Korch-like: the partition the cost model predicts fastest, by integer programming (HiGHS)",
    "unfused": "one kernel per op (what an eager framework runs)",
    "auto": "run every policy and keep the plan the cost model predicts fastest (optimal within its time limit)",
}


def prepare(graph: Graph) -> Graph:
    """A copy with composites expanded into primitives and dead ops dropped. The composite's result
    keeps its name and the values it expands into are named after it (y_max, y_exp, ...); the
    compiler's other temporaries are named after the value they feed (e_sub in e = exp(x - m))."""
    g = graph.copy()
    for node in list(g.nodes()):
        if node.kind != "leaf" and node.opdef.is_composite:
            g.expand_composite(node.name)
    g.name_temporaries()
    g.dead_code_elimination()
    return g


def _pairs(items: Iterable, flag: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        if isinstance(item, str):
            parts = [p.strip() for p in item.split(",")]
        else:
            parts = [str(p).strip() for p in item]
        if len(parts) != 2 or not all(parts):
            raise FusecError(f"{flag} expects two op names A,B, got {item!r}")
        out.append((parts[0], parts[1]))
    return out


def _check_op(g: Graph, name: str, flag: str) -> None:
    if name not in g:
        ops = ", ".join(n.name for n in g.ops() if not n.name.startswith("%"))
        raise FusecError(f"{flag}: graph '{g.name}' has no op named '{name}' (named ops: {ops})")
    if g.node(name).kind == "leaf":
        what = "an input" if g.node(name).op == "input" else "a constant"
        raise FusecError(f"{flag}: '{name}' is {what}, not an op; only ops are fused")


def plan(graph: Graph, policy: str = "auto", model: MachineModel | None = None, force_fuse=(), forbid=()) -> Plan:
    """Partition `graph` into kernels. See the module docstring; `graph` is not modified.

    force_fuse / forbid: pairs of op names (("a", "b") or "a,b") that must share a kernel / must not.
    """
    with _collector_paused():
        return _plan(graph, policy, model, force_fuse, forbid)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Planning makes and drops some 10^5 small dicts, sets and frozensets, which reference counting
    frees; the cycle collector's passes over them took a fifth of the time of planning a 5,000-op
    chain. It runs again (and collects any cycle made meanwhile) as soon as planning ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _plan(graph: Graph, policy: str, model: MachineModel | None, force_fuse, forbid) -> Plan:
    if policy != "auto" and policy not in POLICIES:
        known = ", ".join(list(POLICIES) + ["auto"])
        raise FusecError(f"unknown fusion policy '{policy}' (policies: {known})")
    model = model or load_model()
    g = prepare(graph)
    force = _pairs(force_fuse, "--force-fuse")
    ban = _pairs(forbid, "--forbid")
    for a, b in force + ban:
        _check_op(g, a, "--force-fuse" if (a, b) in force else "--forbid")
        _check_op(g, b, "--force-fuse" if (a, b) in force else "--forbid")
    both = {frozenset(p) for p in force} & {frozenset(p) for p in ban}
    if both:
        a, b = sorted(next(iter(both)))
        raise FusecError(f"'{a},{b}' is both forced together and forbidden")
    base = Partition(g, model, ban)  # each policy starts from a copy: they share its caches of costs and shapes
    names = [p for p in POLICIES if p != "unfused"] + ["unfused"] if policy == "auto" else [policy]
    best: tuple[float, int, str, Partition] | None = None  # (predicted ms, kernels, policy, partition)
    candidates: dict[str, float] = {}
    trials: list[Partition] = []  # the heuristics' partitions, which the optimal policy starts from
    by_bound = False  # auto: a heuristic plan met the lower bound, so no search or solver ran
    optimum: Partition | None = None  # the optimal policy's partition, once made
    for name in names:
        part = _start(base, force)
        if name == "optimal" and policy == "auto":
            if proven_by_bound(part, trials) is not None:
                # a heuristic plan meets the lower bound: it is the optimal plan, without solving
                candidates[name] = min(candidates[t] for t in candidates)
                by_bound = True
                continue
            if not _auto_optimal(part, trials):
                continue  # too big to search and for the solver, no solver, or out of time
        else:
            try:
                POLICIES[name](part)
            except TimeoutError:
                raise FusecError(f"the optimal policy found no plan within its time limit ({len(base.ops)} ops)") from None
        if name in ("greedy", "postdom", "table"):
            trials.append(part)
        elif name == "optimal":
            optimum = part
        candidates[name] = part.plan_seconds(part.members.values()) * 1e3  # each plan costed with its own arrays
        if best is None or (candidates[name], len(part.members)) < best[:2]:
            best = (candidates[name], len(part.members), name, part)
    assert best is not None
    chosen = _finish(best[3], best[2])
    if optimum is not None and optimum.solution.gap == 0.0 and (
            optimum is best[3] or guarded_seconds(best[3]) <= guarded_seconds(optimum) * (1 + TOLERANCE)):
        # the optimal plan, or one as cheap by what it minimises (a heuristic's, which keeps a tie)
        chosen.gap, chosen.gap_by = 0.0, _GAP_BY.get(optimum.solution.status, "solver")
    elif best[3] is optimum:  # the solver's plan, with the gap it proved before its time limit
        chosen.gap, chosen.gap_by = optimum.solution.gap, "solver"
    elif by_bound:  # the chosen plan is at least as fast as the one that met the bound: optimal too
        chosen.gap, chosen.gap_by = 0.0, "lower bound"
    chosen.requested = policy
    chosen.candidates = candidates if policy == "auto" else {}
    return chosen


_GAP_BY = {"optimal by lower bound": "lower bound", "optimal by enumeration": "enumeration"}


def _auto_optimal(part: Partition, trials: list[Partition]) -> bool:
    """auto's optimal plan, applied to `part`: by searching every plan where that is cheap
    (fusion/exhaustive.py), else by the solver on graphs of up to MAX_OPS ops. False if neither
    made one (the heuristics' best stands)."""
    if fuse_exhaustive(part):
        return True
    if len(part.ops) > MAX_OPS or not _have_scipy():
        return False
    try:
        fuse_optimal(part, trials)
    except TimeoutError:
        return False
    return True


def _have_scipy() -> bool:
    """Whether the optimal policy's solver is installed (without importing it: that takes half a second)."""
    return importlib.util.find_spec("scipy") is not None


def _start(base: Partition, force: list[tuple[str, str]]) -> Partition:
    part = base.copy()
    for a, b in force:
        ga, gb = part.group_of[a], part.group_of[b]
        if ga == gb:
            continue
        v = part.check([ga, gb], profit=False)
        if not v.ok:
            raise FusecError(f"--force-fuse {a},{b}: cannot be one kernel ({v.rule}: {v.reason})")
        part.merge([ga, gb])
    return part


def _finish(part: Partition, policy: str) -> Plan:
    g = part.graph
    groups = [make_group(g, i, members, group_kind(g, members), part.order)
              for i, members in enumerate(part.member_lists())]
    where = {n: grp.id for grp in groups for n in grp.nodes}
    not_fused = []
    for grp in groups:
        for c in grp.nodes:
            for p in g.producers(c):
                if p in where and where[p] != grp.id:
                    not_fused.append(_why(part, p, c, policy))
    return Plan(g, groups, not_fused, policy=policy, model=part.plan_model(part.members.values()))


def _why(part: Partition, producer: str, consumer: str, policy: str) -> NotFused:
    """The reason the final plan keeps this edge between kernels, checked against the final groups."""
    if policy == "unfused":
        return NotFused(producer, consumer, "the unfused plan runs every op as its own kernel", "unfused")
    a, b = part.group_of[producer], part.group_of[consumer]
    v = part.check([a, b], edge=(producer, consumer))
    if not v.ok:
        return NotFused(producer, consumer, v.reason, v.rule)
    return NotFused(
        producer,
        consumer,
        f"legal and predicted {v.saved_s * 1e3:.3f} ms faster, but the {policy} policy did not propose "
        "this merge (it only merges along its own order; see --compare)",
        "policy",
    )
