"""Dimension arithmetic as written in .fg text: `D / 2`, `H * Dh`, `(S - 1) * 2`.

A written dimension is a name, an integer or a `DimExpr` (an operator and two written dimensions).
The frontend builds them and reports mistakes at their source location; the graph keeps them next to
the concrete sizes (Graph.input_dims, Node.written_attrs) so the printer writes `f32[N, D / 2]` back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

Written = Union["DimExpr", str, int]
DIM_OPS = ("+", "-", "*", "/")
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


@dataclass(frozen=True)
class DimExpr:
    op: str  # one of DIM_OPS
    left: Written
    right: Written

    def __str__(self) -> str:
        return dim_text(self)


def apply(op: str, left: int, right: int) -> int | None:
    """`left op right` over dimensions; None when a division is not exact or the result is negative."""
    if op == "/":
        if right == 0 or left % right:
            return None
        return left // right
    value = {"+": left + right, "-": left - right, "*": left * right}[op]
    return value if value >= 0 else None


def dim_value(w: Written, dims: dict[str, int]) -> int | None:
    """The size `w` stands for under `dims`; None if it names an unknown dimension or is not a size."""
    if isinstance(w, int):
        return w
    if isinstance(w, str):
        return dims.get(w)
    left, right = dim_value(w.left, dims), dim_value(w.right, dims)
    if left is None or right is None:
        return None
    return apply(w.op, left, right)


def dim_text(w: Written, prec: int = 0) -> str:
    """`w` as .fg text, with the fewest parentheses (operators are left-associative)."""
    if not isinstance(w, DimExpr):
        return str(w)
    p = _PREC[w.op]
    text = f"{dim_text(w.left, p)} {w.op} {dim_text(w.right, p + 1)}"
    return f"({text})" if p < prec else text
