"""Lowering: one fusion group -> one LoopNest.

The idea is to *pull points back*. A group's iteration space is a box of loop variables; to know a
member's value at a point, ask for its operands' values at the points they broadcast or re-index
from. Elementwise ops keep the point, broadcasting sets size-1 axes to 0, layout ops re-index
(transpose permutes, slice scales and shifts, reshape goes through the flat offset, concat picks a
piece), and a group input is finally a Load at the flat offset of its point. So a whole fused group
becomes scalar expressions of loads, and nothing in between is ever stored.

Then:
* reductions become accumulators, one pass over the reduced axes per level of dependence
  (softmax: max, then sum of exp(x - max), then the outputs), inside a loop over the kept axes;
* values that do not depend on the reduced axes move out of the inner loops (loop-invariant code);
* repeated subexpressions become named temporaries (Let);
* adjacent axes that every access walks contiguously merge into one (a 4096x4096 chain is one loop
  over 16,777,216 elements), and size-1 axes disappear.

The parts, in order:

    lower_points.py  the state of one group's lowering, values pulled back to points, temporaries
    lower.py         (this module) lower_group: the contract, the loops of an elementwise group
    lower_reduce.py  a reduce group's passes over the reduced axes, hoisting
    lower_matmul.py  a matmul group's scalar loops and the parts a backend hands to BLAS
    lower_dims.py    size-1 axes dropped and contiguous axes merged; the in-place check
"""

from __future__ import annotations

from fusec.fusion.plan import Group
from fusec.ir.graph import Graph
from fusec.loops.ir import Index, LoopNest, Store
from fusec.loops.lower_dims import check_inplace, simplify_dims
from fusec.loops.lower_matmul import lower_matmul
from fusec.loops.lower_points import Lowering, LoweringError, nest_loops
from fusec.loops.lower_reduce import lower_reduce


def lower_group(graph: Graph, group: Group, name: str | None = None, inplace: dict[str, str] | None = None) -> LoopNest:
    """Lower `group` to a LoopNest. `inplace` maps an output value to the input whose memory it reuses."""
    return _run(Lowering(graph, group, name, inplace or {}))


def _run(lw: Lowering) -> LoopNest:
    lw.check_contract()
    lw.make_buffers()
    kind = lw.group.kind
    if kind == "matmul":
        dims, body, mm = lower_matmul(lw)
    elif kind == "reduce":
        dims, body, mm = lower_reduce(lw)
    else:
        dims, body, mm = lower_elementwise(lw)
    buffers = []
    for b in lw.buffers.values():
        if b not in buffers:
            buffers.append(b)
    comment = f"group {lw.group.id} ({kind}):\n" + "\n".join(member_line(lw.g, n) for n in lw.group.nodes)
    nest = LoopNest(lw.kernel_name, kind, tuple(buffers), tuple(dims), tuple(body), mm, comment)
    if kind != "matmul":
        nest = simplify_dims(nest)
    check_inplace(nest)
    return nest


def lower_elementwise(lw: Lowering) -> tuple[list, tuple, None]:
    shape = lw.output_type().shape
    dims = lw.new_vars(shape)
    point = tuple(Index.of(d.var) for d in dims)
    sinks = lw.stores(list(lw.group.outputs), lambda o: point)
    body = lw.block([Store(b, i, v) for b, i, v in sinks])
    return dims, nest_loops(dims, body), None


def _fg_name(name: str) -> str:
    """A value's name as the .fg printer spells it (compiler temporaries %3 print as t3)."""
    return "t" + name[1:] if name.startswith("%") else name


def member_line(g: Graph, name: str) -> str:
    """One member of a group in .fg-like form, for the comments of generated code: `t2 = exp(t1)`."""
    node = g.node(name)
    args = []
    for a in node.args:
        arg = g.node(a)
        args.append(repr(arg.attrs["value"]) if arg.op == "const" else _fg_name(a))
    attrs = [f"{k}={v!r}" for k, v in node.attrs.items() if v is not None]
    return f"{_fg_name(name)} = {node.op}({', '.join(args + attrs)})"


__all__ = ["LoweringError", "lower_group", "member_line"]
