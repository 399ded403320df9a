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
from collections import Counter

import numpy as np
import pytest

from fusec.bisect import check
from fusec.interp import evaluate
from fusec.ir.printer import print_graph
from fusec.testing.arrays import random_arrays
from fusec.testing.graphgen import GenConfig, random_graph

# (backend, first seed, graphs, fraction of special float inputs); the total is >= 500
CHUNKS = [("numpy", 100_000 + 100 * k, 100, (0.0, 0.02, 0.1)[k % 3]) for k in range(5)]
CHUNKS += [("c", 200_000 + 100 * k, 25, (0.0, 0.05)[k % 2]) for k in range(4)]
TOTAL = sum(n for _, _, n, _ in CHUNKS)
CFG = GenConfig(max_ops=8)


def test_ci_runs_at_least_500_graphs():
    assert TOTAL >= 500


def rule_classes(special: float) -> tuple[str, ...]:
    """The rewrite classes a run may use: approx rules promise a result within the tolerance on
    finite inputs only (x ** 0.5 -> sqrt(x) gives nan for -inf where pow gives +inf), so runs with
    NaN and inf among the inputs rewrite with exact rules alone; the others use exact and approx."""
    return ("exact",) if special else ("exact", "approx")


def run_chunk(backend: str, first: int, count: int, special: float) -> list[str]:
    failures = []
    for seed in range(first, first + count):
        g, _ = random_graph(seed, CFG)
        arrays = random_arrays(g, np.random.default_rng(seed), special)
        expected = evaluate(g, arrays)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN inputs may warn inside BLAS
            f = check(g, arrays, backend, expected, classes=rule_classes(special))
        if f is not None:
            failures.append(f"seed {seed} ({backend}, special {special}): {f}\n{print_graph(g)}")
    return failures


@pytest.mark.parametrize("backend, first, count, special", CHUNKS, ids=[f"{b}-{s}" for b, s, _, _ in CHUNKS])
def test_random_graphs_match_the_interpreter(backend, first, count, special):
    failures = run_chunk(backend, first, count, special)
    assert not failures, f"{len(failures)} of {count} graphs differ:\n\n" + "\n\n".join(failures[:3])


# the edge families (fusec/testing/edge_families.py): zero-size axes under every op kind, names that
# collide with literals, keywords, op names and C identifiers, every dtype feeding where and reductions
EDGE_CHUNKS = [(family, backend, first, count) for family in ("empty", "names", "dtypes")
               for backend, first, count in (("numpy", 300_000, 60), ("c", 310_000, 12))]


@pytest.mark.parametrize("family, backend, first, count", EDGE_CHUNKS, ids=[f"{f}-{b}" for f, b, _, _ in EDGE_CHUNKS])
def test_edge_families_behave(family, backend, first, count):
    from fusec.testing.edge_families import check_case, edge_case

    outcomes, failures = Counter(), []
    for seed in range(first, first + count):
        case = edge_case(family, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            status, problem = check_case(case, [backend], check)
        outcomes[status] += 1
        if problem is not None:
            failures.append(f"seed {seed} ({family}, {backend}): {problem}\n{case.source}")
    assert not failures, f"{len(failures)} of {count} cases misbehave:\n\n" + "\n\n".join(failures[:3])
    assert outcomes["ok"] >= count // 2  # most cases compile and run, so the comparison covers them
    if family != "dtypes":
        assert outcomes["refused"] > 0  # and some hit a refusal: the located-error path is covered too
