"""The loop-nest IR: what one fused group becomes before code generation.

A `LoopNest` is a small scalar program, in the spirit of Halide's lowered statements:

    parallel for i0.o in [0, 1024):
      for i0.i in [0, min(16384, 16777216 - i0.o*16384)):
        i0 = i0.o*16384 + i0.i
        y[i0] = (x[i0]*2 + 1)*x[i0] - 3

Both backends generate code from exactly this IR, so its meaning is spelled out here.

Buffers
    Every buffer is a C-contiguous (row-major) array. `Buffer.name` is a valid C and Python
    identifier; `Buffer.value` is the graph value it holds. Role `in` is read, `out` is written,
    `inout` is read and then written at the same element (a donated input, updated in place).
    The kernel's parameters are `LoopNest.buffers`, in that order.

Indices
    Loads and stores address a buffer by one *flat* element offset (row-major). An `Index` is an
    integer affine form `sum(coef * atom) + const`; an atom is a loop variable or, for reshapes that
    do not line up with the iteration space, `Div(index, d)` / `Mod(index, d)` of a nonnegative
    index by a positive constant (so C's `/` and `%` agree with Python's `//` and `%`).

Loops
    `Loop(var, extent, body, kind)` runs `var` over `[0, extent)`; the extent is an `Index` so a
    split's tail loop can say `min(16, n - 16*i.o)` (see `Min`). The simplifier (simplify.py) may
    give a loop a `start`: it then runs over `[start, extent)`, so `extent` is the end bound, as in
    `for i in [i_o*16, min(i_o*16 + 16, n))` (only the C backend reads such loops). Kinds:
      serial   - an ordinary loop;
      parallel - iterations are independent and may run on different threads;
      vector   - the innermost loop, to be vectorised (C: `#pragma omp simd`);
      unrolled - to be unrolled by the compiler.
    `LetIndex(var, value)` names an index computed from loop variables (a split's original variable).

Values
    Expressions are typed scalars (`dtype` is a fusec DType). `Op(op, args)` applies a primitive op
    of the op table (`fusec.ir.ops`); lowering casts the operands of arithmetic and comparison ops to
    one common dtype, so a backend never has to promote. Semantics follow NumPy (the interpreter):
    NaN and inf are computed, not trapped; `maximum`/`minimum` and the `max`/`min` reductions
    propagate NaN; integer `div` does not occur (`div` always has float operands after lowering);
    integer `pow` truncates toward zero as the interpreter does.
    `Let(name, value)` binds a scalar temporary; `Ref(name)` reads a temporary or an accumulator.

Local arrays
    `LocalArray(name, dtype, size)` declares a small array local to the block it is in (C: on the
    stack of the thread running it; its contents undefined until stored), read and written with
    ordinary Load/Store: a column reduction's accumulator row (interchange.py), a row of values
    computed once (the C backend's passes).

Reductions
    `AccInit(name, op, dtype)` declares an accumulator set to the op's identity (sum 0, prod 1,
    max -inf / the type's minimum / false, min +inf / maximum / true); `AccUpdate(name, op, value)`
    folds one value into it. A reduction loop is a loop whose body updates an accumulator declared
    outside it; such a loop must not be made parallel.

Matmul
    A matmul group's nest is also written out in scalar form (a reduction over k), and
    `LoopNest.matmul` names its parts so a backend may call BLAS on a tile instead.

The IR is in three modules; import any of its names from here:

    index.py  Index and its atoms (Div, Mod, Min); floordiv, mod, fold_digits, bounds, substitute, evaluate_index
    expr.py   value expressions (Const, Load, Ref, Op, IndexValue, Piecewise) and walks over them
    ir.py     (this module) statements, buffers, the LoopNest, and walks over statements
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from fusec.ir.dtypes import BOOL, DType
from fusec.loops.expr import (
    Const,
    Expr,
    IndexValue,
    Load,
    Op,
    Piecewise,
    Ref,
    calls_transcendental,
    expr_refs,
    expr_str,
    expr_variables,
    infix,
    walk_expr,
)
from fusec.loops.index import Atom, Div, Index, Min, Mod, bounds, evaluate_index, floordiv, fold_digits, mod, substitute

# ----------------------------------------------------------------------------------------------
# statements

LOOP_KINDS = ("serial", "parallel", "vector", "unrolled")
REDUCE_OPS = ("sum", "prod", "max", "min")


@dataclass(frozen=True)
class SplitInfo:
    """Marks a loop made by `split`: the original variable, the factor, and which half this is."""

    of: str
    factor: int
    part: str  # "outer" or "inner"


@dataclass(frozen=True)
class Loop:
    var: str
    extent: Index
    body: tuple[Stmt, ...]
    kind: str = "serial"
    split: SplitInfo | None = None
    start: Index = Index()  # the first value of var; `extent` is then the end bound

    @property
    def trips(self) -> Index:
        """The number of iterations (end bound minus start)."""
        return self.extent - self.start


@dataclass(frozen=True)
class LetIndex:
    var: str
    value: Index


@dataclass(frozen=True)
class Let:
    name: str
    value: Expr


@dataclass(frozen=True)
class Store:
    buffer: str
    index: Index
    value: Expr


@dataclass(frozen=True)
class AccInit:
    name: str
    op: str  # one of REDUCE_OPS
    dtype: DType

    @property
    def identity(self) -> bool | int | float:
        return identity(self.op, self.dtype)


@dataclass(frozen=True)
class AccUpdate:
    name: str
    op: str
    value: Expr


@dataclass(frozen=True)
class LocalArray:
    name: str
    dtype: DType
    size: int
    comment: str = ""


Stmt = Loop | LetIndex | Let | Store | AccInit | AccUpdate | LocalArray


def identity(op: str, dtype: DType) -> bool | int | float:
    """The value a reduction starts from."""
    if op == "sum":
        return False if dtype == BOOL else (0.0 if dtype.is_float else 0)
    if op == "prod":
        return True if dtype == BOOL else (1.0 if dtype.is_float else 1)
    if dtype == BOOL:
        return op == "min"
    if dtype.is_float:
        return float("-inf") if op == "max" else float("inf")
    info = np.iinfo(dtype.numpy)
    return int(info.min) if op == "max" else int(info.max)


# ----------------------------------------------------------------------------------------------
# the nest


@dataclass(frozen=True)
class Buffer:
    name: str  # identifier used in the nest and in generated code
    value: str  # the graph value it holds
    dtype: DType
    shape: tuple[int, ...]
    role: str  # "in", "out" or "inout"
    out_value: str = ""  # for an inout buffer: the output value written over the input `value`

    @property
    def written_value(self) -> str:
        """The graph value this buffer holds after the kernel ran."""
        return self.out_value or self.value

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


@dataclass(frozen=True)
class Dim:
    """One axis of the iteration space: its loop variable, its extent, and whether it is reduced."""

    var: str
    extent: int
    reduced: bool = False


@dataclass(frozen=True)
class MatmulInfo:
    """The parts of a matmul nest, for backends that call BLAS on tiles.

    The scalar form is `acc = sum over k of a * b`; `a` and `b` are the two loads (over the
    variables batch + (i, k) and batch + (k, j)). After the k loop the nest reads `acc` as the
    matmul's value. i or j has extent 1 when an operand is a vector.
    """

    acc: str
    a: Load
    b: Load
    batch: tuple[str, ...]
    i: str
    j: str
    k: str


@dataclass(frozen=True)
class LoopNest:
    name: str  # identifier: the kernel's name
    kind: str  # the group kind: elementwise, reduce, matmul or layout
    buffers: tuple[Buffer, ...]  # the kernel's parameters, in call order
    dims: tuple[Dim, ...]  # the iteration space before scheduling (kept axes, then reduced ones)
    body: tuple[Stmt, ...]
    matmul: MatmulInfo | None = None
    comment: str = ""  # what the group computes, for generated source
    meta: dict = field(default_factory=dict, compare=False)  # free-form notes (e.g. collapsed dims)

    def buffer(self, name: str) -> Buffer:
        for b in self.buffers:
            if b.name == name:
                return b
        raise KeyError(name)

    @property
    def inputs(self) -> list[Buffer]:
        return [b for b in self.buffers if b.role in ("in", "inout")]

    @property
    def outputs(self) -> list[Buffer]:
        return [b for b in self.buffers if b.role in ("out", "inout")]

    def with_body(self, body: tuple[Stmt, ...]) -> LoopNest:
        return replace(self, body=tuple(body))


def walk(stmts: tuple[Stmt, ...]) -> Iterator[Stmt]:
    """Every statement, depth first, in program order."""
    for s in stmts:
        yield s
        if isinstance(s, Loop):
            yield from walk(s.body)


def loops(stmts: tuple[Stmt, ...]) -> list[Loop]:
    return [s for s in walk(stmts) if isinstance(s, Loop)]


def find_loop(stmts: tuple[Stmt, ...], var: str) -> Loop | None:
    for lp in loops(stmts):
        if lp.var == var:
            return lp
    return None


def stmt_exprs(s: Stmt) -> list[Expr]:
    if isinstance(s, (Let, Store, AccUpdate)):
        return [s.value]
    return []


# the IR's names, wherever they are defined: passes and backends import them from here
__all__ = [
    "AccInit", "AccUpdate", "Atom", "Buffer", "Const", "Dim", "Div", "Expr", "Index", "IndexValue", "LOOP_KINDS",
    "Let", "LetIndex", "Load", "LocalArray", "Loop", "LoopNest", "MatmulInfo", "Min", "Mod", "Op", "Piecewise", "REDUCE_OPS", "Ref",
    "SplitInfo", "Stmt", "Store", "bounds", "calls_transcendental", "evaluate_index", "expr_refs", "expr_str", "expr_variables", "find_loop",
    "floordiv", "fold_digits", "identity", "infix", "loops", "mod", "stmt_exprs", "substitute", "walk", "walk_expr",
]  # fmt: skip
