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

Reductions
    `AccInit(name, op, dtype)` declares an accumulator set to the op's identity (sum 0, prod 1,
    max -inf / the type's minimum / false, min +inf / maximum / true); `AccUpdate(name, op, value)`
    folds one value into it. A reduction loop is a loop whose body updates an accumulator declared
    outside it; such a loop must not be made parallel.

Matmul
    A matmul group's nest is also written out in scalar form (a reduction over k), and
    `LoopNest.matmul` names its parts so a backend may call BLAS on a tile instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from fusec.ir.dtypes import BOOL, DType
from fusec.ir.ops import OPS

# ----------------------------------------------------------------------------------------------
# index expressions


@dataclass(frozen=True)
class Div:
    """floor(arg / divisor) of a nonnegative index by a positive constant."""

    arg: Index
    divisor: int

    def __str__(self) -> str:
        return f"({self.arg} / {self.divisor})"


@dataclass(frozen=True)
class Mod:
    """arg mod divisor, of a nonnegative index by a positive constant."""

    arg: Index
    divisor: int

    def __str__(self) -> str:
        return f"({self.arg} % {self.divisor})"


@dataclass(frozen=True)
class Min:
    """The smaller of two indices (only in loop extents: a tail loop's trip count)."""

    a: Index
    b: Index

    def __str__(self) -> str:
        return f"min({self.a}, {self.b})"


Atom = str | Div | Mod | Min


def _atom_key(a: Atom) -> tuple[int, str]:
    return (0, a) if isinstance(a, str) else (1, str(a))


@dataclass(frozen=True)
class Index:
    """sum(coef * atom for atom, coef in terms) + const; terms sorted, no zero coefficients."""

    terms: tuple[tuple[Atom, int], ...] = ()
    const: int = 0

    # -- construction
    @staticmethod
    def of(x: int | str | Index) -> Index:
        if isinstance(x, Index):
            return x
        if isinstance(x, str):
            return Index(((x, 1),), 0)
        return Index((), int(x))

    @staticmethod
    def _make(coefs: dict, const: int) -> Index:
        terms = tuple(sorted(((a, c) for a, c in coefs.items() if c != 0), key=lambda t: _atom_key(t[0])))
        return Index(terms, int(const))

    def __add__(self, other: int | str | Index) -> Index:
        other = Index.of(other)
        coefs = dict(self.terms)
        for a, c in other.terms:
            coefs[a] = coefs.get(a, 0) + c
        return Index._make(coefs, self.const + other.const)

    __radd__ = __add__

    def __sub__(self, other: int | str | Index) -> Index:
        return self + Index.of(other) * -1

    def __mul__(self, k: int) -> Index:
        return Index._make({a: c * k for a, c in self.terms}, self.const * k)

    __rmul__ = __mul__

    # -- queries
    @property
    def is_const(self) -> bool:
        return not self.terms

    @property
    def is_affine(self) -> bool:
        """True if every atom is a plain loop variable."""
        return all(isinstance(a, str) for a, _ in self.terms)

    def coef(self, var: str) -> int:
        for a, c in self.terms:
            if a == var:
                return c
        return 0

    def variables(self) -> set[str]:
        out: set[str] = set()
        for a, _ in self.terms:
            if isinstance(a, str):
                out.add(a)
            elif isinstance(a, Min):
                out |= a.a.variables() | a.b.variables()
            else:
                out |= a.arg.variables()
        return out

    def __str__(self) -> str:
        parts = []
        for a, c in self.terms:
            s = str(a)
            if c == 1:
                parts.append(s)
            elif c == -1:
                parts.append("-" + s)
            else:
                parts.append(f"{s}*{c}")
        if self.const or not parts:
            parts.append(str(self.const))
        text = " + ".join(parts)
        return text.replace("+ -", "- ")


def floordiv(x: Index, d: int, ranges: dict[str, int]) -> Index:
    """x // d for a nonnegative x, simplified when the remainder part provably stays below d."""
    if d == 1:
        return x
    q, r = _split_by(x, d)
    lo, hi = bounds(r, ranges)
    if 0 <= lo and hi < d:
        return q
    lo, hi = bounds(x, ranges)
    if hi < d and lo >= 0:
        return Index()
    return Index(((Div(x, d), 1),), 0)


def mod(x: Index, d: int, ranges: dict[str, int]) -> Index:
    """x % d for a nonnegative x, simplified where the range allows."""
    if d == 1:
        return Index()
    _, r = _split_by(x, d)
    lo, hi = bounds(r, ranges)
    if 0 <= lo and hi < d:
        return r
    lo, hi = bounds(x, ranges)
    if 0 <= lo and hi < d:
        return x
    return Index(((Mod(x, d), 1),), 0)


