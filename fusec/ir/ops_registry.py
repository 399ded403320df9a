"""What an op row is, the registry that holds the rows, and the checks every use of an op goes through.

A row (`OpDef`) is the single source of an op. The rest of the compiler reads it:

* the frontend, `Graph` and the printer: `name`, `kind`, `arity`, `attrs`, `infer`, `infix`;
* the interpreter and the rewrite verifier: `numpy`, the reference implementation;
* the fusion cost model and the tuner's model: `flops`; the C passes: `transcendental`;
* the backends: `numpy_code` and `c_code`, the op's spelling, and `c_vector`;
* everything that needs a group of ops (comparisons, commutative ops, ...): `families`, through
  `ops_in_family`; the random-graph generator picks ops the same way.

The rows themselves live in `ops_elementwise.py`, `ops_reduce.py` and `ops_layout.py`; `fusec.ir.ops`
registers them and is where the rest of the compiler imports the table from.

Spellings
---------
A spelling is a template, or a dict of templates chosen by the result dtype. A dict's keys are
selectors, tried in order, the first match wins: a dtype (`f32`), a class (`float`, `int`, `bool`) or
`*`, optionally followed by conditions on the first operand's dtype (`from=float`, `from=same`) and on
attributes (`approximate=tanh`). Templates name the operands `{0}`, `{1}`, ..., and can use:

* NumPy: `{out}` (the array to write; every statement writes it), `{one}` and `{zero}` (scalars of
  the result dtype) and each attribute by name (as a Python literal). A tuple is several statements.
* C: `{ctype}`, `{utype}` (the unsigned type of an integer), `{one}` and `{zero}` (C literals of the
  result dtype). An operand written as a whole argument of a call (`expf({0})`) loses its outer
  parentheses.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fusec.errors import FusecTypeError
from fusec.ir.dtypes import DType, TensorType, dtype_named, promote

KINDS = ("elementwise", "broadcast", "reduce", "layout", "opaque")
REQUIRED = object()  # marks an attribute without a default

# The families a row may belong to. A family is a question some part of the compiler asks about ops.
FAMILIES = {
    "arithmetic": "binary arithmetic on numbers (random graphs track integer bounds through these)",
    "comparison": "gives bool; the operands are compared in their promoted dtype",
    "commutative": "f(a, b) == f(b, a) bit for bit (the rewrite matcher tries both operand orders)",
    "computes_in_result_dtype": "the operands are converted to the result dtype before computing",
    "float_math": "needs float operands (unary math functions such as exp, sigmoid)",
    "logical": "bools in, a bool out (and, or, xor, not; random graphs draw them on bool values)",
    "numeric": "needs numeric (not bool) operands",
}

Spelling = str | tuple[str, ...] | dict[str, str | tuple[str, ...]]


@dataclass(frozen=True)
class AttrSpec:
    """One attribute: its name, its value type and its default.

    Value types: int, float, bool, str, dtype, ints (list of int), axes (None, int or list of int),
    shape (list of int, -1 allowed where the op says so), scalar (int, float or bool).
    """

    name: str
    type: str
    default: Any = REQUIRED
    choices: tuple | None = None


@dataclass(frozen=True)
class OpDef:
    """One row of the op table (see the module docstring for how each field is used)."""

    name: str
    kind: str
    arity: int | None  # None: variadic (one or more)
    infer: Callable[[list[TensorType], dict], TensorType]  # the shape and dtype rule
    numpy: Callable[[list[np.ndarray], dict], np.ndarray] | None  # the reference implementation
    attrs: tuple[AttrSpec, ...] = ()
    expand: Callable | None = None  # composites: (graph, args, attrs) -> name of the result
    flops: int = 1  # per output element, for the cost models
    transcendental: bool = False  # expensive per element (a polynomial or a library call)
    families: frozenset[str] = frozenset()
    infix: str | None = None  # the operator spelling in .fg text, if any
    numpy_code: Spelling | None = None  # the NumPy backend's spelling
    c_code: Spelling | None = None  # the C backend's spelling
    c_vector: str | None = None  # the vectorizable float32 function in fusec_math.h, if there is one
    doc: str = ""
    literal_context: tuple[int, ...] | None = field(default=None)  # args whose dtype a literal adopts

    def __post_init__(self) -> None:
        if isinstance(self.families, str):
            object.__setattr__(self, "families", frozenset({self.families}))
        else:
            object.__setattr__(self, "families", frozenset(self.families))

    @property
    def is_composite(self) -> bool:
        return self.expand is not None

    @property
    def commutative(self) -> bool:
        return "commutative" in self.families

    def in_family(self, family: str) -> bool:
        return family in self.families

    def cost_name(self, attrs: dict | None = None) -> str:
        """The name the cost model measures this op under: its own, and each attribute whose value
        picks another C function ("gelu approximate=tanh": fusec_gelu_tanhf, not the erf form)."""
        picked = [f"{a.name}={(attrs or {}).get(a.name, a.default)}" for a in self.attrs if a.choices]
        selectors = " ".join(self.c_code) if isinstance(self.c_code, dict) else ""
        return " ".join([self.name] + [p for p in picked if p in selectors.split()])

    def cost_names(self) -> list[str]:
        """Every name cost_name gives for this op, its default first (what `fusec calibrate` measures)."""
        names = [self.cost_name()]
        for a in self.attrs:
            for choice in a.choices or ():
                name = self.cost_name({a.name: choice})
                if name not in names:
                    names.append(name)
        return names


# --------------------------------------------------------------------------------------------
# the registry

OPS: dict[str, OpDef] = {}
BINARY_INFIX: dict[str, str] = {}  # operator symbol in .fg text -> op name, for binary ops


def _check_row(op: OpDef) -> None:
    if op.kind not in KINDS + ("leaf",):
        raise FusecTypeError(f"op '{op.name}': unknown kind '{op.kind}' (kinds: {', '.join(KINDS)})")
    unknown = op.families - set(FAMILIES)
    if unknown:
        raise FusecTypeError(f"op '{op.name}': unknown families {sorted(unknown)} (families: {', '.join(FAMILIES)})")
    if not op.name.isidentifier():
        raise FusecTypeError(f"op name '{op.name}' is not an identifier")


def register_op(op: OpDef, replace: bool = False) -> OpDef:
    """Add a row to the table: from then on the op parses, type-checks, interprets and compiles."""
    _check_row(op)
    if op.name in OPS and not replace:
        raise FusecTypeError(f"op '{op.name}' is already registered")
    OPS[op.name] = op
    if op.infix and op.arity == 2:
        BINARY_INFIX[op.infix] = op.name
    return op


def unregister_op(name: str) -> OpDef:
    """Remove a row (tests that register an op of their own take it out again)."""
    op = OPS.pop(name)
    if op.infix and BINARY_INFIX.get(op.infix) == name:
        del BINARY_INFIX[op.infix]
    return op


def op_named(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        close = difflib.get_close_matches(name, OPS.keys(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise FusecTypeError(f"unknown op '{name}'{hint}") from None


def split_cost_name(cost_name: str) -> tuple[OpDef, dict[str, str]]:
    """The row and the attributes a cost name (OpDef.cost_name: "gelu approximate=tanh") names."""
    op, *picked = cost_name.split()
    return OPS[op], dict(p.split("=", 1) for p in picked)


def op_of_cost_name(cost_name: str) -> OpDef:
    """The row of the op a cost name (OpDef.cost_name: "gelu approximate=tanh") names."""
    return split_cost_name(cost_name)[0]


def ops_in_family(family: str) -> tuple[str, ...]:
    """Names of the ops in a family, in table order."""
    if family not in FAMILIES:
        raise KeyError(f"unknown op family '{family}'")
    return tuple(name for name, op in OPS.items() if family in op.families)


def ops_where(pred: Callable[[OpDef], bool]) -> tuple[str, ...]:
    """Names of the ops whose row satisfies `pred`, in table order."""
    return tuple(name for name, op in OPS.items() if pred(op))


# --------------------------------------------------------------------------------------------
# choosing a spelling


def _dtype_matches(selector: str, dtype: DType, result: DType) -> bool:
    if selector == "*":
        return True
    if selector == "same":
        return dtype == result
    if selector == "float":
        return dtype.is_float
    if selector == "int":
        return dtype.is_int
    return dtype.name == selector


def select_spelling(spelling: Spelling | None, dtype: DType, operand: DType | None = None, attrs: dict | None = None):
    """The template a spelling gives for this result dtype, first operand dtype and attributes (or None)."""
    if spelling is None or not isinstance(spelling, dict):
        return spelling
    attrs = attrs or {}
    for selector, template in spelling.items():
        head, *conditions = selector.split()
        if not _dtype_matches(head, dtype, dtype):
            continue
        ok = True
        for cond in conditions:
            key, _, want = cond.partition("=")
            if key == "from":
                ok = operand is not None and _dtype_matches(want, operand, dtype)
            else:
                ok = str(attrs.get(key)) == want
            if not ok:
                break
        if ok:
            return template
    return None


# --------------------------------------------------------------------------------------------
# attribute validation


def _check_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _validate_attr(op: str, spec: AttrSpec, value: Any) -> Any:
    def bad(expected: str) -> FusecTypeError:
        return FusecTypeError(f"attribute '{spec.name}' of {op} must be {expected}, got {value!r}")

    t = spec.type
    if t == "int":
        if not _check_int(value):
            raise bad("an integer")
        value = int(value)
    elif t == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise bad("a number")
        value = float(value)
    elif t == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
    elif t == "str":
        if not isinstance(value, str):
            raise bad("a string")
    elif t == "dtype":
        if isinstance(value, DType):
            pass
        elif isinstance(value, str):
            value = dtype_named(value)
        else:
            raise bad("a dtype such as f32")
    elif t in ("ints", "shape"):
        if not isinstance(value, (list, tuple)) or not all(_check_int(v) for v in value):
            raise bad("a list of integers")
        value = tuple(int(v) for v in value)
    elif t == "axes":
        if value is None:
            pass
        elif _check_int(value):
            value = int(value)
        elif isinstance(value, (list, tuple)) and all(_check_int(v) for v in value):
            value = tuple(int(v) for v in value)
        else:
            raise bad("an integer or a list of integers")
    elif t == "scalar":
        if not isinstance(value, (bool, int, float, np.number)):
            raise bad("a number")
    else:  # pragma: no cover - table error
        raise AssertionError(t)
    if spec.choices is not None and value not in spec.choices:
        raise FusecTypeError(
            f"attribute '{spec.name}' of {op} must be one of {', '.join(map(repr, spec.choices))}, got {value!r}"
        )
    return value


def check_attrs(op: OpDef, given: dict[str, Any]) -> dict[str, Any]:
    """Validate attributes against the op's table row and fill in defaults."""
    known = {s.name: s for s in op.attrs}
    for name in given:
        if name not in known:
            allowed = ", ".join(known) or "none"
            raise FusecTypeError(f"{op.name} has no attribute '{name}' (attributes: {allowed})")
    out = {}
    for spec in op.attrs:
        if spec.name in given:
            out[spec.name] = _validate_attr(op.name, spec, given[spec.name])
        elif spec.default is REQUIRED:
            raise FusecTypeError(f"{op.name} needs the attribute '{spec.name}'")
        else:
            out[spec.name] = spec.default
    return out


