"""Division by a value that a vector loop does not change, as a multiply by its reciprocal.

Softmax's last pass divides a row by its sum: `y[i0 * 4096 + r1] = row0[r1] / acc_s`. A vector
division costs 5 cycles per 8 floats (one divider, on one port); a multiply costs half a cycle.
So the emitter computes the reciprocal once, before the loop, and the loop multiplies by it:

    const float acc_s_inv = 1.0f / acc_s;
    const int acc_s_inv_ok = fabsf(acc_s) >= 0x1p-126f && fabsf(acc_s) <= 0x1p126f;
    #pragma omp simd
    for (int64_t r1 = 0; r1 < 4096; r1++) {
        y[i0 * 4096 + r1] = (acc_s_inv_ok ? row0[r1] * acc_s_inv : row0[r1] / acc_s);
    }

x * fl(1/s) rounds twice, so it is within 1.5 ulp of x / s instead of 0.5 (f32's tolerance is
rtol 1e-4, about 800 ulp; docs/tolerances.md). That holds while 1/s is a normal float; for a
divisor beyond 2^-126..2^126 (1/s would overflow or lose bits as a denormal), for 0, inf and NaN
the loop divides, exactly as before (`_ok` is false). The condition does not change in the loop,
so gcc's loop unswitching (on at -O3) makes two vector loops of it: no select per element.
Only float32 divisions whose numerator is a load or a named value are rewritten.

Measured on softmax f32[4096, 4096] (hand-written kernels with the prefetch of c_prefetch.py,
2 threads, minimum CPU time of the master thread over 30 alternating runs, load 6-8): 9.4 -> 8.3 ms.
"""

from __future__ import annotations

from fusec.ir.dtypes import F32
from fusec.loops.ir import AccInit, AccUpdate, Let, LetIndex, Load, Loop, Op, Ref, stmt_exprs, walk, walk_expr


def invariant_divisors(lp: Loop) -> list[str]:
    """Names that float32 divisions in `lp` divide by, defined outside it (so fixed while it runs)."""
    inside = {s.name for s in walk(lp.body) if isinstance(s, (Let, AccInit, AccUpdate))}
    inside |= {s.var for s in walk(lp.body) if isinstance(s, (Loop, LetIndex))}
    found: dict[str, None] = {}
    for s in walk(lp.body):
        for top in stmt_exprs(s):
            for e in walk_expr(top):
                if is_reciprocal_candidate(e) and e.args[1].name not in inside:
                    found[e.args[1].name] = None
    return list(found)


def is_reciprocal_candidate(e) -> bool:
    """A float32 division of a load or a named value by a named value."""
    return (isinstance(e, Op) and e.op == "div" and e.dtype == F32 and isinstance(e.args[1], Ref)
            and isinstance(e.args[0], (Load, Ref)))
