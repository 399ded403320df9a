"""Table-driven fusion, in the manner of DNNFusion's mapping-type analysis.

Each op has a mapping kind, and the pairwise table (kinds.py) says whether a producer kind and a
consumer kind fuse always, never, or by cost. Starting from the heaviest ops (matmuls, then
reductions, then the rest) as seeds, a seed's kernel grows first along its consumers, then along
its producers, looking each edge up by the kernel's kind so far (a kernel holding a matmul behaves
like a matmul): "never" stops, "always" and "cost" ask legality and the cost model.
"""

from __future__ import annotations

from fusec.fusion.kinds import GROUP_KIND_AS_OP, NEVER, verdict
from fusec.fusion.partition import Partition
from fusec.fusion.siblings import fuse_siblings

_SEED_ORDER = {"opaque": 0, "reduce": 1, "broadcast": 2, "layout": 2, "elementwise": 3}


def _grow(part: Partition, gid: int) -> int:
    g = part.graph
    for direction in ("consumers", "producers"):
        changed = True
        while changed:
            changed = False
            kind = GROUP_KIND_AS_OP[part.kind_of(gid)]
            for n in sorted(part.members[gid], key=part.order.__getitem__):
                others = g.consumers(n) if direction == "consumers" else g.producers(n)
                for o in others:
                    og = part.group_of.get(o)
                    if og is None or og == gid:
                        continue
                    other_kind = GROUP_KIND_AS_OP[part.kind_of(og)]
                    pair = (kind, other_kind) if direction == "consumers" else (other_kind, kind)
                    if verdict(*pair)[0] == NEVER:
                        continue
                    edge = (n, o) if direction == "consumers" else (o, n)
                    if part.try_merge([gid, og], edge=edge).ok:
                        gid = part.group_of[n]
                        changed = True
                        break
                if changed:
                    break
    return gid


def fuse_table(part: Partition) -> None:
    seeds = sorted(part.ops, key=lambda n: (_SEED_ORDER[part.graph.node(n).kind], part.order[n]))
    grown: set[int] = set()
    for seed in seeds:
        gid = part.group_of[seed]
        if gid in grown:
            continue
        grown.add(_grow(part, gid))
    fuse_siblings(part)
