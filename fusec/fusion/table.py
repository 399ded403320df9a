"""Table-driven fusion, in the manner of DNNFusion's mapping-type analysis.

Each op has a mapping kind, and the pairwise table (kinds.py) says whether a producer kind and a
consumer kind fuse always, never, or by cost. Starting from the heaviest ops (matmuls, then
reductions, then the rest) as seeds, a seed's kernel grows first along its consumers, then along
its producers. Like DNNFusion, it takes the "always" (green) edges everywhere first, and only then
the "cost" (yellow) edges, each still checked for legality and by the cost model; "never" (red)
edges are not tried at all.
"""

from __future__ import annotations

from fusec.fusion.kinds import ALWAYS, COST, edge_verdict
from fusec.fusion.partition import Partition
from fusec.fusion.siblings import fuse_siblings

_SEED_ORDER = {"opaque": 0, "reduce": 1, "broadcast": 2, "layout": 2, "elementwise": 3}


def _grow(part: Partition, gid: int, verdicts: tuple[str, ...]) -> int:
    g = part.graph
    for direction in ("consumers", "producers"):
        changed = True
        while changed:
            changed = False
            for n in sorted(part.members[gid], key=part.order.__getitem__):
                others = part.consumers[n] if direction == "consumers" else part.producers[n]
                for o in others:
                    og = part.group_of.get(o)
                    if og is None or og == gid:
                        continue
                    edge = (n, o) if direction == "consumers" else (o, n)
                    if edge_verdict(g, *edge)[0] not in verdicts:
                        continue
                    if part.try_merge([gid, og], edge=edge).ok:
                        gid = part.group_of[n]
                        changed = True
                        break
                if changed:
                    break
    return gid


def fuse_table(part: Partition) -> None:
    seeds = sorted(part.ops, key=lambda n: (_SEED_ORDER[part.graph.node(n).kind], part.order[n]))
    for verdicts in ((ALWAYS,), (ALWAYS, COST)):
        for seed in seeds:
            _grow(part, part.group_of[seed], verdicts)
    fuse_siblings(part)
