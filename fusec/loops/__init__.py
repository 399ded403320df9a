"""Layer 4: the loop-nest IR, lowering of a fused group to a nest, and schedules.

    ir.py        the IR (buffers, loops, loads/stores with affine indices, accumulators)
    lower.py     one fusion group -> one LoopNest
    schedule.py  split, tile, reorder, vectorize, unroll, parallel; the Schedule record
    printer.py   the Halide-like text form
"""
