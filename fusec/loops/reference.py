"""Run a loop nest one scalar at a time, exactly as written: the meaning of the IR, executable.

It is slow (pure Python, one NumPy call per scalar op), so it is for tests and for learners: a
schedule is correct when the scheduled nest computes what the unscheduled one does, and a backend
is correct when it computes what this does.
"""

from __future__ import annotations

import numpy as np

from fusec.ir.ops import OPS
from fusec.loops.ir import (
    AccInit,
    AccUpdate,
    Const,
    Expr,
    IndexValue,
    Let,
    LetIndex,
    Load,
    LocalArray,
    Loop,
    LoopNest,
    Op,
    Piecewise,
    Ref,
    Stmt,
    Store,
    evaluate_index,
)

_COMBINE = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}


def run_nest(nest: LoopNest, *arrays: np.ndarray) -> None:
    """Execute `nest` on arrays given in `nest.buffers` order (outputs are written in place)."""
    flat = {b.name: a.reshape(-1) for b, a in zip(nest.buffers, arrays)}
    with np.errstate(all="ignore"):
        _run(nest.body, {}, {}, flat)


def _run(stmts: tuple[Stmt, ...], env: dict, scalars: dict, bufs: dict) -> None:
    for s in stmts:
        if isinstance(s, Loop):
            for v in range(int(evaluate_index(s.start, env)), int(evaluate_index(s.extent, env))):
                env[s.var] = v
                _run(s.body, env, scalars, bufs)
        elif isinstance(s, LetIndex):
            env[s.var] = int(evaluate_index(s.value, env))
        elif isinstance(s, Let):
            scalars[s.name] = _eval(s.value, env, scalars, bufs)
        elif isinstance(s, AccInit):
            scalars[s.name] = np.asarray(s.identity, dtype=s.dtype.numpy)
        elif isinstance(s, AccUpdate):
            acc = scalars[s.name]
            scalars[s.name] = np.asarray(_COMBINE[s.op](acc, _eval(s.value, env, scalars, bufs))).astype(acc.dtype)
        elif isinstance(s, Store):
            bufs[s.buffer][int(evaluate_index(s.index, env))] = _eval(s.value, env, scalars, bufs)
        elif isinstance(s, LocalArray):  # contents undefined until stored: NaN where that can show
            bufs[s.name] = np.full(s.size, np.nan if s.dtype.is_float else 0, dtype=s.dtype.numpy)
        else:  # pragma: no cover
            raise AssertionError(type(s))


def _eval(e: Expr, env: dict, scalars: dict, bufs: dict) -> np.ndarray:
    if isinstance(e, Const):
        return np.asarray(e.value, dtype=e.dtype.numpy)
    if isinstance(e, Load):
        return np.asarray(bufs[e.buffer][int(evaluate_index(e.index, env))])
    if isinstance(e, Ref):
        return scalars[e.name]
    if isinstance(e, IndexValue):
        return np.asarray(evaluate_index(e.index, env)).astype(e.dtype.numpy)
    if isinstance(e, Piecewise):
        i = int(evaluate_index(e.index, env))
        for lo, hi, piece in zip(e.bounds, e.bounds[1:], e.pieces):
            if lo <= i < hi:
                return _eval(piece, env, scalars, bufs).astype(e.dtype.numpy)
        raise IndexError(f"concat index {i} outside {e.bounds}")
    assert isinstance(e, Op), e
    args = [_eval(a, env, scalars, bufs) for a in e.args]
    if e.op == "cast":
        return args[0].astype(e.dtype.numpy)
    attrs = {s.name: s.default for s in OPS[e.op].attrs} | dict(e.attrs)
    return np.asarray(OPS[e.op].numpy(args, attrs)).astype(e.dtype.numpy)
