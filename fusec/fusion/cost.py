"""The roofline cost model: how long one kernel (one group) takes, and a whole plan.

A kernel's time is max(bytes moved / bandwidth, flops / peak) + a fixed cost per kernel.

* Bytes: every input is read once and every output written once. Intermediates inside a group live
  in registers or cache and cost nothing: that is the whole point of fusion (the memory wall).
  A reduction whose rows do not fit in cache re-reads its inputs once per pass over the row.
* Flops: each op's count per element it computes, from its row in the op table (fusec/ir/ops.py).
  A member of an elementwise group smaller than the iteration space is recomputed at every point,
  so fusing it is not free; per-row members of a reduce group run once per row; a matmul costs
  2*K per output element.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from fusec.fusion.legality import GroupShape, analyze, group_outputs
from fusec.fusion.machine import MachineModel
from fusec.ir.graph import Graph


@dataclass(frozen=True)
class KernelCost:
    bytes_read: int
    bytes_written: int
    flops: int
    seconds: float
    bound: str  # "memory" or "compute"

    @property
    def nbytes(self) -> int:
        return self.bytes_read + self.bytes_written

    @property
    def ms(self) -> float:
        return self.seconds * 1e3


def _size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _input_bytes(graph: Graph, value: str, members: set[str]) -> int:
    """Bytes a kernel reads of one input: all of it, unless it only takes slices of it."""
    full = graph.type_of(value).nbytes
    readers = [graph.node(c) for c in graph.nx.successors(value) if c in members]
    if readers and all(r.op == "slice" for r in readers):
        return min(full, sum(r.type.nbytes for r in readers))
    return full


def group_cost(graph: Graph, members: Iterable[str], model: MachineModel, shape: GroupShape | None = None) -> KernelCost:
    """The predicted cost of running `members` as one kernel (`shape`: their analysis, if known)."""
    mset = set(members)
    shape = shape or analyze(graph, mset)
    inputs = {a for n in mset for a in graph.node(n).args if a not in mset and graph.node(a).op != "const"}
    read = 0
    for a in inputs:
        nbytes = _input_bytes(graph, a, mset)
        read += nbytes * _passes(graph, a, shape, model)
    written = sum(graph.type_of(o).nbytes for o in group_outputs(graph, mset))
    flops = sum(_op_flops(graph, n, shape) for n in mset)
    return KernelCost(read, written, flops, model.kernel_seconds(read + written, flops), model.bound(read + written, flops))


def _passes(graph: Graph, value: str, shape: GroupShape, model: MachineModel) -> int:
    """How often a reduce kernel reads `value` from memory: once if its row fits in cache."""
    if shape.kind != "reduce" or shape.sweeps <= 1:
        return 1
    vshape = graph.type_of(value).shape
    padded = (1,) * (len(shape.space) - len(vshape)) + tuple(vshape)
    if len(padded) != len(shape.space) or all(padded[a] == 1 for a in shape.axes):
        return 1  # constant along the row: one value per row
    row_bytes = _size(tuple(padded[a] for a in shape.axes)) * graph.type_of(value).dtype.itemsize
    return 1 if row_bytes <= model.cache_bytes else shape.sweeps


def _op_flops(graph: Graph, name: str, shape: GroupShape) -> int:
    node = graph.node(name)
    if node.op == "matmul":  # the row's flops are per multiply-add of the inner dimension
        a = graph.type_of(node.args[0]).shape
        return node.opdef.flops * a[-1] * node.type.size
    if node.kind == "reduce":
        return graph.type_of(node.args[0]).size
    if node.opdef.flops == 0:
        return 0
    if shape.kind == "reduce":
        points = node.type.size if name in shape.row else _size(shape.space)
    elif shape.kind == "elementwise":
        points = _size(shape.space)  # recomputed at every point of the iteration space
    else:
        points = node.type.size
    return node.opdef.flops * points


def plan_cost(graph: Graph, groups: Iterable[Iterable[str]], model: MachineModel) -> tuple[int, float]:
    """Total bytes moved and predicted seconds of a list of groups (member lists)."""
    total_bytes, total_s = 0, 0.0
    order = {n: i for i, n in enumerate(graph.topo_order())}
    for members in groups:
        c = group_cost(graph, members, model, analyze(graph, members, order))
        total_bytes += c.nbytes
        total_s += c.seconds
    return total_bytes, total_s
