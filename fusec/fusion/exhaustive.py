"""The cheapest plan of a small graph by exhaustive search: exact, without an integer program.

Every acyclic plan runs its kernels in some order in which each kernel reads only values made by
the kernels before it or by itself. So a plan is a sequence of steps, each adding one kernel to a
set of ops already computed that stays closed under producers (a downset of the graph), and every
such sequence is an acyclic plan whose kernels are convex (a path that leaves a kernel and comes
back would need a value computed both before and after it). The cheapest plan is then a shortest
path over the downsets, from none to all:

    best(done) = min over kernels K, legal, with done + K a downset: weight(K) + best(done + K)

weight(K) is what the optimal policy's integer program minimises (fusion/optimal.py): the kernel's
predicted time plus the guard's margin on any work fusing adds (cost.risk_seconds). Ties go to the
lower predicted time, then to fewer kernels. Each downset is solved once, so the work is one cost
per distinct kernel and a step per (downset, kernel) pair: a few hundred for the examples' chains
and norms, 3^n pairs for n independent ops.

Unlike the optimal policy's integer program, whose candidate kernels are the connected sets of up to
six ops plus the heuristics' groups, this searches every legal plan. `auto` runs it when at most
`BUDGET` kernels need costing, which takes less time than importing scipy.optimize alone, and
records the plan as optimal with gap 0 "by enumeration"; larger graphs go to the solver. Ops the
partition holds together already (--force-fuse) stay together: the search works on the
partition's groups, not on its ops.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from fusec.fusion.cost import risk_seconds
from fusec.fusion.legality import ContractViolation
from fusec.fusion.optimal import Solution
from fusec.fusion.partition import Partition

# auto enumerates a graph when at most this many kernels need costing (about 60 us each: 2,500 take
# about as long as importing scipy.optimize, before the solver has done anything)
BUDGET = 2_500
PAIRS_PER_KERNEL = 4  # and listing the (downset, kernel) pairs (about 2 us each) stays within this
MAX_ATOMS = 64  # and the graph has at most this many ops (groups): listing a state scans them all


@dataclass(frozen=True)
class Enumerated:
    groups: list[frozenset[str]]  # the cheapest plan's kernels, in an order they can run in
    predicted_s: float  # sum of their predicted times (without the margin)
    weight_s: float  # predicted time plus margins: what was minimised
    visited: int  # (downset, kernel) pairs the search looked at


def cheapest(part: Partition, budget: int = BUDGET) -> Enumerated | None:
    """The partition of `part`'s groups into kernels of least weight (see the module doc), or None
    if more than `budget` candidate kernels would need costing. The search is listed before any
    kernel is costed, so a graph over the budget costs only the listing."""
    atoms = sorted(part.members, key=part.pos.__getitem__)  # a topological order of the groups
    bit = {gid: 1 << i for i, gid in enumerate(atoms)}
    needs = [sum(bit[p] for p in part.predecessors(gid)) for gid in atoms]  # the atoms each one reads from
    members = [frozenset(part.members[gid]) for gid in atoms]
    full = (1 << len(atoms)) - 1
    steps = _steps(needs, full, budget) if len(atoms) <= MAX_ATOMS else None
    if steps is None:
        return None
    weights: dict[int, tuple[float, float] | None] = {}  # kernel -> (weight, predicted); None: not a kernel

    def ops(mask: int) -> frozenset[str]:
        return frozenset().union(*(members[i] for i in range(len(atoms)) if mask >> i & 1))

    # best[done] = (weight, predicted, kernels, first kernel) of the cheapest way to compute the rest;
    # a downset's successors are larger, so solving them from the largest down sees each one solved
    best: dict[int, tuple[float, float, int, int]] = {full: (0.0, 0.0, 0, 0)}
    least = part.model.overhead_seconds(1)  # no kernel is predicted faster than its call
    for done in sorted(steps, key=int.bit_count, reverse=True):
        result = (math.inf, math.inf, 0, 0)
        for k in reversed(steps[done]):  # the largest kernels first: fused plans are usually the cheapest
            if least + best[done | k][0] > result[0]:
                continue  # cannot beat the best so far, whatever k costs
            if k not in weights:
                weights[k] = _weight(part, ops(k))
            w, rest = weights[k], best[done | k]
            if w is not None and (cand := (w[0] + rest[0], w[1] + rest[1], rest[2] + 1, k))[:3] < result[:3]:
                result = cand
        best[done] = result
    groups, done = [], 0
    while done != full:
        k = best[done][3]
        groups.append(ops(k))
        done |= k
    return Enumerated(groups, best[0][1], best[0][0], sum(map(len, steps.values())))


def _steps(needs: list[int], full: int, budget: int) -> dict[int, list[int]] | None:
    """Every downset reachable from none (all of them) -> the kernels that can run next from it:
    each non-empty set of the remaining atoms whose producers are done or in the set. None if more
    than `budget` distinct kernels, or PAIRS_PER_KERNEL times as many (downset, kernel) pairs,
    would be searched."""
    steps: dict[int, list[int]] = {}
    kernels: set[int] = set()
    todo, pairs = [0], 0
    while todo:
        done = todo.pop()
        if done in steps or done == full:
            continue
        out = [0]
        for i, need in enumerate(needs):  # producers first: whether atom i may join is decided by then
            if not done >> i & 1:
                out += [k | 1 << i for k in out if need & ~(done | k) == 0]
                if pairs + len(out) > PAIRS_PER_KERNEL * budget:
                    return None
        steps[done] = out[1:]
        kernels.update(out[1:])
        pairs += len(out) - 1
        if len(kernels) > budget:
            return None
        todo += [done | k for k in out[1:]]
    return steps


def _weight(part: Partition, ops: frozenset[str]) -> tuple[float, float] | None:
    """(predicted time plus margin, predicted time) of one kernel of `ops`, or None if it is none."""
    for a, b in part.forbid:
        if a in ops and b in ops:
            return None
    try:
        cost = part.cost(ops)
    except ContractViolation:
        return None
    risk = risk_seconds(cost, [part.cost([n]) for n in ops], part.model) if len(ops) > 1 else 0.0
    return cost.seconds + risk, cost.seconds


def fuse_exhaustive(part: Partition, budget: int = BUDGET) -> bool:
    """Apply the cheapest plan to `part` (part.solution keeps it, "optimal by enumeration", gap 0).
    False, leaving `part` as it was, if the graph is over the budget."""
    start = time.perf_counter()
    found = cheapest(part, budget)
    if found is None:
        return False
    for members in found.groups:
        gids = {part.group_of[n] for n in members}
        if len(gids) > 1:
            part.merge(gids)
    part.solution = Solution(found.groups, found.predicted_s, 0.0, "optimal by enumeration", time.perf_counter() - start)
    return True
