"""Index expressions of the loop-nest IR: the integer affine forms that address buffers and bound loops.

An `Index` is `sum(coef * atom) + const`, where an atom is a loop variable or `Div` / `Mod` of a
nonnegative index by a positive constant (reshapes that do not line up with the iteration space) or
`Min` of two indices (a split's tail loop). Here too: the range analysis (`bounds`) that lets
`floordiv` and `mod` simplify, substitution of loop variables, and evaluation over NumPy arrays.

Separate from the rest of the IR (fusec/loops/ir.py, which describes what the forms mean) because it
is plain integer algebra: it knows nothing of values, statements or buffers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


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


def fold_digits(x: Index, ranges: dict[str, int]) -> Index:
    """x with the digits of a number put back together: (y / a % b) * a + y % a is y % (a * b),
    and (y / a) * a + y % a is y. A reshape splits a flat index into one digit per axis of its
    source and the load multiplies them back by the source's strides; when the two layouts agree
    (a reshape of a row-major array is a plain copy), this gives back the flat index, so the
    kernel's inner loop does no division and vectorizes."""
    terms = dict(x.terms)
    for low, c in terms.items():
        if not isinstance(low, Mod):
            continue
        y, a = low.arg, low.divisor
        whole = Div(y, a)
        if terms.get(whole) == c * a:  # (y / a) * a + y % a
            return fold_digits(_without(x, low, whole) + y * c, ranges)
        for high, k in terms.items():  # (y / a % b) * a + y % a
            if isinstance(high, Mod) and high.arg == Index(((whole, 1),)) and k == c * a:
                return fold_digits(_without(x, low, high) + mod(y, a * high.divisor, ranges) * c, ranges)
    return x


def _without(x: Index, *atoms: Atom) -> Index:
    return Index._make({a: c for a, c in x.terms if a not in atoms}, x.const)


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
