"""Sibling (multi-output) fusion: kernels that read the same values can share one pass.

Two groups that both read an input (or another kernel's output) each load it from memory. Merged,
the value is loaded once and the kernel writes both groups' outputs: an optimizer step that reads
p, g, m, v and writes p, m, v becomes one pass over memory. The merge is legal only if the kernel
shape allows it (one iteration space) and the graph of groups stays acyclic; it is taken only if
the cost model predicts it is faster. Every policy ends with this pass.

A value read by many kernels (the input of a long chain) would make trying every pair of its
readers quadratic; each reader is tried with its next `NEIGHBOURS` readers in topological order
(readers far apart are almost always joined by a path, which a merge would turn into a cycle).
"""

from __future__ import annotations

from fusec.fusion.partition import Partition

NEIGHBOURS = 8


def fuse_siblings(part: Partition) -> None:
    changed = True
    while changed:
        changed = False
        readers: dict[str, list[int]] = {}
        for gid in part.groups():
            for n in part.members[gid]:
                for a in part.graph.node(n).args:
                    if part.graph.node(a).op != "const" and a not in part.members[gid]:
                        lst = readers.setdefault(a, [])
                        if gid not in lst:
                            lst.append(gid)
        for value in sorted(readers, key=part.order.__getitem__):
            gids = readers[value]
            for i in range(len(gids)):
                for j in range(i + 1, min(i + 1 + NEIGHBOURS, len(gids))):
                    a, b = gids[i], gids[j]
                    if a != b and a in part.members and b in part.members and part.try_merge([a, b]).ok:
                        keep = min(a, b)  # merge keeps the smallest id
                        gids[:] = [keep if g in (a, b) else g for g in gids]
                        changed = True
