"""The lowering of one group, part 3: a matmul group's loops.

The matmul is written out in scalar form, a loop over the batch axes, i and j with a reduction
over k (`acc += a[..., i, k] * b[..., k, j]`), followed by the epilogue's stores; its operands are
read straight from memory, through the transposes and reshapes the group holds. `MatmulInfo`
names the parts, so a backend may call BLAS on a tile instead (fusec/loops/matmul.py).

Separate from lower.py because a matmul group has its own iteration space (batch, i, j, k) and
contract (one matmul, no prologue).
"""

from __future__ import annotations

from fusec.ir.dtypes import broadcast_shapes
from fusec.loops.ir import AccInit, AccUpdate, Dim, Index, Load, Loop, MatmulInfo, Op, Ref, Stmt, Store
from fusec.loops.lower_points import Lowering, LoweringError, broadcast_point, nest_loops


def lower_matmul(lw: Lowering) -> tuple[list[Dim], tuple[Stmt, ...], MatmulInfo]:
    mms = [n for n in lw.group.nodes if lw.g.node(n).op == "matmul"]
    if len(mms) != 1:
        raise LoweringError(f"matmul group {lw.group.id} holds {len(mms)} matmuls, not one")
    node = lw.g.node(mms[0])
    at, bt = (lw.g.type_of(a) for a in node.args)
    a2 = (1,) + at.shape if at.rank == 1 else at.shape
    b2 = bt.shape + (1,) if bt.rank == 1 else bt.shape
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    M, K, N = a2[-2], a2[-1], b2[-1]
    dims = lw.new_vars(batch, prefix="b")
    di = Dim(lw.names.take("i"), M)
    dj = Dim(lw.names.take("j"), N)
    dk = Dim(lw.names.take("k"), K, True)
    for d in (di, dj, dk):
        lw.ranges[d.var] = d.extent
    dims = dims + [di, dj, dk]
    bvars = tuple(Index.of(d.var) for d in dims[: len(batch)])
    iv, jv, kv = Index.of(di.var), Index.of(dj.var), Index.of(dk.var)
    a_point = broadcast_point(bvars + (iv, kv), a2, batch + (M, K))
    b_point = broadcast_point(bvars + (kv, jv), b2, batch + (K, N))
    if at.rank == 1:
        a_point = a_point[-1:]
    if bt.rank == 1:
        b_point = b_point[:-1]
    for a in node.args:
        if a in lw.members and lw.g.node(a).kind != "layout":
            raise LoweringError(f"matmul group {lw.group.id} has a prologue ('{a}'); the contract allows none")
    dt = node.type.dtype
    la = lw.value_at(node.args[0], a_point)
    lb = lw.value_at(node.args[1], b_point)
    if not (isinstance(la, Load) and isinstance(lb, Load)):
        raise LoweringError(f"matmul group {lw.group.id}: operands must be read from memory")
    acc = lw.names.take(f"matmul{mms[0][1:]}" if mms[0].startswith("%") else f"acc_{mms[0]}")
    out_point = bvars + ((iv,) if at.rank > 1 else ()) + ((jv,) if bt.rank > 1 else ())
    lw.results[mms[0]] = Ref(acc, dt)
    lw.result_points[mms[0]] = out_point
    init = AccInit(acc, "sum", dt)
    update = AccUpdate(acc, "sum", Op("mul", (lw.cast(la, dt), lw.cast(lb, dt)), dt))
    shape = node.type.shape
    for o in lw.group.outputs:
        if lw.g.type_of(o).shape != shape:
            raise LoweringError(f"matmul group {lw.group.id}: output '{o}' is not of the matmul's shape {list(shape)}")
    sinks = [Store(b, i, v) for b, i, v in lw.stores(list(lw.group.outputs), lambda o: out_point)]
    row = (init, Loop(dk.var, Index.of(K), (update,))) + lw.block(sinks)
    info = MatmulInfo(acc, la, lb, tuple(d.var for d in dims[: len(batch)]), di.var, dj.var, dk.var)
    return dims, nest_loops(dims[:-1], row), info
