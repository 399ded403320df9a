"""The tiny AST of .fg expressions (`Lit`, `Ref`, `ListExpr`, `Call`), each with its source position,
and the transformer that builds it: the shared expression reading of expr.py plus typed literals
(`f64(0.5)`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fusec.frontend.expr import ExprTransformer
from fusec.ir.dtypes import DTYPES


@dataclass
class Lit:
    value: bool | int | float | str
    pos: tuple[int, int]
    dtype: str | None = None  # set for typed literals such as f64(0.5)


@dataclass
class Ref:
    """A name: a value in an expression; a dimension or a dtype in an attribute."""

    name: str
    pos: tuple[int, int]


@dataclass
class ListExpr:
    items: tuple
    pos: tuple[int, int]


@dataclass
class Call:
    op: str
    args: list
    kwargs: dict[str, Any]
    pos: tuple[int, int]
    kwarg_pos: dict[str, tuple[int, int]] = field(default_factory=dict)


class ToAst(ExprTransformer):
    _literal_type = Lit

    def literal(self, value, pos):
        return Lit(value, pos)

    def reference(self, name, pos):
        return Ref(name, pos)

    def listing(self, items, pos):
        return ListExpr(items, pos)

    def calling(self, fn, args, kwargs, pos):
        if fn in DTYPES and not kwargs and len(args) == 1 and isinstance(args[0], Lit) and not isinstance(args[0].value, str):
            return Lit(args[0].value, pos, dtype=fn)  # a typed literal: f64(0.5)
        return Call(fn, list(args), {k: v for k, v, _ in kwargs}, pos, {k: p for k, _, p in kwargs})

    def foldable(self, node) -> bool:
        return super().foldable(node) and node.dtype is None
