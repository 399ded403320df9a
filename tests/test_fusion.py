"""The fusion planner on the examples and on hand-made adversarial graphs."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES, small_sizes
from fusion_helpers import check_plan, check_semantics

import fusec
from fusec.errors import FusecError
from fusec.fusion import (
    MAX_GROUP_OPS,
    POLICIES,
    ContractViolation,
    MachineModel,
    analyze,
    check_expectations,
    explain,
    plan,
)
from fusec.fusion.kinds import FUSION_TABLE, NEVER
from fusec.inputs import random_inputs
from fusec.ir import F32, Graph

DEFAULT_KERNELS = {"chain": 1, "gelu": 1, "softmax": 2, "layernorm": 2, "rmsnorm": 2, "mlp": 1, "adam": 1}
EXACT = {"chain", "gelu", "mlp", "adam"}


@pytest.fixture(autouse=True)
def _default_model(tmp_path, monkeypatch):
    """Plans in these tests use the default machine model, never a calibration on this machine."""
    monkeypatch.setenv("FUSEC_CACHE_DIR", str(tmp_path / "cache"))


def example(stem: str):
    return next(p for p in EXAMPLES if p.stem.endswith(stem))


@pytest.mark.parametrize("name", sorted(DEFAULT_KERNELS))
def test_acceptance_kernel_counts_at_default_sizes(name):
    report = explain(plan(fusec.load(example(name))))
    if name in EXACT:
        assert report["kernels"] == DEFAULT_KERNELS[name]
    else:
        assert 1 <= report["kernels"] <= DEFAULT_KERNELS[name]
    assert report["bytes_fused"] < report["bytes_unfused"]
    assert report["predicted_ms_fused"] < report["predicted_ms_unfused"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("policy", ["auto", *POLICIES])
def test_every_policy_on_every_example_keeps_the_contract_and_the_semantics(path, policy):
    g = fusec.load(path, sizes=small_sizes(path))
    p = plan(g, policy)
    check_plan(p)
    check_semantics(p, random_inputs(g, seed=1))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_fuse_and_hold_their_assertions(path):
    from fusec.pipeline import compile_stages

    stages = compile_stages(path, stop_after="groups")  # the plan compile builds: after rewriting
    g, p = stages.graph, stages.plan
    report = explain(p)
    ops = sum(len(grp["ops"]) for grp in report["groups"])
    assert report["bytes_fused"] < report["bytes_unfused"] or ops == 1  # gelu's rewrite leaves one op
    assert len(check_expectations(p)) == len(g.expectations)
    for key in ("kernels", "groups", "not_fused", "bytes_unfused", "bytes_fused", "predicted_ms_unfused",
                "predicted_ms_fused"):
        assert key in report
    for grp in report["groups"]:
        assert grp["ops"] and grp["outputs"] and grp["kind"]
    for nf in report["not_fused"]:
        assert nf["producer"] and nf["consumer"] and nf["reason"]


def test_plan_does_not_touch_its_graph_and_expands_composites():
    g = fusec.parse("graph s(x: f32[8, 16]) { y = softmax(x, axis=-1)\n return y }")
    before = str(g)
    p = plan(g)
    assert str(g) == before
    assert {n.op for n in p.graph.ops()} == {"max", "sub", "exp", "sum", "div"}
    assert p.graph.outputs == ["y"]  # the composite's name survives its expansion
    assert p.kernels == 1


def test_mlp_is_one_matmul_kernel_with_its_epilogue():
    p = plan(fusec.load(example("mlp")))
    (grp,) = p.groups
    assert grp.kind == "matmul"
    assert [p.graph.node(n).op for n in grp.nodes] == ["matmul", "add", "gelu"]


def test_adam_is_one_kernel_with_three_outputs():
    p = plan(fusec.load(example("adam")))
    (grp,) = p.groups
    assert sorted(grp.outputs) == ["m_new", "p_new", "v_new"]
    assert sorted(grp.inputs) == ["g", "m", "p", "v"]


def test_siblings_that_share_an_input_share_a_kernel():
    g = fusec.parse("graph s(x: f32[64, 64]) { a = exp(x)\n b = x * 3\n return a, b }")
    for policy in ("greedy", "postdom", "table"):
        p = plan(g, policy)
        assert p.kernels == 1, policy
        assert sorted(p.groups[0].outputs) == ["a", "b"]


def test_siblings_with_different_iteration_spaces_stay_apart():
    g = fusec.parse("graph s(x: f32[32, 64]) { a = exp(x)\n b = transpose(x)\n return a, b }")
    p = plan(g)
    check_plan(p)
    assert p.kernels == 2


def test_a_reduction_and_an_elementwise_sibling_share_one_pass():
    g = fusec.parse("graph s(x: f32[64, 64]) { a = exp(x)\n b = sum(x, axis=1)\n return a, b }")
    p = plan(g)
    check_plan(p)
    assert p.kernels == 1 and p.groups[0].kind == "reduce"


def test_a_narrow_column_reduction_does_not_take_an_expensive_sibling():
    # a sum down 4 columns walks memory with a stride; exp inside it would run at the strided rate
    g = fusec.parse("graph s(x: f32[65536, 4]) { a = exp(x)\n b = sum(x, axis=0)\n return a, b }")
    p = plan(g)
    check_plan(p)
    assert p.kernels == 2
    (col,) = [grp for grp in p.groups if grp.kind == "reduce"]
    assert col.nodes == ["b"]


def test_a_wide_column_reduction_takes_its_sibling():
    # a sum down 1024 columns streams its rows into accumulators (loops/interchange.py): exp joins
    # it contiguously, and x is read once for both
    g = fusec.parse("graph s(x: f32[1024, 1024]) { a = exp(x)\n b = sum(x, axis=0)\n return a, b }")
    p = plan(g)
    check_plan(p)
    assert p.kernels == 1


def test_reduce_diamond_is_one_kernel():
    # x -> e -> {sum, div}: the sum post-dominates nothing, the div joins both branches
    g = fusec.parse("graph d(x: f32[32, 128]) { e = exp(x)\n s = sum(e, axis=-1, keepdims=true)\n y = e / s\n return y }")
    for policy in ("greedy", "postdom"):
        p = plan(g, policy)
        check_plan(p)
        assert p.kernels == 1


CYCLE_TRAP = """graph trap(x: f32[8, 12]) {
  a = exp(x)
  t = transpose(a) * 2
  y = a + transpose(t)
  return y
}"""


def test_diamond_through_an_unfusable_middle_never_makes_a_cycle():
    # a feeds y directly and through the transposes; fusing a with y would put the transposes both
    # before and after the kernel.
    g = fusec.parse(CYCLE_TRAP)
    for policy in ("auto", *POLICIES):
        p = plan(g, policy)
        check_plan(p)
        check_semantics(p, random_inputs(g))
        assert p.group_of("a") is not p.group_of("y")


def test_force_fusing_into_a_cycle_is_refused_with_the_rule():
    g = fusec.parse(CYCLE_TRAP)
    with pytest.raises(FusecError, match="cycle"):
        plan(g, force_fuse=[("a", "y")])


def test_matmul_diamond_keeps_the_matmul_whole():
    g = fusec.parse("graph d(x: f32[16, 16], w: f32[16, 16]) { a = x * 2\n m = a @ w\n y = a + m\n return y }")
    p = plan(g)
    check_plan(p)
    assert p.group_of("m") is p.group_of("y")  # the residual add is the matmul's epilogue
    assert p.group_of("a") is not p.group_of("m")  # a matmul has no prologue
    reasons = {(nf.producer, nf.consumer): nf.rule for nf in p.not_fused}
    assert reasons[("a", "m")] == "table"
    assert reasons[("a", "y")] == "matmul-prologue"


def test_an_expensive_producer_is_never_duplicated_into_its_consumers():
    src = """graph dup(x: f32[32, 64], w: f32[64, 48]) {
      m = x @ w
      s = sum(x, axis=-1, keepdims=true)
      y1 = gelu(m)
      y2 = m * 3
      z1 = x / s
      z2 = sum(x * s, axis=-1)
      return y1, y2, z1, z2
    }"""
    g = fusec.parse(src)
    for policy in ("auto", *POLICIES):
        p = plan(g, policy)
        check_plan(p)  # every op, matmul and reductions included, sits in exactly one group
        if policy != "unfused":
            assert {"y1", "y2"} <= set(p.group_of("m").nodes)  # both consumers read the one matmul kernel's tile


def test_group_size_is_bounded():
    g = Graph("long")
    v = g.add_input("x", F32, (64,))
    for i in range(2 * MAX_GROUP_OPS + 5):
        v = g.add("add" if i % 2 else "mul", v, 1.5)
    g.set_outputs([v])
    p = plan(g)
    check_plan(p)
    assert all(len(grp.nodes) <= MAX_GROUP_OPS for grp in p.groups)
    assert p.kernels == 3
    assert {nf.rule for nf in p.not_fused} == {"size"}


def test_forbid_keeps_two_ops_apart_and_explains_it():
    g = fusec.load(example("softmax"), sizes=small_sizes(example("softmax")))
    p = plan(g, forbid=[("e", "s")])
    check_plan(p)
    assert p.group_of("e") is not p.group_of("s")
    (nf,) = [nf for nf in p.not_fused if (nf.producer, nf.consumer) == ("e", "s")]
    assert nf.rule == "forbidden" and "--forbid e,s" in nf.reason


def test_force_fuse_overrides_the_cost_model():
    # a tiny vector op fused into a big elementwise kernel is recomputed at every point; forcing it
    # is legal, and the report shows what the model predicts instead
    g = fusec.parse("graph f(x: f32[4096, 256], b: f32[256]) { c = exp(b) * 3\n y = x + c\n return y }")
    p = plan(g, force_fuse=["c,y"])
    check_plan(p)
    assert p.group_of("c") is p.group_of("y")


def test_force_and_forbid_reject_bad_names():
    g = fusec.load(example("softmax"), sizes=small_sizes(example("softmax")))
    with pytest.raises(FusecError, match="no op named 'nope'"):
        plan(g, force_fuse=[("nope", "s")])
    with pytest.raises(FusecError, match="is an input"):
        plan(g, forbid=[("x", "s")])
    with pytest.raises(FusecError, match="two op names"):
        plan(g, forbid=["e"])
    with pytest.raises(FusecError, match="both forced together and forbidden"):
        plan(g, force_fuse=["e,s"], forbid=["s,e"])
    with pytest.raises(FusecError, match="unknown fusion policy"):
        plan(g, "fastest")


def test_unprofitable_merges_carry_the_numbers():
    # with a huge per-kernel cost nothing changes; with free kernels and slow arithmetic, recomputing
    # a small producer at every point of a big consumer costs more than it saves
    g = fusec.parse("graph r(x: f32[2048, 512], b: f32[512]) { c = tanh(b) * 3\n y = x + c\n return y }")
    slow = MachineModel(bandwidth_gbs=1000.0, peak_gflops=0.5, kernel_overhead_us=0.01)
    p = plan(g, "greedy", model=slow)
    check_plan(p)
    assert {nf.rule for nf in p.not_fused} == {"unprofitable"}
    (nf,) = [nf for nf in p.not_fused if nf.consumer == "y"]
    assert "fused" in nf.reason and "apart" in nf.reason and "ms" in nf.reason
    assert all("fused" in nf.reason and "apart" in nf.reason for nf in p.not_fused)


def test_auto_is_never_predicted_slower_than_any_policy():
    for path in EXAMPLES:
        g = fusec.load(path, sizes=small_sizes(path))
        best = explain(plan(g))["predicted_ms_fused"]
        for policy in POLICIES:
            assert best <= explain(plan(g, policy))["predicted_ms_fused"] + 1e-9


def test_the_table_is_complete_and_matches_the_contract():
    kinds = ["elementwise", "broadcast", "reduce", "layout", "opaque"]
    assert set(FUSION_TABLE) == {(p, c) for p in kinds for c in kinds}
    # every "never" really is illegal: a matmul with a prologue, a reduce with a layout op, ...
    g = fusec.parse("""graph t(x: f32[8, 8], w: f32[8, 8]) {
      a = exp(x)
      m = a @ w
      s = sum(x, axis=-1, keepdims=true)
      r = transpose(s)
      return m, r
    }""")
    assert FUSION_TABLE[("elementwise", "opaque")][0] == NEVER
    with pytest.raises(ContractViolation, match="prologue"):
        analyze(g, ["a", "m"])
    assert FUSION_TABLE[("reduce", "layout")][0] == NEVER
    with pytest.raises(ContractViolation):
        analyze(g, ["s", "r"])


def test_contract_rejects_misaligned_epilogues_and_mixed_spaces():
    g = fusec.parse("""graph c(x: f32[6, 6], y: f32[6, 4]) {
      s = sum(x, axis=1)
      bad = x / s
      t = sum(y, axis=1, keepdims=true)
      return bad, t
    }""")
    with pytest.raises(ContractViolation) as err:
        analyze(g, ["s", "bad"])  # s[j] at (i, j): row i would need row j's sum
    assert err.value.rule == "reduce-alignment"
    with pytest.raises(ContractViolation) as err:
        analyze(g, ["s", "t"])
    assert err.value.rule == "reduce-space"
    shape = analyze(g, ["t"])
    assert shape.kind == "reduce" and shape.axes == (1,)


def test_check_expectations_reports_the_assert_location():
    src = "graph c(x: f32[8, 8]) {\n  y = exp(x) + 1\n  assert kernels == 2\n  return y\n}"
    g = fusec.parse(src, filename="c.fg")
    with pytest.raises(FusecError) as err:
        check_expectations(plan(g))
    text = str(err.value)
    assert text.startswith("c.fg:3:10: error: expected kernels == 2, but the ")
    assert "has 1" in text and "^" in text


def test_reports_are_deterministic():
    g = fusec.load(example("attention"), sizes=small_sizes(example("attention")))
    assert explain(plan(g)) == explain(plan(g))


def test_the_docs_show_the_table_the_planner_uses():
    from conftest import ROOT

    from fusec.fusion.kinds import table_markdown

    assert table_markdown() in (ROOT / "docs" / "fusion.md").read_text()


def test_layout_ops_are_index_maps_inside_elementwise_kernels():
    g = fusec.parse("graph t(x: f32[8, 12], y: f32[12, 8]) { a = transpose(x)\n b = a + y\n c = transpose(y)\n return b, c }")
    p = plan(g)
    check_plan(p)
    assert p.group_of("a") is p.group_of("b") and p.group_of("a").kind == "elementwise"
    assert p.group_of("c").kind == "layout" and p.group_of("c").nodes == ["c"]  # [8, 12]: another space


def test_dead_ops_are_not_planned():
    g = fusec.parse("graph d(x: f32[8]) { unused = exp(x)\n y = x * 2\n return y }")
    p = plan(g)
    assert "unused" not in p.graph and p.kernels == 1