def _split_by(x: Index, d: int) -> tuple[Index, Index]:
    """x = q*d + r where q collects the terms divisible by d (q returned already divided by d)."""
    qc, rc = divmod(x.const, d)
    q = {a: c // d for a, c in x.terms if c % d == 0}
    r = {a: c for a, c in x.terms if c % d != 0}
    return Index._make(q, qc), Index._make(r, rc)


def bounds(x: Index, ranges: dict[str, int]) -> tuple[int, int]:
    """Inclusive (low, high) of x when each loop variable v runs over [0, ranges[v])."""
    lo = hi = x.const
    for a, c in x.terms:
        alo, ahi = _atom_bounds(a, ranges)
        lo += min(c * alo, c * ahi)
        hi += max(c * alo, c * ahi)
    return lo, hi


def _atom_bounds(a: Atom, ranges: dict[str, int]) -> tuple[int, int]:
    if isinstance(a, str):
        return 0, max(ranges.get(a, 1) - 1, 0)
    if isinstance(a, Div):
        lo, hi = bounds(a.arg, ranges)
        return lo // a.divisor, hi // a.divisor
    if isinstance(a, Mod):
        return 0, a.divisor - 1
    alo, ahi = bounds(a.a, ranges)
    blo, bhi = bounds(a.b, ranges)
    return min(alo, blo), min(ahi, bhi)


def substitute(x: Index, env: dict[str, Index]) -> Index:
    """Replace loop variables by index expressions."""
    out = Index((), x.const)
    for a, c in x.terms:
        if isinstance(a, str):
            out = out + Index.of(env.get(a, Index.of(a))) * c
        elif isinstance(a, Div):
            out = out + Index(((Div(substitute(a.arg, env), a.divisor), 1),)) * c
        elif isinstance(a, Mod):
            out = out + Index(((Mod(substitute(a.arg, env), a.divisor), 1),)) * c
        else:
            out = out + Index(((Min(substitute(a.a, env), substitute(a.b, env)), 1),)) * c
    return out


def evaluate_index(x: Index, env: dict[str, Any]) -> Any:
    """The value of x with loop variables bound to ints or NumPy integer arrays."""
    total: Any = x.const
    for a, c in x.terms:
        if isinstance(a, str):
            v = env[a]
        elif isinstance(a, Div):
            v = evaluate_index(a.arg, env) // a.divisor
        elif isinstance(a, Mod):
            v = evaluate_index(a.arg, env) % a.divisor
        else:
            v = np.minimum(evaluate_index(a.a, env), evaluate_index(a.b, env))
        total = total + c * v
    return total


# ----------------------------------------------------------------------------------------------
# value expressions


@dataclass(frozen=True)
class Const:
    value: bool | int | float
    dtype: DType

    def __str__(self) -> str:
        v = self.value
        if isinstance(v, bool) or self.dtype == BOOL:
            return "true" if v else "false"
        if isinstance(v, float):
            if v != v:
                return "nan"
            if v in (float("inf"), float("-inf")):
                return "inf" if v > 0 else "-inf"
            return repr(v)
        return str(v)


@dataclass(frozen=True)
class Load:
    buffer: str
    index: Index
    dtype: DType

    def __str__(self) -> str:
        return f"{self.buffer}[{self.index}]"


@dataclass(frozen=True)
class Ref:
    """The current value of a scalar temporary (Let) or an accumulator (AccInit)."""

    name: str
    dtype: DType

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Op:
    """A primitive op of the op table applied to scalar operands; attrs as sorted (name, value) pairs."""

    op: str
    args: tuple[Expr, ...]
    dtype: DType
    attrs: tuple[tuple[str, Any], ...] = ()

    def attr(self, name: str, default: Any = None) -> Any:
        return dict(self.attrs).get(name, default)


@dataclass(frozen=True)
class IndexValue:
    """An index expression used as a value (iota): the index converted to dtype."""

    index: Index
    dtype: DType

    def __str__(self) -> str:
        return f"{self.dtype.name}({self.index})"


@dataclass(frozen=True)
class Piecewise:
    """pieces[k] where bounds[k] <= index < bounds[k+1] (concat). Only the chosen piece is evaluated:
    the others may address elements outside their buffers."""

    index: Index
    bounds: tuple[int, ...]  # len(pieces) + 1 ascending bounds, from 0 to the axis length
    pieces: tuple[Expr, ...]
    dtype: DType


Expr = Const | Load | Ref | Op | IndexValue | Piecewise

def infix(op: str, arity: int) -> str | None:
    """The op's operator symbol in .fg text (its row's `infix`), for a binary op; None for a call."""
    row = OPS.get(op)
    return row.infix if row is not None and row.arity == 2 == arity else None


def expr_str(e: Expr, parent_infix: bool = False) -> str:
    """Readable one-line form: infix for the ops the .fg language writes infix, calls for the rest."""
    if isinstance(e, Op):
        symbol = infix(e.op, len(e.args))
        if symbol is not None:
            text = f"{expr_str(e.args[0], True)} {symbol} {expr_str(e.args[1], True)}"
            return f"({text})" if parent_infix else text
        if e.op == "neg":
            return f"-{expr_str(e.args[0], True)}"
        if e.op == "cast":
            return f"{e.dtype.name}({expr_str(e.args[0])})"
        extra = "".join(f", {k}={v!r}" for k, v in e.attrs)
        return f"{e.op}({', '.join(expr_str(a) for a in e.args)}{extra})"
    if isinstance(e, Piecewise):
        parts = ", ".join(f"[{lo}, {hi}): {expr_str(p)}" for lo, hi, p in zip(e.bounds, e.bounds[1:], e.pieces))
        return f"select({e.index} in {parts})"
    return str(e)


def walk_expr(e: Expr) -> Iterator[Expr]:
    """e and all its subexpressions, operands before the expressions that use them."""
    if isinstance(e, Op):
        for a in e.args:
            yield from walk_expr(a)
    elif isinstance(e, Piecewise):
        for p in e.pieces:
            yield from walk_expr(p)
    yield e


def expr_variables(e: Expr) -> set[str]:
    """Loop variables an expression reads (through loads, iota and concat indices)."""
    out: set[str] = set()
    for s in walk_expr(e):
        if isinstance(s, (Load, IndexValue, Piecewise)):
            out |= s.index.variables()
    return out


def expr_refs(e: Expr) -> set[str]:
    return {s.name for s in walk_expr(e) if isinstance(s, Ref)}


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


Stmt = Loop | LetIndex | Let | Store | AccInit | AccUpdate


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