def default_attrs(op: OpDef) -> dict[str, Any]:
    return {s.name: s.default for s in op.attrs if s.default is not REQUIRED}


def check_arity(op: OpDef, n: int) -> None:
    if op.arity is None:
        if n < 1:
            raise FusecTypeError(f"{op.name} takes at least one operand, got {n}")
    elif n != op.arity:
        s = "" if op.arity == 1 else "s"
        raise FusecTypeError(f"{op.name} takes {op.arity} operand{s}, got {n}")


def literal_context_dtype(op: OpDef, arg_dtypes: list[DType | None]) -> DType | None:
    """The dtype a weak literal operand of `op` adopts: the promotion of the op's tensor operands."""
    positions = op.literal_context if op.literal_context is not None else range(len(arg_dtypes))
    ctx = None
    for i in positions:
        if i < len(arg_dtypes) and arg_dtypes[i] is not None:
            ctx = arg_dtypes[i] if ctx is None else promote(ctx, arg_dtypes[i])
    return ctx


def register_all(rows: Iterable[OpDef]) -> None:
    for row in rows:
        register_op(row)


__all__ = [
    "AttrSpec", "BINARY_INFIX", "FAMILIES", "KINDS", "OPS", "OpDef", "REQUIRED", "Spelling",
    "check_arity", "check_attrs", "default_attrs", "literal_context_dtype", "op_named", "ops_in_family",
    "ops_where", "register_all", "register_op", "select_spelling", "unregister_op",
]  # fmt: skip
