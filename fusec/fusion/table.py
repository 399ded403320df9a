"""Table-driven fusion, in the manner of DNNFusion's mapping-type analysis.

Each op has a mapping kind, and the pairwise table (kinds.py) says whether a producer kind and a
consumer kind fuse always, never, or by cost. Starting from the heaviest ops (matmuls, then
reductions, then the rest) as seeds, a seed's kernel grows first along its consumers, then along
its producers. Like DNNFusion, it takes the "always" (green) edges everywhere first, and only then
the "cost" (yellow) edges, each still checked for legality and by the cost model; "never" (red)
edges are not tried at all.

Every seed of a kernel proposes the same growth, so once a kernel has grown by nothing, its other
seeds skip it until some merge changes the partition (a merge elsewhere can make a refused edge
legal or profitable): one scan per kernel instead of one per op.
"""

from __future__ import annotations

from bisect import insort

from fusec.fusion.kinds import ALWAYS, COST, edge_verdict
from fusec.fusion.partition import Partition
from fusec.fusion.siblings import fuse_siblings

_SEED_ORDER = {"opaque": 0, "reduce": 1, "broadcast": 2, "layout": 2, "elementwise": 3}


def _merge_one(part: Partition, gid: int, ordered: list[str], direction: str, verdicts: tuple[str, ...]) -> int | None:
    """The first edge (members in topological order) along `direction` this policy may take, merged:
    the merged group's id, or None if no edge merges."""
    g = part.graph
    for n in ordered:
        others = part.consumers[n] if direction == "consumers" else part.producers[n]
        for o in others:
            og = part.group_of.get(o)
            if og is None or og == gid:
                continue
            edge = (n, o) if direction == "consumers" else (o, n)
            if edge_verdict(g, *edge)[0] not in verdicts:
                continue
            taken = list(part.members[og])  # before the merge: the merged group may keep its set
            if part.try_merge([gid, og], edge=edge).ok:
                for m in taken:
                    insort(ordered, m, key=part.order.__getitem__)
                return part.group_of[n]
    return None


def _grow(part: Partition, gid: int, verdicts: tuple[str, ...], settled: dict[int, int]) -> int:
    """Grow `gid` along its consumers, then its producers, one edge at a time; `settled` holds the
    groups that grew by nothing, with the partition's merge count at the time."""
    if settled.get(gid) == part.merges:
        return gid
    ordered = sorted(part.members[gid], key=part.order.__getitem__)
    grew = False
    for direction in ("consumers", "producers"):
        while (merged := _merge_one(part, gid, ordered, direction, verdicts)) is not None:
            gid, grew = merged, True
    if not grew:
        settled[gid] = part.merges
    return gid


def fuse_table(part: Partition) -> None:
    seeds = sorted(part.ops, key=lambda n: (_SEED_ORDER[part.graph.node(n).kind], part.order[n]))
    for verdicts in ((ALWAYS,), (ALWAYS, COST)):
        settled: dict[int, int] = {}
        for seed in seeds:
            _grow(part, part.group_of[seed], verdicts, settled)
    fuse_siblings(part)
