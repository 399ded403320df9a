"""The cost model's terms (fusion/cost.py) and `fusec calibrate`'s fit (fusion/calibrate.py): each
constant is recovered from probe timings the model itself produced, the terms behave as the C
backend does (tabulated broadcast values, one-tile kernels without a fork, strided loops, no
bandwidth cliff), and the machine file keeps the per-op costs."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

import fusec
from fusec.errors import FusecError
from fusec.fusion import MachineModel, load_model, save_model
from fusec.fusion.calibrate import Calibration, _value, fit, predict, probes
from fusec.fusion.cost import TABLE_ELEMENTS, group_cost
from fusec.fusion.partition import Partition
from fusec.fusion.planner import prepare
from fusec.ir.ops import OPS

TRUE = MachineModel(
    bandwidth_gbs=23.0, write_factor=1.6, cache_bandwidth_gbs=47.0, kernel_overhead_us=1.3, fork_us=2.5,
    op_ns={"exp": 0.55, "erf": 1.4, "tanh": 0.9}, strided_cache_ns=2.2, strided_memory_ns=31.0,
    strided_op_ns={"exp": 9.0, "erf": 12.0, "tanh": 7.0}, strided_compute_factor=12.0 / 1.4,  # the median ratio
    column_factor=1.3, math_call_us=1.4, matmul_gflops=140.0, matmul_knee=40.0, matmul_knee_mn=12.0, matmul_call_us=12.0, matmul_epilogue_us=4.0,
)


def test_the_fit_recovers_every_constant_from_timings_the_model_predicts():
    measured = {pr.name: predict(TRUE, pr.graph(), pr.cold) for pr in probes(quick=True)}
    cal = fit(Calibration(MachineModel(source="calibrated by a test"), "generated C probes"), measured, quick=True)
    for pr in probes(quick=True):
        assert _value(cal.model, pr.param) == pytest.approx(_value(TRUE, pr.param), rel=2e-3), pr.param
        assert predict(cal.model, pr.graph(), pr.cold) == pytest.approx(measured[pr.name], rel=2e-3), pr.name
    assert any(pr.name in note for note in cal.notes for pr in probes(quick=True))
    # derived, not probed: the median of the ops' strided slowdowns
    assert cal.model.strided_compute_factor == pytest.approx(TRUE.strided_compute_factor, rel=2e-3)


def test_the_full_probe_set_measures_every_transcendental_op_once():
    ops = [pr.param[6:] for pr in probes() if pr.param.startswith("op_ns:")]
    assert len(ops) == len(set(ops)) and {"exp", "erf", "tanh", "gelu", "pow", "sin"} <= set(ops)
    strided = [pr.param[14:] for pr in probes() if pr.param.startswith("strided_op_ns:")]
    assert sorted(strided) == sorted(ops)  # and once more in a strided loop
    for pr in probes():
        g = pr.graph()
        group_cost(g, [n.name for n in g.ops()], TRUE)  # each probe is one legal kernel


def test_an_op_whose_attribute_picks_another_function_is_measured_and_priced_apart():
    # gelu's tanh form is another C function than its erf form (0.18-0.23 against 0.64-0.68 ns per element
    # here): the cost model prices each by its own measured cost, and calibrate measures both
    assert OPS["gelu"].cost_name() == "gelu" and OPS["gelu"].cost_name({"approximate": "none"}) == "gelu"
    assert OPS["gelu"].cost_name({"approximate": "tanh"}) == "gelu approximate=tanh"
    assert OPS["gelu"].cost_names() == ["gelu", "gelu approximate=tanh"] and OPS["exp"].cost_names() == ["exp"]
    assert {pr.param for pr in probes()} >= {"op_ns:gelu approximate=tanh", "strided_op_ns:gelu approximate=tanh"}
    model = replace(TRUE, op_ns={"gelu": 1.0, "gelu approximate=tanh": 0.25})
    src = "graph g(x: f32[1024, 1024]) {{ y = gelu(x{})\n return y }}"
    erf, tanh = _cost(src.format(""), model=model), _cost(src.format(', approximate="tanh"'), model=model)
    points = 1024 * 1024
    assert erf.compute_s == pytest.approx(points * 1.0e-9 / model.threads)
    assert tanh.compute_s == pytest.approx(points * 0.25e-9 / model.threads)


def test_the_table_limit_is_the_c_backends():
    from fusec.codegen.c_passes import TABLE_ELEMENTS as C_TABLE

    assert TABLE_ELEMENTS == C_TABLE


def _cost(src: str, members=None, model=TRUE):
    g = prepare(fusec.parse(src))
    return group_cost(g, members or [n.name for n in g.ops()], model)


def test_a_small_broadcast_transcendental_is_costed_once_and_a_large_one_per_point():
    small = _cost("graph s(x: f32[2048, 256], v: f32[2048, 1]) { y = x * tanh(v)\n return y }")
    large = _cost("graph s(x: f32[2, 16384], v: f32[1, 16384]) { y = x * tanh(v)\n return y }")
    tanh_flops = OPS["tanh"].flops
    assert small.transcendentals == 2048 * tanh_flops  # tabulated: once per row
    assert large.transcendentals == 2 * 16384 * tanh_flops  # too big to tabulate: at every point


def test_a_one_tile_kernel_pays_no_fork_and_a_parallel_one_does():
    one = _cost("graph s(x: f32[1024]) { y = x + 1\n return y }")
    many = _cost("graph s(x: f32[65536]) { y = x + 1\n return y }")
    assert one.seconds < (TRUE.kernel_overhead_us + TRUE.fork_us) * 1e-6
    assert many.seconds > (TRUE.kernel_overhead_us + TRUE.fork_us) * 1e-6


def test_memory_time_grows_without_a_cliff_at_the_cache_size():
    m = TRUE
    below, above = m.memory_seconds(m.fit_bytes), m.memory_seconds(m.fit_bytes + 64)
    assert 0 < above - below <= 64 / (m.bandwidth_gbs * 1e9) * 1.0001


def test_a_narrow_column_sum_is_strided_and_a_wide_one_streams():
    narrow = _cost("graph s(x: f32[65536, 4]) { s = sum(exp(x), axis=0)\n return s }")
    rows = _cost("graph s(x: f32[4, 65536]) { s = sum(exp(x), axis=1)\n return s }")
    assert narrow.strided and not rows.strided and narrow.seconds > 2 * rows.seconds
    # 512 x 512 f32 is 1 MiB: its exp, not its bytes, sets the time
    plain = replace(TRUE, column_factor=1.0)  # the bytes as fast as a stream's (tested below)
    col = _cost("graph s(x: f32[512, 512]) { s = sum(exp(x), axis=0)\n return s }", model=plain)
    row = _cost("graph s(x: f32[512, 512]) { s = sum(exp(x), axis=1)\n return s }", model=plain)
    assert not col.strided and col.seconds == pytest.approx(row.seconds, rel=0.01)  # an accumulator row
    # a wide column sum streams, but each core walks its share of every row: column_factor
    big_col = _cost("graph s(x: f32[2048, 2048]) { s = sum(x, axis=0)\n return s }")
    big_row = _cost("graph s(x: f32[2048, 2048]) { s = sum(x, axis=1)\n return s }")
    assert big_col.nbytes == big_row.nbytes
    memory = TRUE.memory_seconds(big_row.nbytes, TRUE.threads, big_row.bytes_written)
    assert big_col.seconds - big_row.seconds == pytest.approx((TRUE.column_factor - 1) * memory, rel=1e-6)
    read_t = _cost("graph s(x: f32[512, 512]) { y = exp(transpose(x, perm=[1, 0]))\n return y }")
    assert read_t.strided


def test_a_matmul_epilogue_costs_its_call():
    src = "graph m(a: f32[64, 64], w: f32[64, 64], b: f32[64]) { y = a @ w + b\n return y }"
    g = prepare(fusec.parse(src))
    mm = next(n.name for n in g.ops() if n.op == "matmul")
    bare = group_cost(g, [mm], TRUE).seconds
    fused = group_cost(g, [n.name for n in g.ops()], TRUE).seconds
    assert fused - bare >= TRUE.matmul_epilogue_us * 1e-6


def test_the_machine_file_keeps_the_per_op_costs(tmp_path):
    path = save_model(replace(TRUE, source="test"), tmp_path / "machine.json")
    assert load_model(path) == replace(TRUE, source="test")
    data = json.loads(path.read_text())
    data["op_ns"] = {"exp": -1}
    path.write_text(json.dumps(data))
    with pytest.raises(FusecError, match="'op_ns' of 'exp' must be a positive number"):
        load_model(path)
    data["op_ns"] = [1, 2]
    path.write_text(json.dumps(data))
    with pytest.raises(FusecError, match="'op_ns' must map op names"):
        load_model(path)
    data["op_ns"] = {"exp": 1.0}
    data["strided_op_ns"] = {"erf": "slow"}
    path.write_text(json.dumps(data))
    with pytest.raises(FusecError, match="'strided_op_ns' of 'erf' must be a positive number"):
        load_model(path)


def test_a_strided_loop_costs_each_function_at_its_strided_rate():
    # a loop that walks memory with a stride (a sum down columns narrower than a vector) costs erf
    # at strided_op_ns, and an op measured only in a contiguous loop strided_compute_factor times that
    assert TRUE.op_seconds("erf", 1000, 14, threads=1, strided=True) == pytest.approx(1000 * 12.0e-9)
    assert TRUE.op_seconds("erf", 1000, 14, threads=1) == pytest.approx(1000 * 1.4e-9)
    m = replace(TRUE, strided_op_ns={})
    assert m.op_seconds("erf", 1000, 14, threads=1, strided=True) == pytest.approx(1000 * 1.4e-9 * 12.0 / 1.4)
    src = "graph t(x: f32[65536, 4]) {{ s = sum({f}(x), axis=0)\n return s }}"
    erf, exp = _cost(src.format(f="erf")), _cost(src.format(f="exp"))
    points = 65536 * 4
    assert erf.strided and erf.compute_s - exp.compute_s == pytest.approx(points * 3.0e-9 / TRUE.threads_for(points))


def test_a_staged_transposed_tile_computes_at_the_vector_rate():
    # the C backend copies a transposed tile into a local array before a loop that computes a
    # transcendental op (codegen/c_stage.py): the loop vectorizes, so erf costs op_ns there
    src = "graph t(x: f32[512, 512], w: f32[512, 512]) {{ y = {f}(transpose(x, perm=[1, 0])) + w\n return y }}"
    erf, exp = _cost(src.format(f="erf")), _cost(src.format(f="exp"))
    assert erf.strided and erf.compute_s - exp.compute_s == pytest.approx(512 * 512 * (1.4 - 0.55) * 1e-9 / TRUE.threads)
    # a loop of plain arithmetic is not staged: it stays scalar, strided_compute_factor times slower
    plain = _cost("graph t(x: f32[512, 512], w: f32[512, 512]) { y = transpose(x, perm=[1, 0]) * 2.0 + w\n return y }")
    assert plain.compute_s == pytest.approx(TRUE.compute_seconds(2 * 512 * 512) * TRUE.strided_compute_factor)
    # a staged kernel's copies and its vector arithmetic overlap as a contiguous kernel's do; a
    # scalar strided loop adds them
    def body(cost, model=TRUE):
        return cost.seconds - model.overhead_seconds(model.threads, cold=True) - model.math_call_us * 1e-6 * (cost.transcendentals > 0)

    apart = replace(TRUE, overlap_loss=1.0)  # overlap_loss 1: no overlap, the sum
    erf_apart = _cost(src.format(f="erf"), model=apart)
    moves = body(erf_apart, apart) - erf_apart.compute_s
    assert body(erf) == pytest.approx(max(moves, erf.compute_s) + TRUE.overlap_loss * min(moves, erf.compute_s))
    plain_src = "graph t(x: f32[512, 512], w: f32[512, 512]) { y = transpose(x, perm=[1, 0]) * 2.0 + w\n return y }"
    assert plain.seconds == pytest.approx(_cost(plain_src, model=apart).seconds)  # unstaged: the sum either way


def test_an_op_without_a_measured_cost_uses_the_cost_per_flop():
    m = replace(TRUE, op_ns={}, transcendental_ns=0.1)
    assert m.op_seconds("erf", 1000, 14, threads=1) == pytest.approx(1000 * 1.4e-9)
    assert TRUE.op_seconds("erf", 1000, 14, threads=1) == pytest.approx(1000 * 1.4e-9)


def test_time_plans_times_several_plans_of_one_graph_alternately():
    from fusec.kernel_timing import plan_for, time_plans
    from fusec.runtime.build import NoCompilerError, find_compiler

    try:
        find_compiler()
    except NoCompilerError:
        pytest.skip("no C compiler")
    g = prepare(fusec.parse("graph t(x: f32[64, 32]) { e = exp(x)\n s = sum(e, axis=1)\n return s }"))
    e, s = (n.name for n in g.ops())
    apart, fused = plan_for(g, [[e], [s]]), plan_for(g, [[e, s]])
    t_apart, t_fused = time_plans([apart, fused], repeats=3)
    assert len(t_apart.kernels) == 2 and len(t_fused.kernels) == 1
    assert all(k > 0 for k in t_apart.kernels + t_fused.kernels) and t_apart.load is not None


def test_time_plans_can_evict_the_caches_before_each_run(monkeypatch):
    import fusec.kernel_timing as kt
    from fusec.runtime.build import NoCompilerError, find_compiler

    try:
        find_compiler()
    except NoCompilerError:
        pytest.skip("no C compiler")
    read = []
    monkeypatch.setattr(kt, "evict_caches", lambda other: read.append(other.nbytes))
    g = prepare(fusec.parse("graph t(x: f32[64, 32]) { y = exp(x)\n return y }"))
    t = kt.time_plan(kt.plan_for(g, [[n.name for n in g.ops()]]), repeats=3, evict=kt.AFTER_A_KERNEL)
    assert read == [kt.AFTER_A_KERNEL] * 3 and t.kernels[0] > 0  # before each timed run, not the warm-up
    # the warm call's probe: after the read, another small kernel's call
    read.clear()
    order = []
    monkeypatch.setattr(kt, "evict_caches", lambda other: order.append("read"))
    call = kt.small_kernel_call()
    kt.time_plan(kt.plan_for(g, [[n.name for n in g.ops()]]), repeats=3, evict=kt.AFTER_A_SMALL_KERNEL,
                 before=lambda: (call(), order.append("call")))
    assert order == ["read", "call"] * 3


def test_stores_to_memory_cost_write_factor_times_loads():
    model = TRUE
    reads = _cost("graph s(x: f32[4096, 4096], z: f32[4096, 4096]) { s = sum(x * z, axis=1)\n return s }", model=model)
    stream = _cost("graph s(x: f32[4096, 4096]) { y = x * 2.0\n return y }", model=model)
    assert reads.nbytes == pytest.approx(stream.nbytes, rel=1e-3)  # 128 MiB each, but one writes half of it
    assert stream.seconds / reads.seconds == pytest.approx((1 + TRUE.write_factor) / 2, rel=0.05)
    assert replace(model, write_factor=1.0).memory_seconds(1 << 30, written=1 << 29) == pytest.approx(
        model.memory_seconds(1 << 30), rel=1e-3)  # no stores: every byte a load


def test_a_thin_matmul_runs_below_the_blas_rate():
    # BLAS amortises its packing over K (matmul_knee) and, less, over the smaller of M and N
    # (matmul_knee_mn): attention's q @ k^T (K = 64) runs slower than its p @ v (N = 64)
    square = _cost("graph m(a: f32[512, 512], w: f32[512, 512]) { y = a @ w\n return y }")
    thin_k = _cost("graph m(a: f32[8, 512, 64], w: f32[8, 64, 512]) { y = a @ w\n return y }")
    thin_n = _cost("graph m(a: f32[8, 512, 64], w: f32[8, 64, 64]) { y = a @ w\n return y }")
    assert square.flops == thin_k.flops
    rate, fixed = TRUE.matmul_gflops * 1e9, (TRUE.matmul_call_us + TRUE.kernel_overhead_us) * 1e-6

    def thin(k, mn):
        return (k + TRUE.matmul_knee) / k * (mn + TRUE.matmul_knee_mn) / mn

    assert square.seconds == pytest.approx(fixed + square.flops * thin(512, 512) / rate, rel=1e-6)
    assert thin_k.seconds == pytest.approx(fixed + thin_k.flops * thin(64, 512) / rate, rel=1e-6)
    assert thin_n.seconds == pytest.approx(fixed + thin_n.flops * thin(64, 64) / rate, rel=1e-6)
    # a vector operand: one row (M = 1) or one column (N = 1); found by the random graphs (x @ x)
    dot = _cost("graph m(x: f32[4]) { y = x @ x\n return y }")
    assert dot.seconds == pytest.approx(fixed + dot.flops * thin(4, 1) / rate, rel=1e-6)
    mv = _cost("graph m(a: f32[6, 4], x: f32[4]) { y = a @ x\n return y }")
    assert mv.seconds == pytest.approx(fixed + mv.flops * thin(4, 1) / rate, rel=1e-6)
    p_v = _cost("graph m(a: f32[8, 512, 512], w: f32[8, 512, 64]) { y = a @ w\n return y }")
    assert p_v.flops == thin_k.flops and p_v.seconds < thin_k.seconds  # N = 64 costs less than K = 64


def test_the_column_limit_is_the_interchanges():
    from fusec.fusion.cost import COLUMN_MIN_POINTS
    from fusec.loops.interchange import MIN_VECTOR

    assert COLUMN_MIN_POINTS == MIN_VECTOR


def test_a_column_reduction_computes_its_transcendental_member_in_each_pass():
    # erf feeds the sum (first pass) and is an output (second pass): the accumulator-row form keeps
    # no row array, so it computes erf twice; the row form keeps erf's row and computes it once
    col = _cost("graph s(x: f32[512, 512]) { e = erf(x)\n c = sum(e, axis=0)\n return e, c }")
    row = _cost("graph s(x: f32[512, 512]) { e = erf(x)\n c = sum(e, axis=1)\n return e, c }")
    assert col.transcendentals == 2 * row.transcendentals == 2 * 512 * 512 * OPS["erf"].flops


def test_a_large_value_that_varies_along_few_axes_is_costed_as_its_table():
    # rotary's inverse frequencies: pow over [8, 1024, 32] that varies along its last axis only, so
    # the C backend computes its 32 values once into a table (codegen/c_passes.py)
    src = ("graph r(x: f32[8, 1024, 32]) {\n  i = iota(shape=[8, 1024, 32], axis=2, dtype=f32)\n"
           "  y = x * 10000 ** (-2 * i / 64)\n  return y\n}")
    c = _cost(src)
    assert c.transcendentals == 32 * OPS["pow"].flops
    varying = _cost("graph r(x: f32[8, 1024, 32], e: f32[8, 1024, 32]) { y = x * 10000 ** e\n return y }")
    assert varying.transcendentals == 8 * 1024 * 32 * OPS["pow"].flops  # an input varies everywhere


def test_a_value_made_by_another_kernel_is_loaded_so_its_function_is_computed_per_point():
    # rotary unfused: the pow kernel loads its exponents, made from an iota by another kernel, so
    # nothing tells the C backend they take 32 values; fused with the iota, they are a table again.
    # Merged costs are walked afresh (combine gives None), since the union's table is smaller
    src = ("graph r(x: f32[8, 1024, 32]) {\n  i = iota(shape=[8, 1024, 32], axis=2, dtype=f32)\n"
           "  e = -2 * i / 64\n  p = 10000 ** e\n  y = x * p\n  return y\n}")
    graph = prepare(fusec.parse(src))
    pow_op = next(n.name for n in graph.ops() if n.op == "pow")
    alone = group_cost(graph, [pow_op], MachineModel())
    assert alone.transcendentals == 8 * 1024 * 32 * OPS["pow"].flops
    fused = group_cost(graph, [n.name for n in graph.ops()], MachineModel())
    assert fused.transcendentals == 32 * OPS["pow"].flops
    part = Partition(graph, MachineModel())
    gids = [part.group_of[n.name] for n in graph.ops()]
    assert part.merged_cost(set(gids), {n.name for n in graph.ops()}).transcendentals == fused.transcendentals


def test_a_column_kernel_reads_its_input_again_in_each_pass_that_needs_it():
    # the column form sums in one pass over its tile of rows and writes erf(x) * 2 in the next, so a
    # tile larger than the cache reads x twice; the row form does both in one pass over each row
    col = _cost("graph s(x: f32[2048, 2048]) { y = erf(x) * 2.0\n s = sum(x, axis=0)\n return y, s }")
    row = _cost("graph s(x: f32[2048, 2048]) { y = erf(x) * 2.0\n s = sum(x, axis=1)\n return y, s }")
    assert row.bytes_read == 2048 * 2048 * 4
    assert col.bytes_read == 2 * row.bytes_read
    small = _cost("graph s(x: f32[64, 64]) { y = erf(x) * 2.0\n s = sum(x, axis=0)\n return y, s }")
    assert small.bytes_read == 64 * 64 * 4  # its tile stays in cache between the passes


def test_a_table_is_computed_on_one_thread_before_the_parallel_loop():
    # tanh(v) over a [2048, 1] value broadcast over 2048 x 2048 points: the C backend computes its
    # 2048 values once, before the parallel loop (tabulate_invariants), on the calling thread
    src = "graph t(x: f32[2048, 2048], v: f32[2048, 1]) {{ y = x * {f}(v)\n return y }}"
    tanh, exp = _cost(src.format(f="tanh")), _cost(src.format(f="exp"))
    assert tanh.compute_s - exp.compute_s == pytest.approx(2048 * (0.9 - 0.55) * 1e-9)  # not / TRUE.threads


def test_a_head_split_reads_in_short_runs_and_moves_its_bytes_at_the_column_rate():
    # [S, H, Dh] -> [H, S, Dh]: the loop reads runs of Dh = 64 floats, 256 bytes, one per step of S
    split = "graph s(x: f32[512, 12, 64]) { y = transpose(x, perm=[1, 0, 2])\n return y }"
    copy = "graph s(x: f32[512, 12, 64]) { y = x * 1.0\n return y }"
    wide = "graph s(x: f32[8, 12, 1024]) { y = transpose(x, perm=[1, 0, 2])\n return y }"  # runs of a page
    slow, fast = replace(TRUE, column_factor=1.5), replace(TRUE, column_factor=1.0)
    body = _cost(copy, model=fast).seconds - fast.overhead_seconds(fast.threads, cold=True)  # the bytes, streamed
    gap = _cost(split, model=slow).seconds - _cost(split, model=fast).seconds
    assert gap == pytest.approx(0.5 * body, rel=0.05)  # the same bytes, half again as slow
    assert _cost(copy, model=slow).seconds == _cost(copy, model=fast).seconds
    assert _cost(wide, model=slow).seconds == _cost(wide, model=fast).seconds
    assert not _cost(split).strided  # it streams, in runs: not a strided loop
