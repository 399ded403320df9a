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
runs at its 512-bit clock for the kernel either way. A kernel whose transcendental ops are all in
tables (c_passes.tabulate_invariants) is a memory-bound loop over them: the loops that fill the
tables are wide, its own loop keeps the compiler's width (row_value_broadcast's fused kernel ran
0.67 ms so and 0.68-0.69 ms all wide, where the same loop reading the table from memory took 0.65).
A tuned schedule's own simdlen wins.

Measured with the generated kernels, one thread, CPU time medians of 45 alternating calls, load 6:
gelu 0.94x, softmax 0.83x (the exp loop alone: 0.91x); layernorm, rmsnorm, chain and Adam have no
transcendental op and keep their code (with -mprefer-vector-width=512 for every kernel instead:
chain 1.01x, layernorm 1.02x, rmsnorm 0.98x, Adam 1.29x).
"""

from __future__ import annotations

from fusec.codegen.c_passes import is_table
from fusec.ir.dtypes import F32
from fusec.loops.ir import LocalArray, Loop, LoopNest, Store, calls_transcendental, stmt_exprs, walk

WIDE_CLAUSE = "FUSEC_SIMD_WIDE"  # defined in fusec/codegen/c/fusec_math.h


def computes_transcendental_f32(body) -> bool:
    """A float32 transcendental op (the op table's `transcendental` flag) anywhere in `body` (a
    nest's statements, or a nest)."""
    stmts = walk(body.body if isinstance(body, LoopNest) else body)
    return any(calls_transcendental(top, F32) for s in stmts for top in stmt_exprs(s))


def table_loops(nest: LoopNest) -> list[Loop]:
    """The loops before the kernel's own that fill a table (codegen/c_passes.tabulate_invariants:
    a top-level loop whose stores all go to a table declared at the top; a row array of
    reuse_row_values is not one: its loop computes the kernel's points)."""
    local = {s.name for s in nest.body if isinstance(s, LocalArray) and is_table(s.name)}
    found = []
    for s in nest.body:
        stores = [st.buffer for st in walk((s,)) if isinstance(st, Store)] if isinstance(s, Loop) else []
        if stores and all(b in local for b in stores):
            found.append(s)
    return found


def simd_width_clause(nest: LoopNest) -> str:
    """The clause for the nest's vector loops when no tuned simdlen is set: FUSEC_SIMD_WIDE if the
    kernel computes a transcendental op at its points, outside its tables; none otherwise (a loop
    that fills a table of one gets the clause itself: loop_width_clause)."""
    tables = {id(t) for t in table_loops(nest)}
    rest = tuple(s for s in nest.body if id(s) not in tables)
    return WIDE_CLAUSE if computes_transcendental_f32(rest) else ""


def loop_width_clause(kernel_clause: str, loop: Loop) -> str:
    """One vector loop's clause: the kernel's, or FUSEC_SIMD_WIDE for a loop that computes a
    transcendental op in a kernel that otherwise does not (the loop filling a table of tanh values
    in a kernel whose own loop multiplies by them: that loop, memory-bound, keeps the compiler's
    width; it ran 20-40 us slower in 512-bit vectors, 0.67 ms in all)."""
    if kernel_clause or not computes_transcendental_f32(loop.body):
        return kernel_clause
    return WIDE_CLAUSE
