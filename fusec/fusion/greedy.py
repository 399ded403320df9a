"""Greedy producer-consumer fusion, in the manner of XLA's instruction fusion.

Visit the ops from the outputs backwards; for each one, try to pull each of its producers' kernels
into its own kernel. Each merge is taken if it is legal and the cost model predicts a saving. Repeat
until nothing changes, then merge siblings. Edge by edge, so it finds long chains well, but a
refused edge early on can split a region another policy would keep whole.
"""

from __future__ import annotations

from fusec.fusion.partition import Partition
from fusec.fusion.siblings import fuse_siblings


def fuse_greedy(part: Partition) -> None:
    changed = True
    while changed:
        changed = False
        for consumer in reversed(part.ops):
            for producer in part.producers[consumer]:
                if producer not in part.group_of:
                    continue  # an input or a constant
                a, b = part.group_of[producer], part.group_of[consumer]
                if a != b and part.try_merge([a, b], edge=(producer, consumer)).ok:
                    changed = True
    fuse_siblings(part)
