"""Layer 4: the loop-nest IR, lowering of a fused group to a nest, and schedules.

    ir.py            the IR (buffers, loops, loads/stores with affine indices, accumulators); its names import from here
    index.py         the IR's index expressions: affine forms, Div/Mod/Min atoms, bounds, substitution
    expr.py          the IR's value expressions (constants, loads, ops, ...) and walks over them
    lower.py         one fusion group -> one LoopNest (lower_group), and an elementwise group's loops
    lower_points.py  a group's lowering state: values pulled back to points, temporaries
    lower_reduce.py  a reduce group's passes over the reduced axes; hoisting
    lower_matmul.py  a matmul group's scalar loops and its MatmulInfo
    lower_dims.py    size-1 axes dropped, contiguous axes merged; the in-place check
    schedule.py      split, tile, reorder, vectorize, unroll, parallel, block_reduction; the Schedule record
    defaults.py      the default schedule of each kernel kind (default_schedule) and the sizes measured for it
    blocked.py       long float sums and products in blocks (Schedule.reduce_block): as accurate as NumPy's pairwise sum
    interchange.py   column reductions inside out: the reduced loops outside, accumulator rows (Schedule.acc_row)
    printer.py       the Halide-like text form
    visit.py         the one traversal every loop-IR pass uses (transform), and named passes (Pass)
    simplify.py      the simplifier: folded split loops, no one-trip loops, hoisted index lets, no identity stores
    matmul.py        a matmul as BLAS calls on row tiles plus a scheduled epilogue (Schedule.matmul_rows)
    show.py          the nest after each schedule primitive (--show schedule) and the scheduled nests (--show loops)
"""
