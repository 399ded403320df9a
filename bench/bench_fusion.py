"""Planner speed: how long plan() takes on the examples and on a 500-op graph, per policy.

Run: pytest bench/bench_fusion.py --benchmark-only  (figures go in the report, not in tests)
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import fusec
from fusec.fusion import MachineModel, plan
from fusec.ir import F32, Graph

ROOT = Path(__file__).resolve().parent.parent
MODEL = MachineModel()  # the defaults, so figures do not depend on a calibration


def random_dag(n: int, seed: int = 0) -> Graph:
    """n elementwise ops, each reading one or two of the ten values before it: many diamonds."""
    rng = random.Random(seed)
    g = Graph("dag")
    values = [g.add_input("x", F32, (64,))]
    for i in range(n):
        a, b = rng.choice(values[-10:]), rng.choice(values[-10:])
        values.append(g.add("add", a, b) if i % 3 else g.add("exp", a))
    g.set_outputs([v for v in values[1:] if not g.consumers(v)])
    return g


@pytest.mark.parametrize("policy", ["greedy", "postdom", "table", "auto"])
def test_plan_transformer_block(benchmark, policy):
    g = fusec.load(ROOT / "examples" / "09_transformer_block.fg")
    p = benchmark(plan, g, policy, MODEL)
    assert p.kernels >= 1


@pytest.mark.parametrize("policy", ["greedy", "postdom", "table", "auto"])
def test_plan_500_op_dag(benchmark, policy):
    g = random_dag(500)
    p = benchmark.pedantic(plan, args=(g, policy, MODEL), rounds=3, iterations=1)
    assert p.kernels >= 1
