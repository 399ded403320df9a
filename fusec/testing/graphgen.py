"""Random well-typed graphs and matching inputs, for property tests and the fuzzer.

One generator, two drivers. `build_graph(chooser, config)` makes every random decision through a
`Chooser`, so the same code runs under hypothesis (`graphs()`, which shrinks failures for free) and
under a plain seeded RNG (`random_graph(seed)`, used by tools/fuzz.py for long sessions, which
shrinks by replaying a shortened list of choices: see `ReplayChooser`).

The graphs are built through the Graph builder API only (`add_input`, `add`, `const`,
`set_outputs`), so every graph the generator makes passed the same checks as parsed source. They mix
every op kind: elementwise chains, broadcasting, reductions over random axes with and without
keepdims, layout ops, matmuls, composites, diamonds and shared subexpressions, several outputs, and
odd sizes (1, primes, sizes that are not a multiple of any tile).

Integer arithmetic is kept free of overflow: the generator tracks a bound on every integer value's
magnitude and refuses an op that could leave the dtype's range (graphgen_state). Float-to-integer
casts are guarded the same way (|x| < 1000, NaN mapped to 0).

The parts, each in its own module:

    graphgen_config.py       GenConfig: what may be generated; ODD_SIZES
    choosers.py              Chooser and its three drivers (hypothesis, seeded RNG, replay)
    graphgen_state.py        the state, operands, literals, new inputs, and `emit` (with integer bounds)
    graphgen_elementwise.py  makers of elementwise ops, comparisons, where, casts, logical ops, constants
    graphgen_reductions.py   makers of reductions, statistics and normalizing composites
    graphgen_layout.py       makers of layout ops, iota and matmul
    arrays.py                random_arrays: inputs for a graph, with special floats
    graphgen.py              (this module) the loop that draws makers, the outputs, and the drivers
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from fusec.ir.graph import Graph
from fusec.testing.arrays import SPECIAL_FLOATS, random_arrays
from fusec.testing.choosers import Chooser, HypothesisChooser, RandomChooser, ReplayChooser
from fusec.testing.graphgen_config import ODD_SIZES, GenConfig
from fusec.testing.graphgen_elementwise import (
    make_binary,
    make_cast,
    make_logical,
    make_typed_const,
    make_unary,
    make_where,
)
from fusec.testing.graphgen_layout import make_iota, make_layout, make_matmul
from fusec.testing.graphgen_reductions import make_composite, make_reduce, make_statistic
from fusec.testing.graphgen_state import GenState, add_input, base_shape, broadcastable_to

DEFAULT_CONFIG = GenConfig()  # frozen, so one instance serves as every default


def build_graph(c: Chooser, cfg: GenConfig = DEFAULT_CONFIG) -> Graph:
    """Make a random, verified graph from the choices `c` makes."""
    g = Graph(c.choice(["main", "fuzz", "g"]))
    s = GenState(g, c, cfg)
    base = base_shape(c, cfg)
    add_input(s, base)
    for _ in range(c.integer(0, max(cfg.max_inputs - 1, 0))):
        if c.boolean(50):
            add_input(s, broadcastable_to(c, base))
    makers = [(make_unary, 5), (make_binary, 7), (make_where, 1), (make_cast, 1), (make_typed_const, 1), (make_logical, 1)]
    if cfg.reductions:
        makers += [(make_reduce, 3), (make_statistic, 1)]
    if cfg.composites:
        makers.append((make_composite, 2))
    if cfg.layout:
        makers += [(make_layout, 3), (make_iota, 1)]
    if cfg.matmul:
        makers.append((make_matmul, 2))
    weighted = [m for m, w in makers for _ in range(w)]
    n_ops = c.integer(1, max(cfg.max_ops, 1))
    made = 0
    for _ in range(n_ops * 3):  # some attempts are refused by the type rules; try again
        if made >= n_ops:
            break
        if c.choice(weighted)(s) is not None:
            made += 1
    _choose_outputs(s)
    g.dead_code_elimination()
    _forget_unused_dims(g)
    g.verify()
    return g


def _choose_outputs(s: GenState) -> None:
    g, c = s.g, s.c
    ops = [v.name for v in s.values if g.node(v.name).op not in ("input",)]
    if not ops:  # an identity graph: return an input
        g.set_outputs([g.inputs[0]])
        return
    sinks = [n for n in ops if not any(True for _ in g.nx.successors(n))]
    outs = [ops[-1]]
    for n in sinks:
        if n not in outs and len(outs) < s.cfg.max_outputs and c.boolean(50):
            outs.append(n)
    if c.boolean(15):
        extra = c.choice(ops)  # an interior value as an output too: it must be written and consumed
        if extra not in outs:
            outs.append(extra)
    if c.boolean(5):
        outs.append(outs[0])  # the same value returned twice
    g.set_outputs(outs)


def _forget_unused_dims(g: Graph) -> None:
    used = {w for ws in g.input_dims.values() for w in ws if isinstance(w, str)}
    for d in list(g.dims):
        if d not in used:
            del g.dims[d]


# ------------------------------------------------------------------------------------------ drivers


def random_graph(seed: int, cfg: GenConfig = DEFAULT_CONFIG) -> tuple[Graph, list[int]]:
    """A graph from a seeded RNG, and the recorded choices that rebuild it (see `replay_graph`)."""
    c = RandomChooser(seed)
    return build_graph(c, cfg), c.record


def replay_graph(record: list[int], cfg: GenConfig = DEFAULT_CONFIG) -> Graph:
    return build_graph(ReplayChooser(record), cfg)


def graphs(cfg: GenConfig | None = None, **overrides):
    """A hypothesis strategy of random graphs: `graphs(max_ops=5, dtypes=("f32",))`."""
    from hypothesis import strategies as st

    config = replace(cfg or GenConfig(), **overrides)

    @st.composite
    def _graphs(draw):
        return build_graph(HypothesisChooser(draw), config)

    return _graphs()


def graphs_with_inputs(cfg: GenConfig | None = None, special: float = 0.0, **overrides):
    """A hypothesis strategy of (graph, input arrays) pairs."""
    from hypothesis import strategies as st

    @st.composite
    def _pairs(draw):
        g = draw(graphs(cfg, **overrides))
        seed = draw(st.integers(0, 2**32 - 1))
        return g, random_arrays(g, np.random.default_rng(seed), special)

    return _pairs()


# SPECIAL_FLOATS, random_arrays, ODD_SIZES and the choosers live in their own modules; they are
# importable from here too, where they were first defined
__all__ = [
    "Chooser",
    "GenConfig",
    "ODD_SIZES",
    "HypothesisChooser",
    "RandomChooser",
    "ReplayChooser",
    "SPECIAL_FLOATS",
    "build_graph",
    "graphs",
    "graphs_with_inputs",
    "random_arrays",
    "random_graph",
    "replay_graph",
]
