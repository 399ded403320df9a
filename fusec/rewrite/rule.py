"""What a rule is, as data: a pattern, a replacement, an optional guard, a class.

The parser (parse.py) turns rule text into these objects; the matcher (match.py) reads patterns,
apply.py builds replacements, guards.py evaluates guards and attribute expressions, and the
verifier (verify.py) checks that each rule keeps the promise of its class.

Expressions (`Expr`) are the raw syntax shared by patterns, replacements and guards. A pattern is
compiled into `P*` nodes, a replacement into `R*` nodes, so the matcher and builder never have to
reinterpret syntax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fusec.errors import SourceLocation

CLASSES = ("exact", "approx", "unsafe")

# ------------------------------------------------------------------------------------------ syntax


@dataclass(frozen=True)
class Lit:
    """A literal: a number, true/false, a string, a dtype or a list of literals."""

    value: Any
    pos: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Var:
    name: str
    pos: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class ConstVar:
    """`$c`: a variable that only matches a constant node."""

    name: str
    pos: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class ListExpr:
    items: tuple
    pos: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Call:
    """An op (in a pattern or replacement) or a function (in a guard). Infix operators become Calls."""

    fn: str
    args: tuple
    kwargs: tuple[tuple[str, Any], ...] = ()
    pos: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class BoolOp:
    """and / or / not in a guard."""

    op: str
    args: tuple
    pos: tuple[int, int] = (0, 0)


Expr = Lit | Var | ConstVar | ListExpr | Call | BoolOp

# ------------------------------------------------------------------------------------------ patterns


@dataclass(frozen=True)
class PVar:
    """Matches any value (a tensor variable) and binds it."""

    name: str


@dataclass(frozen=True)
class PConst:
    """Matches a constant node and binds it ($c)."""

    name: str


@dataclass(frozen=True)
class PLit:
    """Matches a constant node holding exactly this value (the sign of zero counts; nan matches nan)."""

    value: bool | int | float


@dataclass(frozen=True)
class PNamed:
    """A sub-pattern named with `with`: the first occurrence matches and binds, later ones must be the same node."""

    name: str
    pattern: Any


@dataclass(frozen=True)
class AttrLit:
    value: Any


@dataclass(frozen=True)
class AttrVar:
    name: str


@dataclass(frozen=True)
class POp:
    """Matches a node of this op whose operands match `args`.

    attrs maps every attribute of the op to an AttrLit or AttrVar; attributes the rule does not
    mention are AttrLit(default), as in .fg text.
    """

    op: str
    args: tuple
    attrs: tuple[tuple[str, Any], ...]


# ------------------------------------------------------------------------------------------ replacements


@dataclass(frozen=True)
class RVar:
    name: str  # a tensor variable, a `with` name or a $constant bound by the pattern


@dataclass(frozen=True)
class RAttr:
    name: str  # an attribute variable used as an operand: becomes a constant (eps in `x * x + eps`)


@dataclass(frozen=True)
class RLit:
    value: bool | int | float  # becomes a constant of the dtype the operands give it


@dataclass(frozen=True)
class ROp:
    op: str
    args: tuple
    attrs: tuple[tuple[str, Expr], ...]  # values are expressions, evaluated against the bindings


# ------------------------------------------------------------------------------------------ the rule


@dataclass(frozen=True)
class Tolerance:
    """An approx or unsafe rule's stated tolerance.

    rtol/atol None means the project-wide values for the dtype (fusec.tolerance). scale says what
    the relative part is relative to: "result" (the usual |expected|), or "operands" (the largest
    magnitude among the expected result and the rule's inputs), which is the classic error bound
    for reassociated sums: (x + a) + b can lose everything to cancellation relative to the result,
    but never more than a few ulps of max(|x|, |a|, |b|).
    """

    rtol: float | None = None
    atol: float | None = None
    scale: str = "result"

    def __str__(self) -> str:
        parts = []
        if self.rtol is not None:
            parts.append(f"rtol={self.rtol:g}")
        if self.atol is not None:
            parts.append(f"atol={self.atol:g}")
        if self.scale != "result":
            parts.append(f"scale={self.scale}")
        return ", ".join(parts) if parts else "default (fusec.tolerance)"


@dataclass(frozen=True)
class Rule:
    name: str
    cls: str  # exact, approx or unsafe
    pattern: POp
    replacement: Any  # RVar, RAttr, RLit or ROp
    guard: Expr | None = None
    doc: str = ""
    tolerance: Tolerance = field(default_factory=Tolerance)
    domain: tuple[tuple[str, float, float], ...] = ()  # unsafe rules: where the rule is claimed to hold
    tensor_vars: tuple[str, ...] = ()
    const_vars: tuple[str, ...] = ()
    attr_vars: tuple[str, ...] = ()
    text: tuple[str, str, str] = ("", "", "")  # pattern, replacement and guard as written
    location: SourceLocation | None = field(default=None, compare=False)

    @property
    def pattern_text(self) -> str:
        return self.text[0]

    @property
    def replacement_text(self) -> str:
        return self.text[1]

    @property
    def guard_text(self) -> str:
        return self.text[2]

    def __str__(self) -> str:
        guard = f"  if {self.guard_text}" if self.guard_text else ""
        return f"{self.name} [{self.cls}]: {self.pattern_text} -> {self.replacement_text}{guard}"

    def to_json(self) -> dict:
        out = {
            "name": self.name,
            "class": self.cls,
            "pattern": self.pattern_text,
            "replacement": self.replacement_text,
            "guard": self.guard_text or None,
            "doc": self.doc,
            "root_op": self.pattern.op,
        }
        if self.cls != "exact":
            out["tolerance"] = {"rtol": self.tolerance.rtol, "atol": self.tolerance.atol, "scale": self.tolerance.scale}
        if self.domain:
            out["domain"] = {name: [lo, hi] for name, lo, hi in self.domain}
        if self.location is not None:
            out["source"] = f"{self.location.filename}:{self.location.line}"
        return out


def same_literal(a: Any, b: Any) -> bool:
    """Literal equality as the matcher needs it: -0.0 differs from 0.0 and nan equals nan."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) and math.isnan(fb)
        return fa == fb and math.copysign(1.0, fa) == math.copysign(1.0, fb)
    return a == b
