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

from fusec.fusion.cost import KernelCost, Work, combine, risk_seconds, work_cost
from fusec.fusion.legality import MAX_GROUP_OPS, OPERAND_VIEW_OPS, ContractViolation, GroupShape, broadcasts_to
from fusec.fusion.optimal import Solution
from fusec.fusion.partition import Partition
from fusec.ir.ops import reduce_axes

# auto enumerates a graph when at most this many kernels need costing (20-70 us each: 4,000 take about
# as long as importing scipy.optimize alone, about 240 ms, before the solver has done anything)
BUDGET = 4_000
PAIRS_PER_KERNEL = 8  # and listing the (downset, kernel) pairs (about 2 us each) stays within this
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
    listed = _steps(needs, full, budget, _apart(part, members)) if len(atoms) <= MAX_ATOMS else None
    if listed is None:
        return None
    steps, parents = listed
    kernels = _Kernels(part, members, parents)
    weights: dict[int, tuple[float, float] | None] = {}  # kernel -> (weight, predicted); None: not a kernel

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
                weights[k] = kernels.weight(k)
            w, rest = weights[k], best[done | k]
            if w is not None and (cand := (w[0] + rest[0], w[1] + rest[1], rest[2] + 1, k))[:3] < result[:3]:
                result = cand
        best[done] = result
    if best[0][0] == math.inf:  # no plan at all (cannot happen with the partition's groups legal)
        return None
    groups, done = [], 0
    while done != full:
        k = best[done][3]
        groups.append(kernels.ops(k))
        done |= k
    return Enumerated(groups, best[0][1], best[0][0], sum(map(len, steps.values())))


def _apart(part: Partition, members: list[frozenset[str]]) -> list[int]:
    """For each atom, the atoms no kernel holding it can also hold (a mask; the relation is
    symmetric). The group contract (fusion/legality.py) allows one matmul per kernel, with
    elementwise ops, values computed from indices only, and the transposes or reshapes that lead to
    its operands (never a reduction, a broadcast or another layout op); and another opaque op only
    as a kernel of its own; whatever else a set holds. So a set holding two such atoms is no kernel,
    nor is any set that contains it, and the search need not list them."""
    g = part.graph
    never = [0] * len(members)

    def apart(i: int, j: int) -> None:
        never[i] |= 1 << j
        never[j] |= 1 << i

    for i, ops in enumerate(members):
        for n in sorted(ops):
            node = g.node(n)
            if node.op == "matmul":
                others = _not_with(part, members, n)
            elif node.kind == "opaque":
                others = range(len(members))
            elif node.kind == "reduce":
                others = _not_with_reduction(part, members, n)
            else:
                continue
            for j in others:
                if j != i:
                    apart(i, j)
    return never


def _not_with(part: Partition, members: list[frozenset[str]], mm: str) -> list[int]:
    """The atoms holding an op no kernel with the matmul `mm` can hold: another matmul, or an op
    that is neither elementwise, nor an iota, nor a transpose or reshape on the way to an operand."""
    g = part.graph
    chain, todo = set(), [a for a in g.node(mm).args if a in part.group_of]
    while todo:  # the layout ops that could lead to an operand: transposes and reshapes up from it
        n = todo.pop()
        if n not in chain and g.node(n).op in OPERAND_VIEW_OPS:
            chain.add(n)
            todo += [a for a in g.node(n).args if a in part.group_of]
    return [i for i, ops in enumerate(members)
            if any(n != mm and (g.node(n).op == "matmul" or g.node(n).kind not in ("elementwise", "opaque")
                                and g.node(n).op != "iota" and n not in chain) for n in ops)]


def _not_with_reduction(part: Partition, members: list[frozenset[str]], r: str) -> list[int]:
    """The atoms holding an op no kernel with the reduction `r` can hold: a reduction of another
    space or over other axes; an op that is neither elementwise nor an iota (a layout or broadcast
    op); or an op whose shape neither broadcasts to the reduced space nor is the reduced shape."""
    g = part.graph
    space = g.type_of(g.node(r).args[0]).shape
    axes = reduce_axes(g.node(r).attrs["axis"], len(space))
    kept = tuple(d for i, d in enumerate(space) if i not in axes)

    def clashes(n: str) -> bool:
        node = g.node(n)
        if node.kind == "reduce":
            other = g.type_of(node.args[0]).shape
            return other != space or reduce_axes(node.attrs["axis"], len(other)) != axes
        if node.kind not in ("elementwise", "opaque") and node.op != "iota":
            return True
        return node.kind != "opaque" and not broadcasts_to(node.type.shape, space) and tuple(node.type.shape) != kept

    return [i for i, ops in enumerate(members) if any(n != r and clashes(n) for n in ops)]


