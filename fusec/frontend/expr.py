"""The one transformer for the expressions .fg graphs and rule files share (grammar: expr.lark).

It reads literals, names, operators, calls and lists, and checks what every reader of an expression
must refuse (an integer too long for any dtype, an attribute given twice, an operand after an
attribute, indexing). What it builds is up to the language: a subclass says how to make a literal,
a name, a list and a call, so .fg graphs get their AST (fg_ast.py) and rule files theirs
(rewrite/rule.py) from the same reading.
"""

from __future__ import annotations

import ast as _pyast
from typing import Any

from lark import Token, Transformer, v_args

from fusec.frontend.syntax import Located, pos_of
from fusec.ir.ops import BINARY_INFIX

# names that are literals wherever an expression is read; no value, input or dimension may take them
NAMED_LITERALS: dict[str, bool | float] = {"true": True, "false": False, "inf": float("inf"), "nan": float("nan")}
MAX_INT_DIGITS = 64  # an integer literal longer than this fits no dtype


def parse_int(tok: Token) -> int:
    """An INT token's value. Python refuses int() past 4300 digits with a ValueError; refuse any
    integer far beyond every dtype's range first, with a located message."""
    if len(tok) > MAX_INT_DIGITS:
        raise Located(f"integer {str(tok)[:12]}... has {len(tok)} digits, too large for any dtype", pos_of(tok))
    return int(tok)


def refuse_literal_name(name: str, what: str, pos: tuple[int, int]) -> None:
    """`inf`, `nan`, `true` and `false` always read as literals, so nothing may be named after them."""
    if name in NAMED_LITERALS:
        raise Located(f"'{name}' is a literal and cannot name {what}; choose another name", pos)


@v_args(inline=True)
class ExprTransformer(Transformer):
    """Parse tree -> syntax nodes. Subclasses define literal, reference, listing and calling."""

    _literal_type: type = type(None)  # the class `literal` returns

    # -- what a language builds (subclasses)

    def literal(self, value: Any, pos: tuple[int, int]) -> Any:
        raise NotImplementedError

    def reference(self, name: str, pos: tuple[int, int]) -> Any:
        raise NotImplementedError

    def listing(self, items: tuple, pos: tuple[int, int]) -> Any:
        raise NotImplementedError

    def calling(self, fn: str, args: list, kwargs: list[tuple[str, Any, tuple[int, int]]], pos: tuple[int, int]) -> Any:
        raise NotImplementedError

    # -- the shared reading

    def integer(self, tok):
        return self.literal(parse_int(tok), pos_of(tok))

    def floating(self, tok):
        value = float(tok)
        if value == float("inf"):
            raise Located(f"literal {tok} is too large even for f64 (write inf if you mean it)", pos_of(tok))
        return self.literal(value, pos_of(tok))

    def signed_number(self, *parts):
        if len(parts) == 2:
            return self.literal(-parts[1].value, pos_of(parts[0]))
        return parts[0]

    def string(self, tok):
        return self.literal(_pyast.literal_eval(str(tok)), pos_of(tok))

    def name(self, tok):
        if str(tok) in NAMED_LITERALS:
            return self.literal(NAMED_LITERALS[str(tok)], pos_of(tok))
        return self.reference(str(tok), pos_of(tok))

    @v_args(inline=False, meta=True)
    def list(self, meta, items):
        return self.listing(tuple(items), (meta.line, meta.column) if not meta.empty else (0, 0))

    def _binary(self, left, op_tok, right):
        return self.calling(BINARY_INFIX[str(op_tok)], [left, right], [], pos_of(op_tok))

    compare_op = add_op = mul_op = pow_op = _binary

    def negate(self, op_tok, operand):
        if self.foldable(operand):
            return self.literal(-operand.value, pos_of(op_tok))  # -2.0 and -inf are literals, not neg nodes
        return self.calling("neg", [operand], [], pos_of(op_tok))

    def foldable(self, node) -> bool:
        """Whether `-node` is a negative literal rather than a neg node: a number literal."""
        value = getattr(node, "value", None)
        return isinstance(node, self._literal_type) and isinstance(value, (int, float)) and not isinstance(value, bool)

    def keyword(self, name, value):
        return _Keyword(str(name), value, pos_of(name))

    def call(self, name, *args):
        positional, kwargs = [], []
        for a in args:
            if isinstance(a, _Keyword):
                if any(k == a.key for k, _, _ in kwargs):
                    raise Located(f"attribute '{a.key}' given twice", a.pos)
                kwargs.append((a.key, a.value, a.pos))
            else:
                if kwargs:
                    raise Located("positional operands must come before attributes", pos_of(a))
                positional.append(a)
        return self.calling(str(name), positional, kwargs, pos_of(name))

    @v_args(inline=False, meta=True)
    def subscript(self, meta, children):
        target, *indices = children
        shown = target.name if hasattr(target, "name") and isinstance(target.name, str) else "x"
        first = indices[0] if indices else None
        if isinstance(first, _Slice):
            start = first.start if first.start is not None else 0
            stop = f", stop={first.stop}" if first.stop is not None else ""
            example = f"slice({shown}, axis=0, start={start}{stop})"
        else:
            k = getattr(first, "value", 0)
            k = k if isinstance(k, int) and not isinstance(k, bool) else 0
            example = f"slice({shown}, axis=0, start={k}, stop={k + 1})"
        raise Located(f"indexing with [...] is not part of the language; write {example} (and squeeze(..., axis=0) to drop the axis)", (meta.line, meta.column))

    @v_args(inline=False)
    def slice_index(self, children):
        bounds: list = [None]
        for c in children:
            if isinstance(c, Token) and c.type == "COLON":
                bounds.append(None)
            else:
                bounds[-1] = getattr(c, "value", None)
        return _Slice(bounds[0], bounds[1])


class _Keyword:
    def __init__(self, key: str, value: Any, pos: tuple[int, int]):
        self.key, self.value, self.pos = key, value, pos


class _Slice:
    def __init__(self, start, stop):
        self.start, self.stop = start, stop
