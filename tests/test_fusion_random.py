"""Random graphs: every policy's plan keeps the contract, stays acyclic, names a reason for every cut
edge, and computes what the interpreter computes when its kernels run one after another."""

from __future__ import annotations

import pytest
from fusion_helpers import check_plan, check_semantics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusec.errors import FusecError
from fusec.fusion import POLICIES, MachineModel, explain, plan
from fusec.inputs import random_inputs
from fusec.ir import F32, Graph

SHAPES = [(4, 6), (6,), (4, 1), (6, 4), (1, 6), (4, 6, 2)]
UNARY = ["exp", "neg", "abs", "tanh", "sigmoid", "relu"]
BINARY = ["add", "mul", "sub", "maximum", "div"]
REDUCE = ["sum", "max", "mean", "min"]


@pytest.fixture(autouse=True)
def _default_model(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEC_CACHE_DIR", str(tmp_path / "cache"))


def _try_add(g: Graph, op: str, *args, **attrs) -> str | None:
    try:
        return g.add(op, *args, **attrs)
    except FusecError:
        return None  # shapes that do not fit this op: draw again


@st.composite
def random_graphs(draw) -> Graph:
    g = Graph("random")
    values = []
    for i in range(draw(st.integers(1, 3))):
        values.append(g.add_input(f"x{i}", F32, draw(st.sampled_from(SHAPES))))
    n_ops = draw(st.integers(1, 16))
    attempts = 0
    while len(g.ops()) < n_ops and attempts < 80:
        attempts += 1
        pick = st.sampled_from(values)
        family = draw(st.sampled_from(["unary", "binary", "binary", "scalar", "reduce", "layout", "matmul",
                                       "where", "broadcast"]))
        a = draw(pick)
        shape = g.type_of(a).shape
        if family == "unary":
            v = _try_add(g, draw(st.sampled_from(UNARY)), a)
        elif family == "binary":
            v = _try_add(g, draw(st.sampled_from(BINARY)), a, draw(pick))
        elif family == "scalar":
            v = _try_add(g, draw(st.sampled_from(BINARY)), a, draw(st.sampled_from([0.5, 2.0, -1.0])))
        elif family == "reduce":
            # (rank 0 only with axis=None: the type rule accepts axis=0 on a scalar, NumPy does not)
            axis = draw(st.sampled_from([None, -1, 0])) if shape else None
            v = _try_add(g, draw(st.sampled_from(REDUCE)), a, axis=axis, keepdims=draw(st.booleans()))
        elif family == "where":
            b = draw(pick)
            cond = _try_add(g, "gt", a, b)
            v = _try_add(g, "where", cond, a, b) if cond else None
        elif family == "matmul":
            v = _try_add(g, "matmul", a, draw(pick))
        elif family == "broadcast":
            v = _try_add(g, "broadcast_to", a, shape=(3,) + tuple(shape)) if len(shape) < 3 else None
        else:
            kind = draw(st.sampled_from(["transpose", "reshape", "slice", "expand_dims", "squeeze", "concat"]))
            if kind == "transpose":
                v = _try_add(g, "transpose", a)
            elif kind == "reshape":
                v = _try_add(g, "reshape", a, shape=(-1,))
            elif kind == "slice":
                v = _try_add(g, "slice", a, axis=0, start=1) if shape else None
            elif kind == "expand_dims":
                v = _try_add(g, "expand_dims", a, axis=0) if len(shape) < 3 else None
            elif kind == "squeeze":
                v = _try_add(g, "squeeze", a)
            else:
                v = _try_add(g, "concat", a, draw(pick), axis=-1) if shape else None
        if v is not None:
            values.append(v)
    ops = [n.name for n in g.ops()]
    if not ops:
        g.add("exp", values[0])
        ops = [n.name for n in g.ops()]
    sinks = [n for n in ops if not g.consumers(n)]
    extra = draw(st.lists(st.sampled_from(ops), max_size=2, unique=True))
    g.set_outputs(list(dict.fromkeys(sinks + extra)))
    g.verify()
    return g


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(random_graphs())
def test_random_graphs_plan_legally_under_every_policy(g):
    arrays = random_inputs(g, seed=0)
    unfused_ms = None
    for policy in ("auto", *POLICIES):
        p = plan(g, policy)
        check_plan(p)
        check_semantics(p, arrays)
        report = explain(p)
        assert report["bytes_fused"] <= report["bytes_unfused"]
        if policy == "unfused":
            unfused_ms = report["predicted_ms_fused"]
    assert explain(plan(g))["predicted_ms_fused"] <= unfused_ms + 1e-9  # never a negative optimization


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(), st.sampled_from([
    MachineModel(bandwidth_gbs=1000.0, peak_gflops=0.5, kernel_overhead_us=0.01),  # arithmetic is dear
    MachineModel(bandwidth_gbs=1.0, peak_gflops=10000.0, kernel_overhead_us=1000.0),  # kernels are dear
]))
def test_random_graphs_under_extreme_machines(g, model):
    for policy in POLICIES:
        p = plan(g, policy, model=model)
        check_plan(p)
