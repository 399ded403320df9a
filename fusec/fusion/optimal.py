"""The optimal policy: the partition the cost model predicts fastest, by integer linear programming.

1. Candidates. Every connected set of up to `MAX_GROW` ops grown from each op along its producers
   and consumers that is one legal kernel (legality.analyze) and convex (no path leaves it and comes
   back), plus every group the heuristic policies (greedy, postdom, table) build, so the optimum is
   never predicted slower than their best. Each candidate costs its predicted kernel time; a
   candidate that adds work (recomputation, a strided loop) also costs the margin of error on that
   work (cost.risk_seconds), so such a fusion is taken only where the model predicts a gain beyond
   its measured error: the negative-optimization guard, as partition.py applies it to merges.
2. A set-partitioning program (after Korch, ASPLOS'24): one binary variable per candidate, every op
   covered exactly once, minimise the total cost. Solved with HiGHS (scipy.optimize.milp) within a
   time limit; the solver reports the proven gap between its plan and the best possible one.
3. Kernels must not depend on each other in a cycle. Convex candidates rule out a cycle inside one
   kernel; a cycle between chosen kernels is cut lazily: the program is solved again with a
   constraint that those kernels are not all chosen together, until the plan is acyclic.

Before any of that, the heuristics' best plan is compared with a lower bound on every partition's
predicted time (fusion/bound.py): if it meets the bound (a chain fused into one kernel), it is
optimal, with gap 0, and no integer program is built (scipy is imported only to solve one).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import networkx as nx
import numpy as np

from fusec.fusion.bound import lower_bound, meets
from fusec.fusion.cost import risk_seconds
from fusec.fusion.legality import ContractViolation
from fusec.fusion.partition import Partition

MAX_GROW = 6  # the largest candidate grown op by op (larger ones come from the heuristic policies)
MAX_PER_SEED = 48  # candidates grown from one op
TIME_LIMIT_S = 2.0  # the solver's limit; `auto` falls back to the heuristics' best if it is reached
MAX_OPS = 400  # graphs larger than this are left to the heuristic policies (auto)


@dataclass
class Solution:
    groups: list[frozenset[str]]
    predicted_s: float  # sum of the chosen kernels' predicted times (without the margin)
    gap: float  # proven relative optimality gap (0.0: optimal)
    # "optimal" (by the solver), "optimal by lower bound" (no solver ran), "optimal by enumeration"
    # (fusion/exhaustive.py searched every plan; no solver ran), "time limit"
    status: str
    seconds: float  # solver time


def _legal(part: Partition, members: frozenset[str]) -> bool:
    for a, b in part.forbid:
        if a in members and b in members:
            return False
    try:
        part.shape(members)
    except ContractViolation:
        return False
    return True


def _convex(part: Partition, members: frozenset[str]) -> bool:
    """No op outside `members` is both reached from them and reaches them."""
    hi = max(part.order[n] for n in members)
    seen, stack = set(), [c for n in members for c in part.consumers[n] if c not in members]
    while stack:
        n = stack.pop()
        if n in seen or part.order[n] > hi:
            continue
        seen.add(n)
        for c in part.consumers[n]:
            if c in members:
                return False
            stack.append(c)
    return True


def candidates(part: Partition, extra: list[frozenset[str]]) -> list[frozenset[str]]:
    """Legal, convex kernels: singletons, sets grown from each op, and `extra` (the heuristics' groups)."""
    out: dict[frozenset[str], None] = {frozenset([n]): None for n in part.ops}
    for seed in part.ops:
        frontier, grown = [frozenset([seed])], {frozenset([seed])}
        while frontier and len(grown) < MAX_PER_SEED:
            nxt = []
            for s in frontier:
                nbrs = {m for n in s for m in (*part.consumers[n], *part.producers[n]) if m in part.group_of} - s
                for m in sorted(nbrs, key=part.order.__getitem__):
                    t = s | {m}
                    if t in grown or len(t) > MAX_GROW or not _legal(part, t):
                        continue
                    grown.add(t)
                    nxt.append(t)
                    if len(grown) >= MAX_PER_SEED:
                        break
            frontier = nxt
        # in a fixed order: a set of frozensets iterates by string hashes, which differ between
        # processes, and the solver breaks ties between equally cheap plans by column order
        for s in sorted(grown, key=lambda s: sorted(part.order[n] for n in s)):
            if len(s) > 1 and _convex(part, s):
                out[s] = None
    for s in extra:
        if _legal(part, s) and _convex(part, s):
            out[s] = None
    return list(out)


def _risk(part: Partition, members: frozenset[str]) -> float:
    """The margin a kernel of `members` must beat over its ops apart (cost.risk_seconds)."""
    if len(members) == 1:
        return 0.0
    return risk_seconds(part.cost(members), [part.cost([n]) for n in members], part.model)


def kernel_dag(part: Partition, groups) -> nx.DiGraph:
    """The dependences between kernels: an edge i -> j when group j reads a value group i makes.
    `groups` must cover every op of `part` (a whole plan)."""
    where = {n: i for i, grp in enumerate(groups) for n in grp}
    dag = nx.DiGraph()
    dag.add_nodes_from(range(len(groups)))
    for i, grp in enumerate(groups):
        for n in grp:
            for c in part.consumers[n]:
                if where[c] != i:
                    dag.add_edge(i, where[c])
    return dag


def _cycle(part: Partition, chosen: list[frozenset[str]]) -> list[int] | None:
    dag = kernel_dag(part, chosen)
    try:
        return sorted({u for u, _ in nx.find_cycle(dag)})
    except nx.NetworkXNoCycle:
        return None


def solve(part: Partition, extra: list[frozenset[str]], time_limit: float = TIME_LIMIT_S,
          force: list[tuple[str, str]] = ()) -> Solution:
    """The cheapest acyclic partition of `part`'s ops into candidate kernels (see the module doc)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix, vstack

    start = time.perf_counter()
    if not part.ops:  # nothing to plan (a graph that returns an input or a constant): no integer program
        return Solution([], 0.0, 0.0, "optimal", 0.0)
    cands = candidates(part, extra)
    for a, b in force:  # ops forced together: only candidates that hold both or neither
        cands = [c for c in cands if (a in c) == (b in c)]
    index = {n: i for i, n in enumerate(part.ops)}
    cost = np.array([part.cost(c).seconds for c in cands])
    weight = cost + np.array([_risk(part, c) for c in cands])
    rows = [index[n] for c in cands for n in c]
    cols = [j for j, c in enumerate(cands) for _ in c]
    cover = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(part.ops), len(cands)))
    cuts: list[np.ndarray] = []
    gap, status = 0.0, "optimal"
    while True:
        remaining = time_limit - (time.perf_counter() - start)
        constraints = [LinearConstraint(cover, 1, 1)]
        if cuts:
            constraints.append(LinearConstraint(vstack([coo_matrix(c) for c in cuts]), -np.inf,
                                                [c.sum() - 1 for c in cuts]))
        res = milp(weight * 1e3, integrality=np.ones(len(cands)), bounds=Bounds(0, 1), constraints=constraints,
                   options={"time_limit": max(remaining, 0.05), "disp": False})
        if res.x is None:
            raise TimeoutError(f"no plan within the solver's {time_limit:g} s limit ({res.message})")
        chosen_idx = [j for j in range(len(cands)) if res.x[j] > 0.5]
        chosen = [cands[j] for j in chosen_idx]
        gap = float(getattr(res, "mip_gap", 0.0) or 0.0)
        status = "optimal" if res.status == 0 else "time limit"
        loop = _cycle(part, chosen)
        if loop is None:
            break
        cut = np.zeros(len(cands))
        cut[[chosen_idx[i] for i in loop]] = 1
        cuts.append(cut.reshape(1, -1))
    return Solution(chosen, float(sum(cost[j] for j in chosen_idx)), gap, status, time.perf_counter() - start)


def guarded_seconds(part: Partition) -> float:
    """What the program minimises, for a partition: its kernels' predicted times plus their margins."""
    return math.fsum(part.cost(m).seconds + _risk(part, frozenset(m)) for m in part.members.values())  # in any order


def proven_by_bound(part: Partition, trials: list[Partition]) -> Partition | None:
    """The first of `trials` (partitions of `part`'s ops) whose predicted time, margins included,
    meets the lower bound on every partition: optimal without solving. None if none does."""
    bound = lower_bound(part)
    for trial in trials:
        if meets(guarded_seconds(trial), bound):
            return trial
    return None


def fuse_optimal(part: Partition, trials: list[Partition] | None = None) -> None:
    """Apply the optimal partition to `part` (the policy entry point; `part.solution` keeps the result).

    `trials`: the heuristic policies' partitions, each run from a copy of `part` (auto has them
    already); without them they are run here.
    """
    from fusec.fusion.greedy import fuse_greedy
    from fusec.fusion.postdom import fuse_postdom
    from fusec.fusion.table import fuse_table

    start = time.perf_counter()
    if trials is None:
        trials = []
        for policy in (fuse_greedy, fuse_postdom, fuse_table):
            trials.append(part.copy())
            policy(trials[-1])
    proven = proven_by_bound(part, trials)
    if proven is not None:
        groups = [frozenset(m) for m in proven.members.values()]
        sol = Solution(groups, sum(part.cost(m).seconds for m in groups), 0.0, "optimal by lower bound",
                       time.perf_counter() - start)
    else:
        extra = [frozenset(m) for trial in trials for m in trial.members.values()]
        sol = solve(part, extra, force=[(a, b) for g in part.members.values() if len(g) > 1
                                        for a, b in zip(sorted(g), sorted(g)[1:])])
    for members in sol.groups:
        gids = {part.group_of[n] for n in members}
        if len(gids) > 1:
            part.merge(gids)
    part.solution = sol
