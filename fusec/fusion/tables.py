"""Which values the C backend computes once, into a small table, instead of at every point of a
kernel: the cost model (cost.py) counts such a value's arithmetic once per distinct value, and the
lower bound (bound.py) counts a transcendental op no fewer times than that.

A value broadcast over a bigger kernel, or one that varies along few of the kernel's axes (rotary's
inverse frequencies), has few distinct values; the C backend's tabulate_invariants
(codegen/c_passes.py) computes each once before the loops when there are at most TABLE_ELEMENTS.
"""

from __future__ import annotations

import math

from fusec.ir.graph import Graph

# the C backend computes an expensive value over at most this many elements once, into a table,
# when the kernel would otherwise recompute it at least twice per element (codegen/c_passes.py
# tabulate_invariants, TABLE_ELEMENTS; tests/test_fusion_traps.py checks that the two agree)
TABLE_ELEMENTS = 8192


def tabulated(graph: Graph, name: str, points: int) -> bool:
    """Whether a member of an elementwise kernel over `points` is computed once into a table: a small
    value (at most TABLE_ELEMENTS, recomputed at least twice per element otherwise) that is
    transcendental, or that only small values read (so it sits inside an expression the C backend
    tabulates whole, as `erf(v) * 2 + 1` under `tanh`). A cheap value read directly at every point
    (`b * 3` in `x + b * 3`) stays in the loop; so, in the model, does a cheap op atop a
    transcendental (`tanh(b) * 3`), which the backend tabulates too. These depend on the graph only,
    never on which ops share the kernel, so merged groups cost the sum of their parts."""
    size = graph.type_of(name).size
    if size > TABLE_ELEMENTS or points < 2 * size:
        return False
    if graph.node(name).opdef.transcendental:
        return True
    consumers = graph.consumers(name)
    return bool(consumers) and all(graph.type_of(c).size <= size for c in consumers)


VARIATION_DEPTH = 12  # producers followed to find what a value varies along; deeper: every axis


def variation(graph: Graph, name: str, depth: int = 0, seen: dict | None = None,
              members: frozenset[str] | None = None) -> frozenset[int]:
    """The axes of `name`'s own shape along which its value can change: an input's axes longer
    than one, an iota's own axis, a constant none, an elementwise op's arguments' (aligned to the
    right, as they broadcast), anything else every axis longer than one. Rotary's
    `10000 ** (-2 * i / Dh)` over [H, S, Dh / 2] varies along its last axis only. With `members`
    (a kernel's ops), a value made outside the kernel is an array the kernel loads, which varies
    along all of its axes: the kernel cannot see that an iota made it. `seen` keeps each value's
    answer, so a value many others read is looked at once."""
    seen = {} if seen is None else seen
    if name in seen:
        return seen[name]
    node = graph.node(name)
    shape = graph.type_of(name).shape
    every = frozenset(a for a, n in enumerate(shape) if n > 1)
    if node.op == "const" or not shape:
        axes = frozenset()
    elif members is not None and name not in members:
        axes = every
    elif node.op == "iota":
        axes = frozenset({node.attrs["axis"] % len(shape)}) & every
    elif node.kind != "elementwise" or depth >= VARIATION_DEPTH:
        axes = every
    else:
        found: set[int] = set()
        for a in node.args:
            lead = len(shape) - len(graph.type_of(a).shape)
            found |= {lead + ax for ax in variation(graph, a, depth + 1, seen, members)}
        axes = frozenset(found) & every
    seen[name] = axes
    return axes


def table_size(graph: Graph, name: str, space: tuple[int, ...], members: frozenset[str] | None = None) -> int:
    """The elements of the table the C backend's tabulate_invariants would compute `name` into, in a
    kernel over `space` made of `members` (None: the fewest any kernel could reach, with every
    producer of `name` inside it): the product of the space's extents along the axes the value
    varies along."""
    lead = len(space) - len(graph.type_of(name).shape)
    return math.prod(space[lead + a] for a in variation(graph, name, members=members))
