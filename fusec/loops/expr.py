"""Value expressions of the loop-nest IR: typed scalars (constants, loads, temporaries, ops of the op
table, iota indices, concat's piecewise selection), their one-line text, and the walks over them.

Separate from the statements (fusec/loops/ir.py, which also spells out their semantics) because every
pass that looks inside a stored value (hoisting, common subexpressions, the cost model) needs only
these.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fusec.ir.dtypes import BOOL, DType
from fusec.ir.ops import OPS
from fusec.loops.index import Index


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


def calls_transcendental(e: Expr, dtype: DType | None = None) -> bool:
    """Whether `e` computes a transcendental op (exp, erf, tanh, ...: its row in the op table says
    so), of `dtype` if given."""
    return any(isinstance(s, Op) and OPS[s.op].transcendental and dtype in (None, s.dtype) for s in walk_expr(e))


def expr_refs(e: Expr) -> set[str]:
    return {s.name for s in walk_expr(e) if isinstance(s, Ref)}