def _steps(needs: list[int], full: int, budget: int, never: list[int] | None = None
           ) -> tuple[dict[int, list[int]], dict[int, tuple[int, int]]] | None:
    """Every downset reachable from none (all of them) -> the kernels that can run next from it:
    each non-empty set of the remaining atoms whose producers are done or in the set and no two of
    which are `never` together (see _apart); and for each kernel, a smaller one and the atom it
    was grown from. None if more than `budget` distinct kernels, or PAIRS_PER_KERNEL times as many
    (downset, kernel) pairs, would be searched."""
    never = never or [0] * len(needs)
    steps: dict[int, list[int]] = {}
    parents: dict[int, tuple[int, int]] = {}
    todo, pairs = [0], 0
    while todo:
        done = todo.pop()
        if done in steps or done == full:
            continue
        out = [0]
        for i, need in enumerate(needs):  # producers first: whether atom i may join is decided by then
            if not done >> i & 1:
                grown = [k for k in out if need & ~(done | k) == 0 and not k & never[i]]
                for k in grown:
                    parents.setdefault(k | 1 << i, (k, i))
                out += [k | 1 << i for k in grown]
                if pairs + len(out) > PAIRS_PER_KERNEL * budget:
                    return None
        steps[done] = out[1:]
        pairs += len(out) - 1
        if len(parents) > budget:
            return None
        todo += [done | k for k in out[1:]]
    return steps, parents


class _Kernels:
    """The predicted cost of each kernel the search asks for, by mask of atoms, each costed once.

    A kernel grown by one atom from a smaller one, where both and their union are elementwise over
    one iteration space, is costed from the two parts' work (cost.combine, as Partition.merged_cost
    costs a merge along a chain) instead of analysing and walking all its members again: most of
    the kernels of a chain or a norm are such unions. Any other kernel is analysed (Partition.cost).
    """

    def __init__(self, part: Partition, members: list[frozenset[str]], parents: dict[int, tuple[int, int]]):
        self.part, self.members, self.parents = part, members, parents
        # mask -> (shape, its work if known, cost), or None if the ops are not one kernel
        self.known: dict[int, tuple[GroupShape, Work | None, KernelCost] | None] = {}
        self._ops: dict[int, frozenset[str]] = {}  # mask -> the ops it holds

    def ops(self, mask: int) -> frozenset[str]:
        ops = self._ops.get(mask)
        if ops is None:
            if mask in self.parents:  # every kernel listed: one atom more than a smaller one
                smaller, atom = self.parents[mask]
                ops = (self.ops(smaller) if smaller else frozenset()) | self.members[atom]
            else:
                ops = frozenset().union(*(m for i, m in enumerate(self.members) if mask >> i & 1))
            self._ops[mask] = ops
        return ops

    def weight(self, mask: int) -> tuple[float, float] | None:
        """(predicted time plus the guard's margin, predicted time), or None if it is no kernel."""
        kernel = self.kernel(mask)
        if kernel is None:
            return None
        cost, ops = kernel[2], self.ops(mask)
        risk = risk_seconds(cost, [self.part.cost([n]) for n in ops], self.part.model) if len(ops) > 1 else 0.0
        return cost.seconds + risk, cost.seconds

    def kernel(self, mask: int) -> tuple[GroupShape, Work | None, KernelCost] | None:
        if mask not in self.known:
            ops = self.ops(mask)
            if any(a in ops and b in ops for a, b in self.part.forbid):
                self.known[mask] = None
            else:
                self.known[mask] = self._grown(mask, ops) or self._analysed(ops)
        return self.known[mask]

    def _analysed(self, ops: frozenset[str]) -> tuple[GroupShape, None, KernelCost] | None:
        try:
            return self.part.shape(ops), None, self.part.cost(ops)
        except ContractViolation:
            return None

    def _grown(self, mask: int, ops: frozenset[str]) -> tuple[GroupShape, Work, KernelCost] | None:
        """The union's cost from its parts' work, or None where that shortcut does not apply."""
        smaller, atom = self.parents.get(mask, (0, 0))
        if not smaller or len(ops) > MAX_GROUP_OPS:
            return None
        parts = [self.kernel(smaller), self.kernel(1 << atom)]
        if None in parts or parts[0][0].kind != "elementwise" or parts[0][0] != parts[1][0]:
            return None
        shape, part = parts[0][0], self.part
        outputs = [n for n in ops if n in part.graph_outputs or any(c not in ops for c in part.consumers[n])]
        if any(part.shapes[o] != shape.space for o in outputs):
            return None  # the union is no elementwise kernel over that space (analyze says what it is)
        works = [w if w is not None else part.work(self.ops(m)) for (_, w, _), m in zip(parts, (smaller, 1 << atom))]
        work = combine(works, ops)
        if work is None:  # a part reads through a transpose, or a table may shrink: analyse the union
            return None
        return shape, work, work_cost(part.graph, work, outputs, shape, part.model)


def fuse_exhaustive(part: Partition, budget: int | None = None) -> bool:
    """Apply the cheapest plan to `part` (part.solution keeps it, "optimal by enumeration", gap 0).
    False, leaving `part` as it was, if the graph is over the budget."""
    start = time.perf_counter()
    found = cheapest(part, BUDGET if budget is None else budget)
    if found is None:
        return False
    for members in found.groups:
        gids = {part.group_of[n] for n in members}
        if len(gids) > 1:
            part.merge(gids)
    part.solution = Solution(found.groups, found.predicted_s, 0.0, "optimal by enumeration", time.perf_counter() - start)
    return True
