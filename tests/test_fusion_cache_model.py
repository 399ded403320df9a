"""The cost model's terms for where a kernel's data and its call come from: a program small enough
for the last-level cache to keep between runs, a call after a large kernel, and a read through a
transpose that strides on its transposed input only (fusion/machine.py, fusion/cost.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

import fusec
from fusec.fusion import MachineModel, explain, format_report, plan
from fusec.fusion.calibrate import (
    RESIDENT_PROBE_BYTES,
    RESIDENT_SIZE_PROBE_BYTES,
    ROUNDS,
    Calibration,
    _value,
    fit,
    predict,
    probes,
    time_probes,
)
from fusec.fusion.cost import group_cost, in_plan, plan_cost, risk_seconds
from fusec.fusion.machine import RESIDENT_FADE
from fusec.fusion.partition import Partition
from fusec.fusion.planner import prepare
from fusec.fusion.program import program_bytes, starts_cold

MiB = 1 << 20
MODEL = MachineModel(
    bandwidth_gbs=25.0, write_factor=1.2, cache_bandwidth_gbs=55.0, kernel_overhead_us=3.0, cold_call_us=9.0,
    fork_us=60.0, resident_bandwidth_gbs=50.0, resident_bytes=64 * MiB, op_ns={"exp": 0.2, "erf": 0.6, "tanh": 0.3},
    strided_cache_ns=0.9, strided_memory_ns=8.0, strided_compute_factor=7.0, matmul_gflops=250.0, matmul_knee=50.0,
    matmul_call_us=40.0, matmul_epilogue_us=16.0,
)


def _graph(src: str):
    return prepare(fusec.parse(src))


def test_a_program_the_cache_holds_moves_at_its_rate_and_a_large_one_at_memorys():
    assert MODEL.resident_share() == 0.0  # no program given: taken as too large
    assert MODEL.for_program(32 * MiB).resident_share() == 1.0
    assert MODEL.for_program(64 * MiB).resident_share() == 1.0
    assert MODEL.for_program(RESIDENT_FADE * 64 * MiB).resident_share() == 0.0
    half = MODEL.for_program(int(math.sqrt(RESIDENT_FADE) * 64 * MiB)).resident_share()
    assert half == pytest.approx(0.5)  # falls with the logarithm of the size
    small, large = MODEL.for_program(32 * MiB), MODEL.for_program(1 << 30)
    assert small.memory_gbs == pytest.approx(50.0) and large.memory_gbs == pytest.approx(25.0)
    # loads beyond fit_bytes and every store move at the cache's rate; in memory a store costs write_factor loads
    n, w = 64 * MiB, 32 * MiB
    assert small.memory_seconds(n, written=w) == pytest.approx(
        MODEL.fit_bytes / 55e9 + (n - w - MODEL.fit_bytes) / 50e9 + w / 50e9)
    assert large.memory_seconds(n, written=w) == pytest.approx(
        MODEL.fit_bytes / 55e9 + (n - w - MODEL.fit_bytes) / 25e9 + 1.2 * w / 25e9)
    assert small.for_program(32 * MiB) is small  # setting the same program again changes nothing


def test_without_a_measured_cache_the_model_is_unchanged():
    plain = replace(MODEL, resident_bandwidth_gbs=0.0, resident_bytes=0)
    assert plain.for_program(MiB).memory_seconds(64 * MiB, written=MiB) == plain.memory_seconds(64 * MiB, written=MiB)


def test_the_working_set_is_every_array_of_the_graph_and_the_planner_costs_with_it():
    g = _graph("graph s(x: f32[1024, 1024]) { y = exp(x) * 2.0\n return y }")
    assert program_bytes(g) == 3 * 4 * MiB  # x, exp(x) and y: the unfused program's arrays
    part = Partition(g, MODEL)
    assert part.model.program_bytes == program_bytes(g)
    ops = [n.name for n in g.ops()]
    fitted = group_cost(g, ops, MODEL.for_program(program_bytes(g)))
    assert part.cost(ops).seconds == pytest.approx(fitted.seconds)
    assert plan_cost(g, [ops], MODEL)[1] == pytest.approx(fitted.seconds)
    assert fitted.seconds < group_cost(g, ops, MODEL).seconds  # in the cache: faster than from memory


def test_explain_says_what_the_cache_does_for_the_graph():
    g = fusec.parse("graph s(x: f32[1024, 1024]) { y = exp(x) * 2.0\n return y }")
    report = explain(plan(g, model=MODEL))  # one kernel: the plan keeps x and y
    assert report["resident_share"] == 1.0 and report["memory_gbs"] == pytest.approx(50.0)
    assert "8 MiB" in format_report(report) and "last-level cache" in format_report(report)
    big = explain(plan(fusec.parse("graph s(x: f32[8192, 8192]) { y = exp(x) * 2.0\n return y }"), model=MODEL))
    assert big["resident_share"] == 0.0 and "last-level cache" not in format_report(big)


def test_a_kernel_after_a_large_one_pays_the_cold_call():
    g = _graph("graph s(x: f32[2048, 2048], b: f32[64]) {\n  m = mean(x, axis=1)\n  r = rsqrt(m + 1.0)\n"
               "  c = b * 2.0\n  d = c + 1.0\n  return r, d\n}")
    add = next(n.name for n in g.ops() if n.op == "add" and "m" in n.args)
    assert starts_cold(g, ["x"], MODEL)  # a graph input: last touched a run ago, after the other kernels
    assert starts_cold(g, ["m"], MODEL)  # made by a mean over 16 MiB: its kernel ran just before
    assert not starts_cold(g, [add], MODEL)  # made from small values only
    assert starts_cold(g, [], MODEL)
    warm = group_cost(g, ["r"], MODEL)
    cold = group_cost(g, ["r"], MODEL, cold=True)
    assert cold.seconds - warm.seconds == pytest.approx(MODEL.cold_call_us * 1e-6)
    assert group_cost(g, [add], MODEL).seconds - group_cost(g, [add], MODEL, cold=False).seconds == pytest.approx(
        MODEL.cold_call_us * 1e-6)


def test_a_whole_plan_judges_each_cold_call_from_the_kernel_that_runs_before_it():
    # rmsnorm's rsqrt of the rows' means, a kernel of its own: starts_cold guesses from its input
    # (made from small values: warm); in a plan, it is cold after the kernel that reduced the rows,
    # warm after the small kernel that added epsilon
    from fusec.fusion.cost import plan_kernel_costs

    g = prepare(fusec.load("examples/05_rmsnorm.fg"))  # ops: ms_mul ms y_add y_rsqrt y_mul y
    after_reduce = [["ms_mul", "ms", "y_add"], ["y_rsqrt"], ["y_mul", "y"]]
    after_add = [["ms_mul", "ms"], ["y_add"], ["y_rsqrt"], ["y_mul", "y"]]
    cold = dict((tuple(m), c) for m, c in plan_kernel_costs(g, after_reduce, MODEL))[("y_rsqrt",)]
    warm = dict((tuple(m), c) for m, c in plan_kernel_costs(g, after_add, MODEL))[("y_rsqrt",)]
    assert cold.cold and not warm.cold
    # (to a nanosecond: the second plan also keeps ms, 32 KiB more for the cache)
    assert cold.seconds - warm.seconds == pytest.approx(MODEL.cold_call_us * 1e-6, abs=1e-9)
    # the first kernel follows the last one of the run before (which reads x and writes y: cold)
    (_, first), *_ = plan_kernel_costs(g, after_add, MODEL)
    assert first.cold
    # given out of order, the kernels are costed in the order the plan runs them
    assert plan_kernel_costs(g, after_add[::-1], MODEL) == plan_kernel_costs(g, after_add, MODEL)
    assert plan_cost(g, after_add, MODEL)[1] == pytest.approx(sum(c.seconds for _, c in plan_kernel_costs(g, after_add, MODEL)))


def test_a_read_through_a_transpose_strides_on_the_transposed_input_only():
    src = "graph t(e: f32[2048, 2048], w: f32[2048, 2048]) {{ y = {}\n return y }}"
    alone = _graph(src.format("transpose(e, perm=[1, 0])"))
    added = _graph(src.format("transpose(e, perm=[1, 0]) + w"))
    model = MODEL.for_program(1 << 30)
    a = group_cost(alone, [n.name for n in alone.ops()], model)
    b = group_cost(added, [n.name for n in added.ops()], model)
    assert a.strided and b.strided
    # the add streams w in and y out (as the copy streams its output): w's load is more, and the
    # add itself, which runs in the strided loop
    n = 2048 * 2048
    extra = model.memory_seconds(8 * n, 2, 4 * n) - model.memory_seconds(4 * n, 2, 4 * n)
    extra += model.compute_seconds(n) * model.strided_compute_factor
    assert b.seconds - a.seconds == pytest.approx(extra, rel=1e-6)
    # erf moved into the strided loop gets the tile staged (codegen/c_stage.py): it runs at its
    # vector rate, and overlaps the copy's memory as a contiguous kernel's arithmetic does
    erf = _graph("graph t(x: f32[2048, 2048]) { y = transpose(erf(x), perm=[1, 0])\n return y }")
    c = group_cost(erf, [n.name for n in erf.ops()], model)
    moves, comp = a.seconds - model.overhead_seconds(2, cold=True), model.op_seconds("erf", 2048 * 2048, 1)
    assert c.seconds - a.seconds == pytest.approx(
        max(moves, comp) + model.overlap_loss * min(moves, comp) - moves + model.math_call_us * 1e-6, rel=1e-6)


def test_the_strided_guard_charges_the_kernels_moved_into_the_loop():
    g = _graph("graph t(e: f32[2048, 2048], w: f32[2048, 2048]) { y = transpose(e, perm=[1, 0]) + w\n return y }")
    part = Partition(g, MODEL)
    t, y = [n.name for n in g.ops()]
    fused, apart = part.cost([t, y]), [part.cost([t]), part.cost([y])]
    assert apart[0].strided and not apart[1].strided
    assert risk_seconds(fused, apart, part.model) == pytest.approx(MODEL.margin * apart[1].seconds)


def test_the_fit_recovers_the_cache_and_the_cold_call_from_timings_the_model_predicts():
    measured = {pr.name: predict(MODEL, pr.graph(), pr.cold) for pr in probes()}
    start = MachineModel(source="calibrated by a test")  # no cache figure: the fit starts from one that holds its probe
    cal = fit(Calibration(start, "generated C probes"), measured)
    for param in ("resident_bandwidth_gbs", "resident_bytes", "cold_call_us", "kernel_overhead_us",
                  "bandwidth_gbs", "write_factor", "fork_us", "cache_bandwidth_gbs", "strided_memory_ns"):
        assert _value(cal.model, param) == pytest.approx(_value(MODEL, param), rel=5e-3), param
    assert isinstance(cal.model.resident_bytes, int)


def test_a_cache_smaller_than_the_resident_probe_is_fitted_at_the_probes_size():
    # a 128 MiB read that finds little of itself in the cache (the host's other machines use it):
    # the fit keeps the rate the resident probe measured and puts the cache at that probe's size,
    # instead of running off to "1 MiB at 100000 GB/s"
    small = replace(MODEL, resident_bytes=RESIDENT_PROBE_BYTES // 4)
    measured = {pr.name: predict(small, pr.graph(), pr.cold) for pr in probes()}
    measured["resident"] = predict(MODEL, next(pr for pr in probes() if pr.name == "resident").graph(), "")
    cal = fit(Calibration(MachineModel(source="calibrated by a test"), "generated C probes"), measured)
    assert cal.model.resident_bytes == RESIDENT_PROBE_BYTES
    assert cal.model.resident_bandwidth_gbs == pytest.approx(MODEL.resident_bandwidth_gbs, rel=5e-3)


def test_a_cache_that_keeps_all_of_the_size_probe_is_fitted_at_that_probes_size():
    # a 128 MiB read that runs all at the cache's rate says only that the cache keeps 128 MiB or
    # more: the fit stops there, instead of running off to 1 TiB
    huge = replace(MODEL, resident_bytes=1 << 40)
    measured = {pr.name: predict(huge, pr.graph(), pr.cold) for pr in probes()}
    cal = fit(Calibration(MachineModel(source="calibrated by a test"), "generated C probes"), measured)
    size_probe = next(pr for pr in probes() if pr.name == "resident_size").graph()
    assert program_bytes(size_probe) == RESIDENT_SIZE_PROBE_BYTES + 32 * 1024  # its array and its sums
    assert cal.model.resident_bytes == pytest.approx(program_bytes(size_probe), rel=1e-4)  # rounded to 5 digits
    assert cal.model.resident_bandwidth_gbs == pytest.approx(MODEL.resident_bandwidth_gbs, rel=5e-3)


def test_the_short_probes_are_timed_in_rounds_and_the_memory_ones_once():
    plist = probes()
    calls: list[str] = []

    def timer(pr):
        calls.append(pr.name)
        return 1e-3 * (len(calls) % 3 + 1)

    measured = time_probes(plist, timer, ROUNDS)
    assert set(measured) == {pr.name for pr in plist}
    for pr in plist:
        rounds = pr.jumpy_rounds or ROUNDS
        assert calls.count(pr.name) == (1 if pr.cold in ("memory", "large") else rounds), pr.name
    assert ROUNDS >= 3
    # a call's cost jumps between two levels: more rounds, and their mean
    assert {pr.name for pr in plist if pr.jumpy_rounds > ROUNDS} >= {"call", "call_cold", "fork"}
    levels = iter([2e-6, 4.6e-6] * 10)
    jumpy = time_probes([pr for pr in plist if pr.name == "call"], lambda pr: next(levels), ROUNDS)
    assert jumpy["call"] == pytest.approx((5 * 2e-6 + 4 * 4.6e-6) / 9)
    once = time_probes(plist, timer, 1)  # --quick: one round of everything
    assert all(once[pr.name] for pr in plist)


def test_the_machine_file_accepts_no_cache_and_keeps_its_size_whole(tmp_path):
    from fusec.fusion import load_model, save_model

    path = save_model(replace(MODEL, resident_bytes=70 * MiB), tmp_path / "machine.json")
    loaded = load_model(path)
    assert loaded.resident_bytes == 70 * MiB and isinstance(loaded.resident_bytes, int)
    none = MachineModel.from_dict({"resident_bandwidth_gbs": 0, "resident_bytes": 0, "cold_call_us": 0})
    assert none.resident_share() == 0.0


def test_time_plans_warm_runs_each_plan_once_more_before_its_timed_run(monkeypatch):
    import fusec.kernel_timing as kt
    from fusec.runtime.build import NoCompilerError, find_compiler

    try:
        find_compiler()
    except NoCompilerError:
        pytest.skip("no C compiler")
    runs: list[str] = []
    real_build = kt.build

    def counting_build(*args, **kwargs):
        kernels = real_build(*args, **kwargs)
        for k in kernels:
            run = k.run
            k.run = lambda *a, _run=run, _name=k.outputs[0]: (runs.append(_name), _run(*a))[1]
        return kernels

    monkeypatch.setattr(kt, "build", counting_build)
    g = prepare(fusec.parse("graph t(x: f32[64, 32]) { e = exp(x)\n s = sum(e, axis=1)\n return s }"))
    e, s = (n.name for n in g.ops())
    plans = [kt.plan_for(g, [[e], [s]]), kt.plan_for(g, [[e, s]])]
    kt.time_plans(plans, repeats=2)
    cold = len(runs)
    runs.clear()
    timings = kt.time_plans(plans, repeats=2, warm=True)
    # the warm-up before timing (3 kernels), then per round each plan twice: 3 + 2 * 2 * 3
    assert cold == 3 + 2 * 3 and len(runs) == 3 + 2 * 2 * 3
    assert all(k > 0 for t in timings for k in t.kernels)
    # each round runs the plans in a new order, the same for the same seed: what the plan run
    # before leaves behind must not land on one plan in every round
    unfused = kt.plan_for(g, [[e], [s]])
    plans = [unfused] + [kt.plan_for(g, [[e, s]]) for _ in range(5)]
    runs.clear()
    kt.time_plans(plans, repeats=6, seed=1)
    per_run = 2 + 5  # kernels: the warm-up runs each once, and so does each round
    rounds = [runs[per_run * (r + 1)] for r in range(6)]  # what each round ran first: e if the unfused plan
    assert "e" in rounds and "s" in rounds  # the unfused plan ran first in some rounds, not in all
    again = runs[:]
    runs.clear()
    kt.time_plans(plans, repeats=6, seed=1)
    assert runs == again


def test_a_whole_plan_is_costed_for_its_own_arrays():
    # rmsnorm's arrays: x, y and two more of its size unfused (128 MiB); fused, x and y (64 MiB).
    # With a cache that holds 64 MiB, the fused plan's kernels run at the cache's rate and the
    # unfused plan's at a share of it: auto, explain and plan_cost cost each plan for its own arrays
    from fusec.fusion.program import plan_bytes

    g = fusec.load("examples/05_rmsnorm.fg")
    p = plan(g, model=MODEL)
    graph = p.graph
    fused = [grp.nodes for grp in p.groups]
    unfused = [[n.name] for n in graph.ops()]
    assert plan_bytes(graph, fused) == 64 * MiB + 4 * 1024  # x, y and the weights, a row of 1024
    assert plan_bytes(graph, unfused) == program_bytes(graph)
    assert p.model.program_bytes == plan_bytes(graph, fused)
    assert plan_cost(graph, fused, MODEL)[1] == pytest.approx(
        sum(group_cost(graph, m, MODEL.for_program(plan_bytes(graph, fused))).seconds for m in fused))
    part = Partition(graph, MODEL)
    assert part.plan_seconds(fused) < sum(part.cost(m).seconds for m in fused)  # the searches' cost is higher
    # the same share: the searches' costs, with each cold call judged from the kernel before (in_plan)
    assert part.plan_seconds(unfused) == pytest.approx(sum(c.seconds for c in in_plan([part.cost(m) for m in unfused], MODEL)))
    report = explain(p)
    assert report["predicted_ms_fused"] == pytest.approx(plan_cost(graph, fused, MODEL)[1] * 1e3, rel=1e-6)


def test_the_cache_probe_reads_what_the_kernel_before_it_just_wrote():
    # the probe's graph is its producer (a kernel of its own, run just before) and the read; the
    # model predicts the read as the plan's second kernel, its cold call judged from the producer
    from fusec.fusion.calibrate import predict, probes
    from fusec.fusion.cost import plan_kernel_costs

    pr = next(p for p in probes() if p.name == "cached")
    assert pr.cold == "producer" and pr.jumpy_rounds > 0
    g = pr.graph()
    ops = [n.name for n in g.ops()]
    assert [g.node(n).op for n in ops] == ["mul", "sum"]
    model = MODEL.for_program(program_bytes(g))
    (_, producer), (_, read) = plan_kernel_costs(g, [ops[:1], ops[1:]], model)
    assert predict(MODEL, g, "producer") == pytest.approx(read.seconds)
    assert read.cold == (producer.nbytes > MODEL.fit_bytes)
    # all its 4 MiB load at the cache's rate: a slower cache predicts a slower read, by the bytes' time
    slower = replace(MODEL, cache_bandwidth_gbs=MODEL.cache_bandwidth_gbs / 2)
    assert predict(slower, g, "producer") - predict(MODEL, g, "producer") == pytest.approx(
        read.bytes_read / (slower.cache_bandwidth_gbs * 1e9) - read.bytes_read / (MODEL.cache_bandwidth_gbs * 1e9), rel=0.05)


def test_a_partition_whose_kernels_depend_on_each_other_in_a_cycle_is_refused():
    # {a, c} and {b}: b reads a, and c reads b, so neither kernel can run first (program.run_order)
    from fusec.errors import FusecError
    from fusec.kernel_timing import plan_for

    g = prepare(fusec.parse("graph t(x: f32[64]) { a = x * 2.0\n b = a + 1.0\n c = b * a\n return c }"))
    with pytest.raises(FusecError, match="depend on each other in a cycle"):
        plan_for(g, [["a", "c"], ["b"]])
