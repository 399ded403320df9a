"""512-bit vectors for kernels of fast transcendental functions, the compiler's width for the rest.

gcc's -march=native on an AVX-512 machine still prefers 256-bit vectors. Where a kernel's time goes
into fusec_math.h's polynomials (exp, tanh, erf, sigmoid, gelu, ...), 512-bit vectors do twice the
work per instruction; for a memory-bound kernel they gain nothing and can lose (Adam's update with
them, its sqrt and division: 1.29x slower). So every vector loop of a kernel that computes a
transcendental op in float32 gets the clause FUSEC_SIMD_WIDE,

    #pragma omp simd reduction(+:acc_s_block) FUSEC_SIMD_WIDE

which fusec_math.h defines as `simdlen(16)` where the compiler targets AVX-512F and as nothing
elsewhere (split into two 256-bit halves, each step would only add register pressure). OpenMP
pragmas are macro-expanded, so the generated source is the same on every machine. The whole
kernel, not only the loop with the exp: softmax's max and scale passes gain as well, and the core
runs at its 512-bit clock for the kernel either way. A tuned schedule's own simdlen wins.

Measured with the generated kernels, one thread, CPU time medians of 45 alternating calls, load 6:
gelu 0.94x, softmax 0.83x (the exp loop alone: 0.91x); layernorm, rmsnorm, chain and Adam have no
transcendental op and keep their code (with -mprefer-vector-width=512 for every kernel instead:
chain 1.01x, layernorm 1.02x, rmsnorm 0.98x, Adam 1.29x).
"""

from __future__ import annotations

from fusec.ir.dtypes import F32
from fusec.ir.ops import OPS
from fusec.loops.ir import LoopNest, Op, stmt_exprs, walk, walk_expr

WIDE_CLAUSE = "FUSEC_SIMD_WIDE"  # defined in fusec/codegen/c/fusec_math.h


def computes_transcendental_f32(nest: LoopNest) -> bool:
    """A float32 transcendental op (the op table's `transcendental` flag) anywhere in the nest."""
    for s in walk(nest.body):
        for top in stmt_exprs(s):
            for e in walk_expr(top):
                if isinstance(e, Op) and e.dtype == F32 and e.op in OPS and OPS[e.op].transcendental:
                    return True
    return False


def simd_width_clause(nest: LoopNest) -> str:
    """The clause for the nest's vector loops when no tuned simdlen is set: FUSEC_SIMD_WIDE or none."""
    return WIDE_CLAUSE if computes_transcendental_f32(nest) else ""
