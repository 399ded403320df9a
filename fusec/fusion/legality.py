"""Which sets of ops may run as one kernel: the group contract, written as a checker.

The planner proposes merges; `analyze` says whether the merged set of ops is still a kernel that
lowering can build, and if so what shape of loop it is. The contract (shared with the backends):

(a) elementwise: elementwise, broadcast and layout ops only; every output has the same shape (the
    iteration space) and every member's shape broadcasts to it (smaller members are recomputed).
(b) reduce: reductions of one iteration shape S over the same axes, plus elementwise members on S
    (prologue and epilogue) and on the reduced shape (per row). Epilogue members may read reduction
    results only by broadcasting along the reduced axes, so each row needs only its own results.
(c) matmul: one matmul plus elementwise members on its output shape that read its result, and
    transposes or reshapes that only rearrange an operand (its strides: BLAS reads it in place).
Reduce and matmul kernels may also hold values computed from indices alone (iota, a causal mask
iota >= iota): they are computed where they are used.
(d) layout / opaque: a single op.

A failed check raises `ContractViolation` with a short rule name (what explain prints) and a
sentence saying which ops break it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from fusec.errors import FusecTypeError
from fusec.ir.dtypes import broadcast_shapes
from fusec.ir.graph import Graph
from fusec.ir.ops import reduce_axes

# The most ops one kernel may hold. A bound keeps generated kernels readable, compile times and
# register pressure in check, and the planner's search cheap; 64 is far above what the examples need.
MAX_GROUP_OPS = 64

# Op kinds that may sit in an elementwise group (layout ops become index maps on loads).
ELEMENTWISE_GROUP_OPS = frozenset({"elementwise", "broadcast", "layout"})


class ContractViolation(Exception):
    """A set of ops that cannot be one kernel. `rule` is a short name, `message` the details."""

    def __init__(self, rule: str, message: str):
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class GroupShape:
    """What a legal group looks like as a loop.

    space:  the iteration space (elementwise/matmul: the output shape; reduce: the shape reduced)
    axes:   reduce groups: the reduced axes of `space`
    row:    reduce groups: members computed once per kept index (reductions and per-row members)
    sweeps: reduce groups: passes over each row (one per dependent reduction, plus the epilogue)
    """

    kind: str
    space: tuple[int, ...]
    axes: tuple[int, ...] = ()
    row: frozenset[str] = field(default_factory=frozenset)
    sweeps: int = 1


def group_outputs(graph: Graph, members: Iterable[str]) -> list[str]:
    """Members whose value leaves the group: graph outputs and values read by other ops.

    In the order `members` come in (pass a topologically sorted list for reproducible messages).
    """
    members = list(members)
    mset, outs = set(members), set(graph.outputs)
    return [n for n in members if n in outs or any(c not in mset for c in graph.nx.successors(n))]


@lru_cache(maxsize=4096)
def broadcasts_to(shape: tuple[int, ...], space: tuple[int, ...]) -> bool:
    if len(shape) > len(space):
        return False
    try:
        return broadcast_shapes(shape, space) == tuple(space)
    except FusecTypeError:
        return False


def _fmt(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def analyze(graph: Graph, members: Iterable[str], order: dict[str, int] | None = None) -> GroupShape:
    """Check that `members` can be one kernel; return its loop shape or raise ContractViolation.

    `order` (name -> topological position) saves recomputing it when checking many groups.
    """
    order = order or {n: i for i, n in enumerate(graph.topo_order())}
    mlist = sorted(set(members), key=order.__getitem__)
    if not mlist:
        raise ContractViolation("empty", "a group needs at least one op")
    for n in mlist:
        node = graph.node(n)
        if node.kind == "leaf":
            raise ContractViolation("leaf", f"'{n}' is an {node.op}, not an op: leaves are never group members")
        if node.opdef.is_composite:
            raise ContractViolation("composite", f"'{n}' ({node.op}) must be expanded into primitives first")
    if len(mlist) > MAX_GROUP_OPS:
        raise ContractViolation("size", f"{len(mlist)} ops exceed the bound of {MAX_GROUP_OPS} ops per kernel")
    if len(mlist) == 1:
        return _single(graph, mlist[0])
    kinds = {graph.node(n).kind for n in mlist}
    if "opaque" in kinds:
        return _matmul(graph, mlist)
    if "reduce" in kinds:
        return _reduce(graph, mlist)
    return _elementwise(graph, mlist)


def _single(graph: Graph, name: str) -> GroupShape:
    node = graph.node(name)
    if node.kind == "reduce":
        space = graph.type_of(node.args[0]).shape
        return GroupShape("reduce", space, reduce_axes(node.attrs["axis"], len(space)), frozenset({name}), 1)
    if node.op == "matmul":
        return GroupShape("matmul", node.type.shape)
    if node.kind == "opaque":
        return GroupShape("opaque", node.type.shape)
    if node.kind == "layout":
        return GroupShape("layout", node.type.shape)
    return GroupShape("elementwise", node.type.shape)


def _elementwise(graph: Graph, mlist: list[str]) -> GroupShape:
    for n in mlist:
        node = graph.node(n)
        if node.kind not in ELEMENTWISE_GROUP_OPS:  # pragma: no cover - analyze() routes these elsewhere
            raise ContractViolation("kind", f"'{n}' ({node.op}) is a {node.kind} op")
    outs = group_outputs(graph, mlist)
    shapes = {graph.type_of(o).shape for o in outs}
    if len(shapes) > 1:
        a, b = _two_differing(graph, outs)
        raise ContractViolation(
            "iteration-space",
            f"outputs '{a}' {_fmt(graph.type_of(a).shape)} and '{b}' {_fmt(graph.type_of(b).shape)} differ: "
            "one kernel writes every output over one iteration space",
        )
    space = shapes.pop() if shapes else _largest(graph, mlist)
    for n in mlist:
        shape = graph.type_of(n).shape
        if not broadcasts_to(shape, space):
            raise ContractViolation(
                "iteration-space",
                f"'{n}' is {_fmt(shape)}, which does not broadcast to the iteration space {_fmt(space)}",
            )
    return GroupShape("elementwise", space)


def _two_differing(graph: Graph, outs: list[str]) -> tuple[str, str]:
    first = outs[0]
    for o in outs[1:]:
        if graph.type_of(o).shape != graph.type_of(first).shape:
            return first, o
    raise AssertionError("no differing outputs")  # pragma: no cover


def _largest(graph: Graph, mlist: list[str]) -> tuple[int, ...]:
    return max((graph.type_of(n).shape for n in mlist), key=lambda s: (len(s), s))


def _matmul(graph: Graph, mlist: list[str]) -> GroupShape:
    mms = [n for n in mlist if graph.node(n).op == "matmul"]
    others = [n for n in mlist if graph.node(n).kind == "opaque" and graph.node(n).op != "matmul"]
    if others:
        raise ContractViolation("opaque", f"'{others[0]}' ({graph.node(others[0]).op}) runs as a kernel of its own")
    if len(mms) != 1:
        raise ContractViolation(
            "one-matmul", f"'{mms[0]}' and '{mms[1]}' are both matmuls: a matmul kernel holds exactly one"
        )
    mm = mms[0]
    space = graph.type_of(mm).shape
    mset = set(mlist)
    reached = {mm}
    for n in mlist:  # topological order: a member reads the matmul if one of its operands does
        if n != mm and any(a in reached for a in graph.node(n).args if a in mset):
            reached.add(n)
    views = operand_views(graph, mm, mset)
    generated = index_generated(graph, mlist) - set(graph.node(mm).args)  # operands come from memory
    for o in group_outputs(graph, mlist):
        if o in generated and graph.type_of(o).shape != space:
            raise ContractViolation(
                "matmul-epilogue",
                f"'{o}' is {_fmt(graph.type_of(o).shape)} and read outside the kernel: a matmul kernel stores "
                f"values of its output shape {_fmt(space)} only",
            )
    for n in mlist:
        if n == mm or n in views or n in generated:
            continue
        node = graph.node(n)
        if node.kind != "elementwise":
            raise ContractViolation(
                "matmul-epilogue", f"'{n}' ({node.op}) is a {node.kind} op: a matmul epilogue holds elementwise ops only"
            )
        if node.type.shape != space:
            raise ContractViolation(
                "matmul-epilogue",
                f"'{n}' is {_fmt(node.type.shape)}, not the matmul's output shape {_fmt(space)}: "
                "the epilogue runs on the matmul's output tile",
            )
        if n not in reached:
            raise ContractViolation(
                "matmul-prologue", f"'{n}' does not read the matmul's result: a matmul kernel has no prologue"
            )
    return GroupShape("matmul", space)


def index_generated(graph: Graph, mlist: list[str]) -> set[str]:
    """Members computed from loop indices and constants only (a causal mask, iota >= iota): any
    kernel computes them where it uses them, reading nothing from memory."""
    generated: set[str] = set()
    for n in mlist:  # topological order
        node = graph.node(n)
        if node.op == "iota" or (node.kind == "elementwise" and node.args and all(
                a in generated or graph.node(a).op == "const" for a in node.args)):
            generated.add(n)
    return generated


# Layout ops a matmul reads its operands through as strides, without a copy.
OPERAND_VIEW_OPS = frozenset({"transpose", "reshape", "expand_dims", "squeeze"})


def operand_views(graph: Graph, mm: str, mset: set[str]) -> set[str]:
    """Members that only rearrange an operand of the matmul: chains of transposes and reshapes
    from memory to the operand, read by nothing but the chain (so nothing else needs them stored)."""
    views: set[str] = set()
    todo = [a for a in graph.node(mm).args if a in mset]
    while todo:
        n = todo.pop()
        node = graph.node(n)
        readers = set(graph.consumers(n))
        if node.op not in OPERAND_VIEW_OPS or n in graph.outputs or not readers <= views | {mm}:
            continue
        views.add(n)
        todo += [a for a in node.args if a in mset]
    # a chain must start in memory: a view of a value the kernel computes (transpose(iota)) is no
    # view (BLAS has nothing to read it from), so neither is anything that reads one
    changed = True
    while changed:
        computed = {n for n in views if any(a in mset and a not in views for a in graph.node(n).args)}
        changed = bool(computed)
        views -= computed
    return views


def _reduce(graph: Graph, mlist: list[str]) -> GroupShape:
    reds = [n for n in mlist if graph.node(n).kind == "reduce"]
    first = reds[0]
    space = graph.type_of(graph.node(first).args[0]).shape
    axes = reduce_axes(graph.node(first).attrs["axis"], len(space))
    for r in reds[1:]:
        s = graph.type_of(graph.node(r).args[0]).shape
        a = reduce_axes(graph.node(r).attrs["axis"], len(s))
        if s != space or a != axes:
            raise ContractViolation(
                "reduce-space",
                f"'{r}' reduces {_fmt(s)} over axes {list(a)} but '{first}' reduces {_fmt(space)} over axes "
                f"{list(axes)}: one reduce kernel reduces one iteration space over the same axes",
            )
    generated = index_generated(graph, mlist)
    for n in mlist:
        node = graph.node(n)
        if node.kind not in ("reduce", "elementwise") and n not in generated:
            raise ContractViolation(
                "reduce-member", f"'{n}' ({node.op}) is a {node.kind} op: a reduce kernel holds elementwise ops only"
            )
    kept_shape = tuple(d for i, d in enumerate(space) if i not in axes)

    def level(shape: tuple[int, ...]) -> str | None:
        """'row' if constant along the reduced axes, 'space' if it varies there, 'kept' if it is the
        reduced shape without kept dims of size one (keepdims=false), None if it fits nowhere."""
        if broadcasts_to(shape, space):
            padded = (1,) * (len(space) - len(shape)) + tuple(shape)
            return "row" if all(padded[a] == 1 for a in axes) else "space"
        if tuple(shape) == kept_shape:
            return "kept"
        return None

    mset = set(mlist)
    levels: dict[str, str] = {}
    after_reduction: set[str] = set()  # members whose value depends on a reduction in the group
    for n in mlist:
        node = graph.node(n)
        inside = [a for a in node.args if a in mset]
        # values computed before any reduction can be recomputed anywhere; the others are per row
        after = [a for a in inside if a in after_reduction]
        if node.kind == "reduce" or after:
            after_reduction.add(n)
        if node.kind == "reduce":
            # a keepdims=false result lines up with the rows only if padding it on the left does
            padded = (1,) * (len(space) - len(node.type.shape)) + tuple(node.type.shape)
            levels[n] = "row" if all(padded[a] == 1 for a in axes) else "kept"
            continue
        kept_ops = [a for a in after if levels[a] == "kept"]
        if kept_ops and tuple(node.type.shape) != kept_shape:
            a = kept_ops[0]
            raise ContractViolation(
                "reduce-alignment",
                f"'{n}' reads '{a}' ({_fmt(graph.type_of(a).shape)}) by broadcasting across the reduced axes "
                f"{list(axes)}: each row would need the results of other rows",
            )
        lv = "kept" if kept_ops else level(node.type.shape)
        if lv is None or (lv == "kept" and tuple(node.type.shape) != kept_shape):
            raise ContractViolation(
                "reduce-shape",
                f"'{n}' is {_fmt(node.type.shape)}: neither on the reduced space {_fmt(space)} nor on the "
                f"reduced shape {_fmt(kept_shape)}",
            )
        levels[n] = lv
        for a in after:
            if lv == "kept":
                ok = levels[a] == "kept" or all(d == 1 for d in graph.type_of(a).shape)
            else:
                ok = levels[a] in ("row", "space")
            if not ok:
                raise ContractViolation(
                    "reduce-alignment",
                    f"'{n}' reads '{a}' ({_fmt(graph.type_of(a).shape)}) across the reduced axes {list(axes)}: "
                    "each row would need the results of other rows",
                )
    row_shapes = {tuple(1 if i in axes else d for i, d in enumerate(space)), kept_shape, tuple(space)}
    for o in group_outputs(graph, mlist):
        shape = graph.type_of(o).shape
        if shape not in row_shapes:
            raise ContractViolation(
                "reduce-output",
                f"output '{o}' is {_fmt(shape)}: a reduce kernel writes values of the reduced space {_fmt(space)} "
                "or of the reduced shape",
            )
    row = frozenset(n for n in mlist if levels[n] in ("row", "kept") or graph.node(n).kind == "reduce")
    return GroupShape("reduce", tuple(space), axes, row, _sweeps(graph, mlist, mset, reds))


def _sweeps(graph: Graph, mlist: list[str], mset: set[str], reds: list[str]) -> int:
    """Passes over each row: a reduction that needs another's result waits for its pass to end."""
    depth: dict[str, int] = {}
    for n in mlist:
        node = graph.node(n)
        d = max((depth[a] for a in node.args if a in mset), default=0)
        depth[n] = d + 1 if node.kind == "reduce" else d
    deepest = max(depth[r] for r in reds)
    epilogue = any(depth[n] >= deepest and graph.node(n).kind != "reduce" for n in mlist)
    return deepest + (1 if epilogue else 0)


