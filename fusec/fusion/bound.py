"""A lower bound on the predicted time of any partition of a graph, in the cost model's own terms.

If a plan's predicted time meets the bound, no partition can be predicted faster: the plan is
optimal under the model without solving the integer program (fusion/optimal.py), so `auto` and the
optimal policy skip the solver (and scipy's import) on graphs such as a chain fused into one kernel.

Every kernel's predicted time (fusion/cost.py) is a fixed cost plus a body of at least

    max(memory, compute) + overlap_loss' * min(memory, compute)      overlap_loss' = min(overlap_loss, 1)

(a matmul kernel: at least max(memory, compute), so with a matmul in the graph overlap_loss' = 0),
and over a plan's kernels:

* compute: every op is computed at least once at its own points (an elementwise kernel's iteration
  space is at least as large as each member), a transcendental one at least once per distinct
  value (the C backend tabulates one that varies along few axes), on at most
  `threads_for(largest value)` cores;
* bytes: each graph input read once (the slices of it, if only slices read it) and each graph output
  written once; and each kernel that writes no graph output writes a value another kernel reads,
  so K kernels store at least (K - outputs) * (smallest value) bytes more, and load them back;
* memory: bytes at cache bandwidth up to `fit_bytes` per kernel, at memory bandwidth beyond, on at
  most those cores (every core if there is a matmul kernel); over K kernels at least what K equal kernels would take (the time of a kernel's
  bytes is convex in them), or, when cache is the slower of the two, what one kernel would take;
* kernels: at least one per 64 ops (the size bound), one per opaque op (a matmul is a kernel of its
  own), each paying the call (and the fork, if even the smallest kernel would run in parallel).

The body is convex in (memory, compute) and grows with both, so the sum over K kernels is at least
the body of K equal shares (Jensen): the bound is the least such total over every K from the
fewest kernels up. A graph where some kernel could loop with a stride gets no bound (None): the
strided cost is not a function of bytes the bound can use.
"""

from __future__ import annotations

import math

from fusec.fusion.legality import MAX_GROUP_OPS
from fusec.fusion.partition import Partition
from fusec.fusion.tables import table_size

TOLERANCE = 1e-9  # relative: a plan within this of the bound meets it (sums in another order round differently)


def lower_bound(part: Partition) -> float | None:
    """Seconds no partition of `part`'s ops into kernels can be predicted below, or None."""
    g, model = part.graph, part.model
    if not part.ops:
        return 0.0
    sizes = [g.type_of(n).size for n in part.order]
    if min(sizes) == 0 or any(part.cost([n]).strided for n in part.ops):
        return None
    threads = model.threads_for(max(sizes))  # no kernel's iteration space is larger than the largest value
    matmul = any(g.node(n).op == "matmul" for n in part.ops)
    mem_threads = model.threads if matmul else threads  # a matmul kernel moves its bytes on every core
    compute = 0.0
    opaque = 0
    for n in part.ops:
        node = g.node(n)
        if node.kind == "opaque":
            opaque += 1
        if node.op == "matmul":
            compute += node.opdef.flops * g.type_of(node.args[0]).shape[-1] * node.type.size / (model.matmul_gflops * 1e9)
        elif node.kind == "reduce":
            compute += model.compute_seconds(g.type_of(node.args[0]).size, threads)
        elif node.opdef.flops and node.opdef.transcendental:  # at least once per distinct value (a table)
            distinct = table_size(g, n, node.type.shape)
            compute += model.op_seconds(node.opdef.cost_name(node.attrs), distinct, node.opdef.flops, threads)
        elif node.opdef.flops:
            compute += model.compute_seconds(node.opdef.flops * node.type.size, threads)
    loaded = _input_bytes(part)
    stored = sum(g.type_of(o).nbytes for o in set(g.outputs) if o in part.group_of)
    smallest = min(g.type_of(n).nbytes for n in part.ops)
    outputs = len({o for o in g.outputs if o in part.group_of})
    overlap = 0.0 if matmul else min(model.overlap_loss, 1.0)
    # the smallest kernel runs on threads_for(its largest member) cores, at least the smallest op's
    call = model.overhead_seconds(model.threads_for(min(g.type_of(n).size for n in part.ops)))
    fewest = max(1, math.ceil(len(part.ops) / MAX_GROUP_OPS), opaque)
    best = math.inf
    for kernels in range(fewest, len(part.ops) + 1):
        if kernels * call >= best:
            break  # every further term costs at least this much in calls alone
        written = stored + smallest * max(0, kernels - outputs)  # and as much read back
        memory = _memory_seconds(model, loaded + 2 * written - stored, written, kernels, mem_threads)
        body = max(memory, compute) + overlap * min(memory, compute)
        best = min(best, body + kernels * call)
    return best


def meets(predicted_s: float, bound: float | None) -> bool:
    """Whether a plan predicted at `predicted_s` is proven optimal by `bound`."""
    return bound is not None and predicted_s <= bound * (1 + TOLERANCE)


def _input_bytes(part: Partition) -> int:
    """Bytes of the graph's inputs any plan reads: each input once, or only the slices taken of it."""
    g = part.graph
    total = 0
    for n in part.order:
        node = g.node(n)
        readers = [g.node(c) for c in dict.fromkeys(part.consumers[n])]
        if node.op != "input" or not readers:
            continue
        full = g.type_of(n).nbytes
        if all(r.op == "slice" for r in readers):
            total += min(full, sum(r.type.nbytes for r in readers))
        else:
            total += full
    return total


def _memory_seconds(model, nbytes: int, written: int, kernels: int, threads: int) -> float:
    """The least memory time of `nbytes` moved, `written` of them stores, by `kernels` kernels on at
    most `threads` cores.

    memory_seconds is linear at cache rate up to fit_bytes of loads and at the program's memory rate
    (memory_gbs) beyond, and linear in the stores. If the cache rate is the faster (convex), K
    kernels take at least K times one kernel of nbytes / K; if it is the slower (concave), they take
    at least one kernel of all the bytes.
    """
    cache_rate = model.cache_bandwidth_gbs * 1e9 * threads / model.threads
    if cache_rate <= model.memory_gbs * 1e9:
        return model.memory_seconds(nbytes, threads, written)
    return kernels * model.memory_seconds(nbytes / kernels, threads, written / kernels)
