"""Post-dominator grouping, in the manner of TVM's FuseOps.

An op's immediate post-dominator is the first op every path from it to the graph's outputs goes
through. TVM fuses an op together with everything between it and its post-dominator, all at once,
if every op on those paths can join: so a diamond (x -> a, x -> b, a + b) fuses whole or not at
all, and never leaves a half-fused region that reads its own intermediate back from memory.

As in TVM, phases go by kind: first matmuls take their epilogues, then elementwise, broadcast and
layout ops join their post-dominators, then reductions. Siblings merge last.
"""

from __future__ import annotations

import networkx as nx

from fusec.fusion.legality import MAX_GROUP_OPS
from fusec.fusion.partition import Partition
from fusec.fusion.siblings import fuse_siblings

_SINK = "<sink>"
PHASES = (("opaque",), ("elementwise", "broadcast", "layout"), ("reduce",))


def immediate_post_dominators(part: Partition) -> dict[str, str]:
    """ipdom of every op on the op graph with one virtual sink after all outputs."""
    g = part.graph
    rev = nx.DiGraph()
    rev.add_node(_SINK)
    outputs = set(g.outputs)
    for n in part.ops:
        rev.add_node(n)
        consumers = part.consumers[n]
        for c in consumers:
            rev.add_edge(c, n)
        if n in outputs or not consumers:
            rev.add_edge(_SINK, n)
    idom = nx.immediate_dominators(rev, _SINK)
    return {n: idom[n] for n in part.ops if n in idom}


def _between(part: Partition, n: str, d: str) -> set[str]:
    """n, its post-dominator d and every op on a path between them; empty if that is more ops than
    one kernel may hold (the merge would fail on size, so the walk stops early).

    Every path from n to the outputs passes through d, so the ops reachable from n without going
    through d are exactly the ops between them: one walk, no ancestor or descendant sets.
    """
    region, stack = {n, d}, [n]
    while stack:
        for c in part.consumers[stack.pop()]:
            if c not in region:
                region.add(c)
                if len(region) > MAX_GROUP_OPS:
                    return set()
                stack.append(c)
    return region


def fuse_postdom(part: Partition) -> None:
    ipdom = immediate_post_dominators(part)
    g = part.graph
    for kinds in PHASES:
        for n in part.ops:
            if g.node(n).kind not in kinds:
                continue
            d = ipdom.get(n, _SINK)
            if d == _SINK:
                # nothing post-dominates it (it is an output, or its paths end in several): it can
                # still take all its direct consumers at once, as a multi-output kernel
                region = {n, *part.consumers[n]}
                edge = None
            else:
                region = _between(part, n, d)
                edge = (n, d) if d in part.consumers[n] else None
            gids = {part.group_of[x] for x in region if x in part.group_of}
            if region and len(gids) >= 2:
                part.try_merge(gids, edge=edge)
    fuse_siblings(part)