def validate_group(graph: Graph, group) -> GroupShape:
    """Check one planned Group against the contract and against its own bookkeeping.

    Tests call this on every group of every plan. Raises ContractViolation when the group is not a
    kernel lowering can build, or when its inputs/outputs/kind do not match its members.
    """
    from fusec.fusion.plan import group_kind  # same layer; plan.py imports nothing from here

    order = {n: i for i, n in enumerate(graph.topo_order())}
    shape = analyze(graph, group.nodes, order)
    if list(group.nodes) != sorted(group.nodes, key=order.__getitem__):
        raise ContractViolation("bookkeeping", f"group {group.id}: members are not in topological order")
    mset = set(group.nodes)
    want_out = set(group_outputs(graph, mset))
    if set(group.outputs) != want_out:
        raise ContractViolation("bookkeeping", f"group {group.id}: outputs {group.outputs} should be {sorted(want_out)}")
    want_in = {a for n in group.nodes for a in graph.node(n).args if a not in mset and graph.node(a).op != "const"}
    if set(group.inputs) != want_in:
        raise ContractViolation("bookkeeping", f"group {group.id}: inputs {group.inputs} should be {sorted(want_in)}")
    if group.kind != group_kind(graph, group.nodes):
        raise ContractViolation("bookkeeping", f"group {group.id}: kind {group.kind} does not match its members")
    if group.kind != shape.kind and not (group.kind == "elementwise" and shape.kind == "layout"):
        raise ContractViolation("bookkeeping", f"group {group.id}: kind {group.kind} but the loop is {shape.kind}")
    return shape
