"""Rewrite speed: the 1,000-node acceptance graph, the transformer block, and one rule's verification.

Run: pytest bench/bench_rewrite.py --benchmark-only  (figures go in the report, not in tests)
"""

from __future__ import annotations

from pathlib import Path

import pytest

import fusec
from fusec.ir import F32, Graph
from fusec.rewrite import rewrite, rule_named, standard_rules, verify_rule

ROOT = Path(__file__).resolve().parent.parent


def chain_graph(n: int) -> Graph:
    """A deep chain that gives most rule families something to do: x*1, --x, x-c, x/c, x*y + x*y."""
    g = Graph("chain")
    x = g.add_input("x", F32, (8, 8))
    y = g.add_input("y", F32, (8, 8))
    cur, i = x, 0
    while len(g) < n:
        k = i % 6
        if k == 0:
            cur = g.add("mul", cur, 1.0)
        elif k == 1:
            cur = g.add("add", g.add("mul", cur, 2.0), y)
        elif k == 2:
            cur = g.add("neg", g.add("neg", cur))
        elif k == 3:
            cur = g.add("sub", cur, 3.0)
        elif k == 4:
            cur = g.add("div", cur, 4.0)
        else:
            cur = g.add("add", g.add("mul", cur, y), g.add("mul", cur, y))
        i += 1
    g.set_outputs([cur])
    return g


@pytest.mark.parametrize("n", [1000, 4000])
def test_rewrite_chain(benchmark, n):
    g = chain_graph(n)
    standard_rules()  # parse the library outside the timing
    result = benchmark(rewrite, g)
    assert result.converged


def test_rewrite_transformer_block(benchmark):
    g = fusec.load(ROOT / "examples" / "09_transformer_block.fg")
    result = benchmark(rewrite, g)
    assert result.converged


def test_verify_one_rule_200_cases(benchmark):
    rule = rule_named("gelu_tanh")
    result = benchmark.pedantic(verify_rule, args=(rule,), kwargs={"cases": 200}, rounds=3, iterations=1)
    assert result.passed
