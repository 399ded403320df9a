"""The arithmetic of one element in Z3: dtypes as sorts, constants, and the exact semantics of ops.

floats: Z3's floating-point theory, rounding to nearest-even, with NaN, infinities and signed
zeros (np.maximum's NaN and signed-zero behaviour spelled out); integers: bit-vectors that wrap as
NumPy's do; bool: Z3 booleans, with NumPy's bool arithmetic (+ is or, * is and). smt_terms.py
looks ops up here by name; an elementwise float op missing from FLOAT is uninterpreted there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import z3

from fusec.ir.dtypes import BOOL, F32, DType

RNE = z3.RNE()


class Unmodelled(Exception):
    """The translation cannot model this rule soundly; the message says why."""

def sort_of(dt: DType) -> z3.SortRef:
    if dt == BOOL:
        return z3.BoolSort()
    if dt.is_float:
        return z3.Float32() if dt == F32 else z3.Float64()
    return z3.BitVecSort(8 * dt.numpy.itemsize)


def value_of(v: Any, dt: DType) -> z3.ExprRef:
    """A concrete Python/NumPy value as a Z3 constant of dtype dt (rounded as NumPy rounds it)."""
    if dt == BOOL:
        return z3.BoolVal(bool(v))
    if dt.is_float:
        x = float(np.asarray(v, dtype=np.float64).astype(dt.numpy))
        s = sort_of(dt)
        if x != x:
            return z3.fpNaN(s)
        if x == 0:
            return z3.fpMinusZero(s) if np.signbit(x) else z3.fpPlusZero(s)
        return z3.FPVal(x, s)
    return z3.BitVecVal(int(v) % (1 << (8 * dt.numpy.itemsize)), 8 * dt.numpy.itemsize)


def same(a: z3.ExprRef, b: z3.ExprRef) -> z3.BoolRef:
    """Bit-for-bit equality with any NaN equal to any NaN: SMT-LIB's `=` on floats is exactly that."""
    return a == b


def _fmax(a, b):  # np.maximum: a if a > b or a is NaN, else b (so maximum(0.0, -0.0) is -0.0)
    return z3.If(z3.Or(z3.fpGT(a, b), z3.fpIsNaN(a)), a, b)


def _fmin(a, b):
    return z3.If(z3.Or(z3.fpLT(a, b), z3.fpIsNaN(a)), a, b)


def _one(a):
    return z3.FPVal(1.0, a.sort())


FLOAT = {
    "add": lambda a, b: z3.fpAdd(RNE, a, b),
    "sub": lambda a, b: z3.fpSub(RNE, a, b),
    "mul": lambda a, b: z3.fpMul(RNE, a, b),
    "div": lambda a, b: z3.fpDiv(RNE, a, b),
    "maximum": _fmax,
    "minimum": _fmin,
    "neg": z3.fpNeg,
    "abs": z3.fpAbs,
    "relu": lambda a: _fmax(a, z3.fpPlusZero(a.sort())),
    "sqrt": lambda a: z3.fpSqrt(RNE, a),
    "rsqrt": lambda a: z3.fpDiv(RNE, _one(a), z3.fpSqrt(RNE, a)),
    "reciprocal": lambda a: z3.fpDiv(RNE, _one(a), a),
    "softsign": lambda a: z3.fpDiv(RNE, a, z3.fpAdd(RNE, _one(a), z3.fpAbs(a))),  # x / (1 + |x|), as the table
    "floor": lambda a: z3.fpRoundToIntegral(z3.RTN(), a),  # IEEE roundToIntegral keeps -0.0, inf and NaN
    "ceil": lambda a: z3.fpRoundToIntegral(z3.RTP(), a),
    "round": lambda a: z3.fpRoundToIntegral(RNE, a),  # np.round: halves to even
    "sign": lambda a: z3.If(z3.fpIsNaN(a), a, z3.If(z3.fpGT(a, z3.fpPlusZero(a.sort())), _one(a), z3.If(
        z3.fpLT(a, z3.fpPlusZero(a.sort())), z3.fpNeg(_one(a)), z3.fpPlusZero(a.sort())))),  # np.sign(-0.0) is +0.0
    "eq": z3.fpEQ,
    "ne": lambda a, b: z3.Not(z3.fpEQ(a, b)),
    "lt": z3.fpLT,
    "le": z3.fpLEQ,
    "gt": z3.fpGT,
    "ge": z3.fpGEQ,
}
INT = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "maximum": lambda a, b: z3.If(a >= b, a, b),
    "minimum": lambda a, b: z3.If(a <= b, a, b),
    "neg": lambda a: -a,
    "abs": lambda a: z3.If(a < 0, -a, a),
    "relu": lambda a: z3.If(a > 0, a, z3.BitVecVal(0, a.size())),
    "sign": lambda a: z3.If(a > 0, z3.BitVecVal(1, a.size()), z3.If(a < 0, z3.BitVecVal(-1, a.size()), z3.BitVecVal(0, a.size()))),
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}
BOOLEAN = {  # NumPy's bool arithmetic: + is or, * is and
    "add": z3.Or,
    "mul": z3.And,
    "maximum": z3.Or,
    "minimum": z3.And,
    "eq": lambda a, b: a == b,
    "ne": z3.Xor,
    "lt": lambda a, b: z3.And(z3.Not(a), b),
    "le": lambda a, b: z3.Or(z3.Not(a), b),
    "gt": lambda a, b: z3.And(a, z3.Not(b)),
    "ge": lambda a, b: z3.Or(a, z3.Not(b)),
    "logical_not": z3.Not,
    "logical_and": z3.And,
    "logical_or": z3.Or,
    "logical_xor": z3.Xor,
}
SEMANTICS = {"float": FLOAT, "int": INT, "bool": BOOLEAN}


def _family(dt: DType) -> str:
    return "bool" if dt == BOOL else ("float" if dt.is_float else "int")


def convert(x: z3.ExprRef, src: DType, dst: DType) -> z3.ExprRef:
    """A cast as NumPy's astype does it; float to int is not modelled (NaN and overflow are platform-defined)."""
    if src == dst:
        return x
    if dst == BOOL:
        if src.is_float:
            return z3.Not(z3.fpIsZero(x))
        return x != z3.BitVecVal(0, x.size())
    if src == BOOL:
        return z3.If(x, value_of(1, dst), value_of(0, dst))
    if dst.is_float:
        if src.is_float:
            return z3.fpToFP(RNE, x, sort_of(dst))
        return z3.fpSignedToFP(RNE, x, sort_of(dst))
    if src.is_float:
        raise Unmodelled(f"cast from {src} to {dst}: NumPy's result for NaN, inf and out-of-range values is platform-defined")
    width, have = 8 * dst.numpy.itemsize, x.size()
    return z3.SignExt(width - have, x) if width > have else z3.Extract(width - 1, 0, x)
