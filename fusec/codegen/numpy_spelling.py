"""The NumPy backend's words: how one op, one literal and one constant expression are written.

`spelling` asks the op's row for its NumPy statements (templates with `{0}`, `{out}`, ...), `literal`
writes a scalar of the exact dtype, and `fold_constant` computes a loads-free expression as the
interpreter would. Separate from the emitter (numpy_exprs, numpy_blocks, numpy_backend) because none
of this depends on tiles, scratch or loops.
"""

from __future__ import annotations

import numpy as np

from fusec.ir.dtypes import DType
from fusec.ir.ops import OPS, default_attrs, select_spelling
from fusec.loops.ir import Const, Expr, Op


class NumpyCodegenError(Exception):
    """The nest or schedule uses something this backend cannot express (a bug, not a user mistake)."""


def spelling(e: Op) -> tuple[str, ...] | None:
    """The op row's NumPy statements for this op at its dtype (templates, see fusec/ir/ops_registry.py)."""
    op = OPS.get(e.op)
    if op is None:
        return None
    code = select_spelling(op.numpy_code, e.dtype, e.args[0].dtype if e.args else None, attrs_of(e))
    if code is None:
        return None
    return (code,) if isinstance(code, str) else tuple(code)


def writes_over_operand(lines: tuple[str, ...]) -> bool:
    """One NumPy ufunc call: it may write its result over one of its operands."""
    return len(lines) == 1 and lines[0].startswith("np.") and not lines[0].startswith("np.copyto")


def attrs_of(e: Op) -> dict:
    return default_attrs(OPS[e.op]) | dict(e.attrs)


def literal(value, dtype: DType) -> str:
    """A NumPy scalar of the exact dtype (NumPy 2 treats these as strongly typed, like the interpreter's constants)."""
    t = f"np.{dtype.numpy.name}"
    if dtype.name == "bool":
        return "np.True_" if value else "np.False_"
    if dtype.is_float:
        v = float(value)
        if v != v:
            return f"{t}(np.nan)"
        if v in (float("inf"), float("-inf")):
            return f"{t}({'-' if v < 0 else ''}np.inf)"
        return f"{t}({v!r})"
    return f"{t}({int(value)})"


def fold_constant(e: Expr):
    """The value of an expression without loads or temporaries, computed as the interpreter would."""
    if isinstance(e, Const):
        return np.asarray(e.value, dtype=e.dtype.numpy)
    if isinstance(e, Op):
        args = [fold_constant(a) for a in e.args]
        if any(a is None for a in args):
            return None
        with np.errstate(all="ignore"):
            if e.op == "cast":
                return args[0].astype(e.dtype.numpy)
            r = OPS[e.op].numpy(args, attrs_of(e))
            return np.asarray(r).astype(e.dtype.numpy)
    return None
