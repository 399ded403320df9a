"""The cost model: how long one kernel (one group) takes, and a whole plan.

A kernel's time is a fixed cost plus its body:

    time = call (+ cold_call after a large kernel) + (fork if it runs in parallel)
           + (math_call if it computes a transcendental function) + body
    body = max(memory, compute) + overlap_loss * min(memory, compute)          (contiguous)
         = strided accesses * strided_ns / threads + strided compute                   (strided)
           (+ the memory of the loads and stores that stream, if it reads through a transpose;
            a staged kernel's moves and vector arithmetic overlap as a contiguous kernel's do)
    memory  = loads that fit in `fit_bytes` / cache bandwidth
              + (the other loads + write_factor * stores) / bandwidth
              (a program the last-level cache keeps: those at its rate, MachineModel.memory_seconds)
    compute = plain flops / peak + each transcendental op's points * its ns per element / threads

and a matmul kernel adds its 2*M*N*K flops at the BLAS rate, lower on a thin matmul (plus a
second call for an epilogue, which runs on one core). Every constant is fitted by `fusec calibrate`
from generated probe kernels (fusion/calibrate.py); the defaults describe the development machine
roughly.

* Bytes: every input is read once and every output written once. Intermediates inside a group live
  in registers or cache and cost nothing: that is the whole point of fusion (the memory wall).
  A reduction whose rows do not fit in cache re-reads its inputs once per pass over the row.
  Loads that fit in cache (an intermediate the previous kernel just wrote) move at cache bandwidth;
  stores go to memory (an output buffer was last touched a program run ago), unless the program's
  arrays (`program.program_bytes`: every array of the graph) fit in the last-level cache, which keeps them
  between runs. A column-form reduce kernel re-reads a large input on each pass, and moves its
  bytes `column_factor` times slower than a stream: each core walks its share of every row.
* Call: a kernel right after one that moved more than `fit_bytes` finds the interpreter's data out
  of the core's caches and pays `cold_call_us` more (`program.starts_cold` judges it from its inputs
  for a kernel on its own; in a whole plan, `in_plan` looks at the kernel that runs before it).
* Threads: the C backend's parallel loop hands out tiles of `parallel_grain` elements, so a kernel
  over fewer points runs on fewer cores (and a one-tile kernel pays no fork).
* Flops: each op's count per element it computes, from its row in the op table (fusec/ir/ops.py),
  times the points it is computed at: a member of an elementwise group smaller than the iteration
  space is recomputed at every point (a broadcast value recomputed per element) unless the C
  backend tabulates it (a transcendental value with at most TABLE_ELEMENTS distinct values, computed
  once before the parallel loop, on the calling thread),
  per-row members of a reduce group run once per row (a transcendental member of a column-form
  reduce kernel once per pass that needs it: no row array keeps it), a matmul costs 2*K per output
  element.
* Transcendentals: ops whose row says `transcendental` (exp, erf, tanh, pow, gelu, ...) cost their
  measured ns per element (`op_ns`), because a vector exp costs far more than plain arithmetic;
  recomputing one per point is what makes some fusions slower than none.
* Strided: a kernel that reads through a transpose walks memory with a stride in its inner loop,
  as does a reduction that keeps an innermost axis shorter than a vector (a column sum over a
  wider one streams its rows into a row of accumulators: loops/interchange.py); each element it
  loads or stores with a stride costs `strided_cache_ns` or `strided_memory_ns`, and its arithmetic
  runs without overlap with the loads, at a strided loop's rate: each transcendental op at its
  measured strided ns per element (`strided_op_ns`), plain arithmetic `strided_compute_factor`
  times slower than in a contiguous loop. The C backend tiles a read through a transpose in 2-D
  blocks (loops/defaults.py TRANSPOSE_TILES), so the lines it strides over serve a whole tile from
  the nearest cache. A kernel that reads through a transpose strides on the inputs that reach the
  transpose only; its other loads and its stores stream. If it computes a transcendental op at
  every point, the C backend copies each transposed tile into a local array first
  (codegen/c_stage.py: `Work.staged`), and its arithmetic runs at the contiguous rates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from fusec.fusion.legality import GroupShape, analyze, group_outputs
from fusec.fusion.machine import MachineModel
from fusec.fusion.program import plan_bytes, run_order, starts_cold
from fusec.fusion.tables import TABLE_ELEMENTS, table_size, tabulated
from fusec.ir.graph import Graph
from fusec.ir.ops import op_of_cost_name


@dataclass(frozen=True)
class KernelCost:
    bytes_read: int
    bytes_written: int
    flops: int
    seconds: float
    bound: str  # "memory" or "compute"
    transcendentals: int = 0  # flops of transcendental functions (counted in flops too)
    strided: bool = False  # the inner loop walks memory with a stride
    compute_s: float = 0.0  # the arithmetic part of `seconds` (what recomputation adds to)
    staged: bool = False  # strided, but its transposed tiles are staged: its arithmetic runs in vector form
    cold: bool = False  # its call pays cold_call_us: it runs after a kernel that moved more than fit_bytes

    @property
    def nbytes(self) -> int:
        return self.bytes_read + self.bytes_written

    @property
    def ms(self) -> float:
        return self.seconds * 1e3


def _size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


@dataclass(frozen=True)
class Work:
    """What a group's cost is made of, before the machine model: its arithmetic at the points it is
    computed, what it reads, and whether it reads through a transpose. The work of a union of
    elementwise groups over one iteration space is the sum of theirs (`combine`), so a planner that
    merges groups one by one costs each merge from its parts instead of walking every member."""

    flops: int
    transcendentals: int  # flops of transcendental ops (counted in flops too)
    matmul_flops: int  # flops of matmuls (counted in flops too), at the BLAS rate
    op_points: dict[str, int]  # transcendental op (its OpDef.cost_name) -> the points it is computed at
    # input value -> (its bytes, every reader takes a slice of it, bytes of the distinct slicing readers)
    reads: dict[str, tuple[int, bool, int]]
    transposed: bool  # a member reads through a transpose of its last axis
    matmul_dim: int = 0  # the smaller of a matmul's M and N (BLAS is slower on a thin one); 0: none
    # the inputs the kernel's loop reads in transposed order, with a stride (the others it streams)
    strided_reads: frozenset[str] = frozenset()
    # a column-form reduce kernel: input value -> the passes over its tile that read it
    column_reads: dict[str, int] = field(default_factory=dict)
    # a member's table would shrink in a kernel with more of its producers (tables.table_size)
    table_shrinks: bool = False
    # an elementwise kernel that reads through a transpose and computes a transcendental op at every
    # point: the C backend copies each transposed tile into a local array first, so its loop runs
    # in vector form (codegen/c_stage.py)
    staged: bool = False
    # transcendental op -> the points an elementwise kernel computes it at in a table, before its
    # parallel loop, on the calling thread (codegen/c_passes.py tabulate_invariants); not in op_points
    table_points: dict[str, int] = field(default_factory=dict)
    # a member moves axes but keeps the last one, which is short: the loop reads in runs of less
    # than a page (attention's [S, H, Dh] -> [H, S, Dh] head split), as a column-form reduction does
    short_runs: bool = False
    matmul_k: int = 0  # a matmul's inner dimension K (BLAS is slower still on a thin one); 0: none


def group_work(graph: Graph, members: Iterable[str], shape: GroupShape) -> Work:
    mset = set(members)
    readers: dict[str, dict[str, None]] = {}  # input value -> the members that read it (in order, once)
    flops = trans = mm = dim = inner = 0
    op_points: dict[str, int] = {}
    table_points: dict[str, int] = {}
    shrinks = per_point = False
    members = frozenset(mset)
    space = _size(shape.space)
    for n in mset:
        node = graph.node(n)
        if node.op == "matmul":
            left, right = graph.type_of(node.args[0]).shape, graph.type_of(node.args[1]).shape
            inner = left[-1]  # a vector operand is one row of the left, or one column of the right
            dim = min(left[-2] if len(left) > 1 else 1, right[-1] if len(right) > 1 else 1)
        for a in node.args:
            if a not in mset and graph.node(a).op != "const":
                readers.setdefault(a, {})[n] = None
        f, t, s = _op_work(graph, n, shape, members)
        shrinks = shrinks or s
        flops += f
        trans += t
        if node.op == "matmul":
            mm += f
        elif t:
            points = t // node.opdef.flops  # where the op is computed: every point, or a table's
            per_point = per_point or points == space
            into = table_points if shape.kind == "elementwise" and points < space else op_points
            key = node.opdef.cost_name(node.attrs)  # gelu's tanh form is another function, measured apart
            into[key] = into.get(key, 0) + points
    if _column_form(shape):  # no row array keeps a value between the passes: computed in each
        outputs = set(group_outputs(graph, mset))
        for n in mset:
            node = graph.node(n)
            if node.opdef.transcendental and node.opdef.flops and n not in shape.row:
                again = (_column_passes(graph, n, mset, outputs) - 1) * space  # points computed again
                flops, trans = flops + again * node.opdef.flops, trans + again * node.opdef.flops
                key = node.opdef.cost_name(node.attrs)
                op_points[key] = op_points.get(key, 0) + again
    reads = {}
    for a, rs in readers.items():
        nodes = [graph.node(r) for r in rs]
        slices = all(r.op == "slice" for r in nodes)
        reads[a] = (graph.type_of(a).nbytes, slices, sum(r.type.nbytes for r in nodes) if slices else 0)
    # a matmul reads a transposed operand through BLAS's strides, not a strided loop
    transposed = shape.kind != "matmul" and _reads_transposed(graph, mset)
    short_runs = shape.kind != "matmul" and not transposed and _reads_short_runs(graph, mset)
    strided = _transposed_inputs(graph, mset) if transposed else frozenset()
    column_reads = {}
    if _column_form(shape):  # each pass walks the tile again, and reads what it needs again
        outputs = set(group_outputs(graph, mset))
        column_reads = {a: _column_passes(graph, a, mset, outputs) for a in reads}
    staged = transposed and shape.kind == "elementwise" and per_point
    return Work(flops, trans, mm, op_points, reads, transposed, dim, strided, column_reads, shrinks, staged,
                table_points, short_runs, inner)


def combine(parts: Iterable[Work], members: Iterable[str]) -> Work | None:
    """The work of the union of disjoint groups whose union has the same elementwise shape as each;
    None if a part reads through a transpose (which of the union's inputs it reads with a stride
    takes the graph to say) or has a member whose table the union may shrink: walk the union with
    group_work instead."""
    mset = set(members)
    flops = trans = mm = 0
    op_points: dict[str, int] = {}
    table_points: dict[str, int] = {}
    reads: dict[str, tuple[int, bool, int]] = {}
    transposed = short_runs = False
    dims = []
    for w in parts:
        if w.transposed or w.table_shrinks:
            return None
        flops += w.flops
        trans += w.transcendentals
        mm += w.matmul_flops
        for op, pts in w.op_points.items():
            op_points[op] = op_points.get(op, 0) + pts
        for op, pts in w.table_points.items():
            table_points[op] = table_points.get(op, 0) + pts
        transposed = transposed or w.transposed
        short_runs = short_runs or w.short_runs
        dims += [w.matmul_dim] if w.matmul_dim else []
        for a, (full, slices, sliced) in w.reads.items():
            if a in mset:
                continue  # now made inside the kernel
            if a in reads:
                _, s0, b0 = reads[a]
                reads[a] = (full, s0 and slices, b0 + sliced)
            else:
                reads[a] = (full, slices, sliced)
    return Work(flops, trans, mm, op_points, reads, transposed, min(dims, default=0), table_points=table_points,
                short_runs=short_runs)


def work_cost(graph: Graph, work: Work, outputs: Iterable[str], shape: GroupShape, model: MachineModel,
              cold: bool | None = None) -> KernelCost:
    """A group's predicted cost from its work and the values it writes. `cold`: whether the kernel
    starts after one that moved more than the caches hold (None: as `starts_cold` judges)."""
    cold = starts_cold(graph, work.reads, model) if cold is None else cold
    read = sum((min(full, sliced) if slices else full) * _passes(graph, a, shape, model, work.column_reads.get(a, 1))
               * _rereads(graph, a, shape, model)
               for a, (full, slices, sliced) in work.reads.items())
    outputs = list(outputs)
    written = sum(graph.type_of(o).nbytes for o in outputs)
    strided = work.transposed or _strided_loop(shape)
    nbytes = read + written
    points = _size(shape.space)
    threads_ew = model.threads_for(points)  # the elementwise work: on one core per parallel tile
    threads = model.threads if shape.kind == "matmul" else threads_ew
    epilogue = shape.kind == "matmul" and work.flops > work.matmul_flops
    plain = work.flops - work.transcendentals - work.matmul_flops
    scalar = strided and not work.staged  # gcc leaves a strided loop scalar; a staged tile's loop is not strided
    comp = model.compute_seconds(plain, threads_ew) * (model.strided_compute_factor if scalar else 1.0) + sum(
        model.op_seconds(op, pts, op_of_cost_name(op).flops, threads_ew, scalar) for op, pts in sorted(work.op_points.items()))
    # tables are computed before the parallel loop, on one thread, in a contiguous vector loop
    comp += sum(model.op_seconds(op, pts, op_of_cost_name(op).flops, 1) for op, pts in sorted(work.table_points.items()))
    mem = model.memory_seconds(nbytes, threads, written)
    if _column_form(shape) or work.short_runs:  # short runs (each core's share of every row; a head
        mem *= model.column_factor  # split's runs of the last axis): slower than a stream
    if work.transposed:  # the transposed inputs' loads stride; the other loads and the stores stream
        accesses = sum(graph.type_of(a).size for a in work.strided_reads)
        streamed = sum(full for a, (full, _, _) in work.reads.items() if a not in work.strided_reads) + written
        moves = model.strided_seconds(accesses, nbytes, threads_ew) + model.memory_seconds(streamed, threads_ew, written)
        # a staged kernel copies a tile, then computes on it in vector form, and its memory and its
        # arithmetic overlap as a contiguous kernel's do (transpose_erf's fused kernel took 3.9-5.0
        # ms where their sum was 5.1-6.9); a scalar strided loop waits for each load
        body = max(moves, comp) + model.overlap_loss * min(moves, comp) if work.staged else moves + comp
    elif strided:
        body = model.strided_seconds(_strided_accesses(graph, work, outputs, shape), nbytes, threads) + comp
    else:
        body = max(mem, comp) + model.overlap_loss * min(mem, comp)
    if shape.kind == "matmul":  # BLAS has its own threads: the kernel pays its call, not a fork
        body = model.matmul_call_us * 1e-6 + max(model.matmul_seconds(work.matmul_flops, work.matmul_dim, work.matmul_k), mem)
        if epilogue:  # a second call after BLAS's, over the result, forking if it runs in parallel
            fork = model.fork_us * 1e-6 if threads_ew > 1 else 0.0
            body += model.matmul_epilogue_us * 1e-6 + fork + max(comp, model.memory_seconds(written, threads_ew, written))
        seconds = model.overhead_seconds(1, cold) + body
    else:
        seconds = model.overhead_seconds(threads, cold) + body
    if work.op_points or work.table_points:  # the vector math functions' first call in the kernel
        seconds += model.math_call_us * 1e-6
    bound = "memory" if mem >= comp and not strided else "compute"
    return KernelCost(read, written, work.flops, seconds, bound, work.transcendentals, strided, comp, work.staged, cold)


def _strided_accesses(graph: Graph, work: Work, outputs: list[str], shape: GroupShape) -> int:
    """Elements a strided kernel loads or stores with a stride: every input and output over the
    whole iteration space, inputs once per sweep over the row (once if the kernel keeps its
    transcendental values in a row array, as the C backend's reuse_row_values does)."""
    points = _size(shape.space)
    sweeps = 1 if work.op_points or shape.kind != "reduce" else shape.sweeps
    loads = sum(graph.type_of(a).size for a in work.reads if graph.type_of(a).size == points)
    stores = sum(graph.type_of(o).size for o in outputs if graph.type_of(o).size == points)
    return loads * sweeps + stores


def group_cost(graph: Graph, members: Iterable[str], model: MachineModel, shape: GroupShape | None = None,
               cold: bool | None = None) -> KernelCost:
    """The predicted cost of running `members` as one kernel (`shape`: their analysis, if known;
    `cold`: see work_cost)."""
    mset = set(members)
    shape = shape or analyze(graph, mset)
    return work_cost(graph, group_work(graph, mset, shape), group_outputs(graph, mset), shape, model, cold)


def is_strided(graph: Graph, members: Iterable[str], shape: GroupShape) -> bool:
    """Whether the kernel's inner loop walks memory with a stride: a reduction that keeps a last axis
    shorter than a vector (it reduces down narrow columns), or a kernel that reads through a
    transpose of its last axis."""
    return _strided_loop(shape) or _reads_transposed(graph, members)


# a reduction that keeps the innermost axis runs that axis in its inner loop, contiguously, with a
# row of accumulators, when the axis is at least this long (loops/interchange.py MIN_VECTOR;
# tests/test_fusion_cost_model.py checks that the two agree); a shorter one walks the reduced
# axis with a stride
COLUMN_MIN_POINTS = 8


def _kept_last(shape: GroupShape) -> int:
    """The length of the innermost axis a reduce kernel keeps (0: not a reduction that keeps it)."""
    keeps = shape.kind == "reduce" and shape.space and (len(shape.space) - 1) not in shape.axes
    return shape.space[-1] if keeps else 0


def _column_form(shape: GroupShape) -> bool:
    """A reduce kernel the C backend runs with accumulator rows: each pass walks a tile of whole
    rows, too much to keep in a row array, so a value every pass reads is computed in each."""
    return _kept_last(shape) >= COLUMN_MIN_POINTS


def _column_passes(graph: Graph, name: str, mset: set[str], outputs: set[str]) -> int:
    """The passes of a column-form reduce kernel that compute member `name`: one per level of the
    reductions that read it, and the output pass if a value the kernel writes needs it."""
    levels: dict[str, int] = {}

    def level(n: str) -> int:  # reductions on the way to n, n included
        if n not in levels:
            node = graph.node(n)
            levels[n] = max((level(a) for a in node.args if a in mset), default=0) + (node.kind == "reduce")
        return levels[n]

    needs, stack = set(), [name]
    while stack:  # the members that read `name`, directly or through others
        for c in graph.consumers(stack.pop()):
            if c in mset and c not in needs:
                needs.add(c)
                stack.append(c)
    reduce_levels = {level(n) for n in needs if graph.node(n).kind == "reduce"}
    written = any(n in outputs and graph.node(n).kind != "reduce" for n in needs | {name})
    return max(1, len(reduce_levels) + written)


def _strided_loop(shape: GroupShape) -> bool:
    return 1 < _kept_last(shape) < COLUMN_MIN_POINTS


def _transposed_inputs(graph: Graph, members: set[str]) -> frozenset[str]:
    """The kernel's inputs that reach a transpose of the last axis through its members: the loop
    walks the transpose's output in order, so it reads those with a stride."""
    found, stack, seen = set(), [], set()
    for n in members:
        node = graph.node(n)
        if _moves_last_axis(node):
            stack += list(node.args)
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in members:
            stack += list(graph.node(v).args)
        elif graph.node(v).op != "const":
            found.add(v)
    return frozenset(found)


def _moves_last_axis(node) -> bool:
    """Whether `node` is a transpose that moves its last axis (with no perm it reverses them all)."""
    if node.op != "transpose":
        return False
    perm = node.attrs.get("perm")
    return perm is None or list(perm)[-1] != len(perm) - 1


def _reads_transposed(graph: Graph, members: Iterable[str]) -> bool:
    return any(_moves_last_axis(graph.node(n)) for n in members)


RUN_BYTES = 4096  # a loop that reads runs shorter than a page moves its bytes slower than a stream


def _reads_short_runs(graph: Graph, members: Iterable[str]) -> bool:
    """Whether a member is a transpose that keeps the last axis, shorter than RUN_BYTES, and moves
    another: its loop reads the input in runs of the last axis, one run per step of the moved axis."""
    for n in members:
        node = graph.node(n)
        if node.op != "transpose" or _moves_last_axis(node):
            continue
        perm = list(node.attrs["perm"])
        if perm != sorted(perm) and node.type.shape[-1] * node.type.dtype.itemsize < RUN_BYTES:
            return True
    return False


def _passes(graph: Graph, value: str, shape: GroupShape, model: MachineModel, column_passes: int = 1) -> int:
    """How often a reduce kernel reads `value` from memory: once if what a pass walks of it fits in
    cache. A row kernel's pass walks one row, and it makes `shape.sweeps` of them. A column-form
    kernel's pass walks its whole tile of rows (a core's share of the value), and `column_passes`
    of its passes read the value: a column sum with an elementwise output beside it (sibling_spaces'
    `erf(x) * 2` and `sum(x, axis=0)`) sums in one pass and writes in the next, reading x twice."""
    if shape.kind != "reduce":
        return 1
    vshape = graph.type_of(value).shape
    padded = (1,) * (len(shape.space) - len(vshape)) + tuple(vshape)
    if len(padded) != len(shape.space) or all(padded[a] == 1 for a in shape.axes):
        return 1  # constant along the row: one value per row
    if _column_form(shape):
        walked = graph.type_of(value).nbytes // model.threads_for(_size(shape.space))
        return 1 if walked <= model.cache_bytes else column_passes
    if shape.sweeps <= 1:
        return 1
    walked = _size(tuple(padded[a] for a in shape.axes)) * graph.type_of(value).dtype.itemsize
    return 1 if walked <= model.cache_bytes else shape.sweeps


def _rereads(graph: Graph, value: str, shape: GroupShape, model: MachineModel) -> int:
    """How often a kernel reads a broadcast input (smaller than its iteration space) from memory:
    once if it fits in cache, else once per repetition over the space (attention's [S, S] mask
    broadcast over the heads is read once per head)."""
    t = graph.type_of(value)
    points = _size(shape.space)
    if shape.kind == "matmul" or t.size >= points or t.nbytes <= model.cache_bytes or t.size == 0:
        return 1
    return points // t.size


def _op_work(graph: Graph, name: str, shape: GroupShape, members: frozenset[str]) -> tuple[int, int, bool]:
    """(flops, of which transcendental) of one member, at every point it is computed; and whether
    a kernel with more of its producers would compute it into a smaller table."""
    node = graph.node(name)
    if node.op == "matmul":  # the row's flops are per multiply-add of the inner dimension
        a = graph.type_of(node.args[0]).shape
        return node.opdef.flops * a[-1] * node.type.size, 0, False
    if node.kind == "reduce":
        return graph.type_of(node.args[0]).size, 0, False
    if node.opdef.flops == 0:
        return 0, 0, False
    shrinks = False
    if shape.kind == "reduce":
        points = node.type.size if name in shape.row else _size(shape.space)
    elif shape.kind == "elementwise":
        points = _size(shape.space)  # recomputed at every point of the iteration space
        if tabulated(graph, name, points):
            points = node.type.size  # computed once before the loops (the C backend's tabulate_invariants)
        elif node.opdef.transcendental and node.type.size > TABLE_ELEMENTS:
            # a large value that varies along few axes, when the kernel makes what it varies along
            # (rotary's inverse frequencies from an iota; not when it loads them from memory)
            table = table_size(graph, name, shape.space, members)
            if table <= TABLE_ELEMENTS and points >= 2 * table:
                points = table
            shrinks = table_size(graph, name, shape.space) < min(table, points)
    else:
        points = node.type.size
    flops = node.opdef.flops * points
    return flops, flops if node.opdef.transcendental else 0, shrinks


def in_plan(costs: list[KernelCost], model: MachineModel) -> list[KernelCost]:
    """The costs of a plan's kernels, given in the order the plan runs them, with each one's cold
    call judged from the kernel that runs just before it (the first kernel's: the last one, of the
    run before) instead of guessed from its inputs (program.starts_cold): a kernel that follows one
    that moved more than `fit_bytes` pays `cold_call_us`, and no other does. rmsnorm's `rsqrt` of
    the rows' means, a kernel of its own, took 12-13 us after the kernel that reduced the rows and
    5-7 us after the small kernel that added epsilon to the means (quiet, 2026-12-01)."""
    out = []
    for i, c in enumerate(costs):
        cold = costs[i - 1].nbytes > model.fit_bytes
        if cold != c.cold:
            c = replace(c, seconds=c.seconds + (cold - c.cold) * model.cold_call_us * 1e-6, cold=cold)
        out.append(c)
    return out


def plan_kernel_costs(graph: Graph, groups: Iterable[Iterable[str]], model: MachineModel) -> list[tuple[list[str], KernelCost]]:
    """(members, cost) of each kernel of a whole plan (`groups`: member lists), in the order the plan
    runs them, costed for the plan's own arrays (program.plan_bytes) and in sequence (in_plan)."""
    groups = [list(m) for m in groups]
    model = model.for_program(plan_bytes(graph, groups))
    order = {n: i for i, n in enumerate(graph.topo_order())}
    groups = [groups[i] for i in run_order(graph, groups, order)]
    costs = [group_cost(graph, members, model, analyze(graph, members, order)) for members in groups]
    return list(zip(groups, in_plan(costs, model)))


def plan_cost(graph: Graph, groups: Iterable[Iterable[str]], model: MachineModel) -> tuple[int, float]:
    """Total bytes moved and predicted seconds of a list of groups (member lists): a whole plan,
    costed for its own arrays and in the order it runs its kernels (plan_kernel_costs)."""
    costs = [c for _, c in plan_kernel_costs(graph, groups, model)]
    return sum(c.nbytes for c in costs), math.fsum(c.seconds for c in costs)


def risk_seconds(fused: KernelCost, apart: list[KernelCost], model: MachineModel) -> float:
    """The gain a merge must beat (the negative-optimization guard): nothing if it only removes
    memory traffic and kernel starts; `margin` times the arithmetic it adds if it recomputes values;
    and `margin` times the time of the kernels it moves into a strided loop that runs scalar (those
    that were not strided apart), where the model errs most. A staged loop (codegen/c_stage.py)
    strides in its copy only, and its arithmetic runs as in a contiguous loop: the ordinary rules."""
    if fused.strided and not fused.staged and not all(c.strided for c in apart):
        return model.margin * sum(c.seconds for c in apart if not c.strided)
    extra = fused.compute_s - sum(c.compute_s for c in apart)
    if fused.flops <= sum(c.flops for c in apart) or extra <= 0:
        return 0.0
    return model.margin * extra
