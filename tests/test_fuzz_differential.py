"""Differential fuzzing in CI: random graphs (fusec.testing.graphgen) are rewritten, planned and
compiled on both backends, and every output is compared with the interpreter.

At least 500 graphs per run, 0 mismatches and 0 crashes. They are spread so CI stays fast: many
small graphs on the NumPy backend, fewer on the C backend (each C kernel is a compiler run, cached
by content for the session), in chunks that pytest-xdist can run in parallel. The seeds are fixed,
so a failure here reproduces exactly: `python tools/fuzz.py --seed S --graphs 1 --backends B`
shrinks it to a minimal .fg reproducer (put it in tests/regressions/).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fusec.bisect import check
from fusec.interp import evaluate
from fusec.ir.printer import print_graph
from fusec.testing.graphgen import GenConfig, random_arrays, random_graph

# (backend, first seed, graphs, fraction of special float inputs); the total is >= 500
CHUNKS = [("numpy", 100_000 + 100 * k, 100, (0.0, 0.02, 0.1)[k % 3]) for k in range(5)]
CHUNKS += [("c", 200_000 + 100 * k, 25, (0.0, 0.05)[k % 2]) for k in range(4)]
TOTAL = sum(n for _, _, n, _ in CHUNKS)
CFG = GenConfig(max_ops=8)


def test_ci_runs_at_least_500_graphs():
    assert TOTAL >= 500


def run_chunk(backend: str, first: int, count: int, special: float) -> list[str]:
    failures = []
    for seed in range(first, first + count):
        g, _ = random_graph(seed, CFG)
        arrays = random_arrays(g, np.random.default_rng(seed), special)
        expected = evaluate(g, arrays)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN inputs may warn inside BLAS
            f = check(g, arrays, backend, expected)
        if f is not None:
            failures.append(f"seed {seed} ({backend}, special {special}): {f}\n{print_graph(g)}")
    return failures


@pytest.mark.parametrize("backend, first, count, special", CHUNKS, ids=[f"{b}-{s}" for b, s, _, _ in CHUNKS])
def test_random_graphs_match_the_interpreter(backend, first, count, special):
    failures = run_chunk(backend, first, count, special)
    assert not failures, f"{len(failures)} of {count} graphs differ:\n\n" + "\n\n".join(failures[:3])
