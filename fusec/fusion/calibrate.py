"""Measure the machine model: bandwidth, peak arithmetic, and the costs the cost model adds to them.

Two kinds of measurement:

* The runtime's generated C probes (fusec.runtime.probes): a STREAM triad over arrays far larger
  than the caches and independent fma chains give the bandwidth and the peak (timed inside C).
* Probe kernels (`probes()`): small .fg graphs compiled by fusec itself into one kernel each and
  timed the way bench/bench_traps.py times a plan's kernels (fusec.kernel_timing: the call from
  Python included). Each probe fits one constant of the cost model (cost.py), in order: the call
  cost of a one-core kernel, the fork of a parallel one, cache bandwidth, memory bandwidth (a kernel
  that only reads), the cost of a store (one that writes as much as it reads), the ns per element of
  each transcendental op, strided loads in and out of cache (a read through a transpose), the ns per
  element of each transcendental op in that strided loop (gcc leaves it scalar; the median of their
  ratios to the contiguous figures sets how much slower plain arithmetic runs there), and the BLAS
  rate, its loss on a thin matmul and the epilogue call of a matmul. A constant is fitted by
  solving "the model predicts the probe's measured time" for it (bisection: the prediction is
  monotone in each constant), with the constants
  fitted before it held; the sequence repeats until they settle, because the call cost appears in
  every probe. The fit is exact on the probes, so what the model gets wrong on other kernels is what
  it leaves out, not a constant measured elsewhere.
* Each probe is timed in the state a kernel of a plan finds the machine in, not back to back: a
  plan's kernel follows another kernel, so each probe run follows reading 2 MiB of other data (its
  few arrays are then out of the nearest cache, and the other core's thread has slept a little: a
  small parallel kernel takes 27 us so, against 8 us back to back); the call probes follow reading
  32 MiB (a large kernel before: the cold call), then, for the warm call, a small kernel's call (a
  small kernel before that, which warmed the path a call takes again). The memory probes run
  back to back over arrays larger than the last-level cache keeps (this machine reports 480 MiB,
  which kept a 64 MiB probe array between runs and doubled the bandwidth it measured), and two
  probes measure that cache: a 32 MiB program run again (its rate) and a 128 MiB one (how much of
  it stays). The op probes evaluate their op eight times per element on data in cache, so the op,
  not the fork, sets their time. The short probes are timed in ROUNDS rounds over all of them and
  their medians fitted (a fork's cost on this virtual machine moves from minute to minute).

Running the probes needs the whole compiler (layer 7): `fusec.calibration.calibrate` passes the
timer in. Without a C compiler, the bandwidth comes from a NumPy triad instead, and the result says
so (NumPy's triad makes temporaries, so it under-reports).

Figures measured on a busy machine describe the other processes as much as this one: the load
average is read before and after measuring and stored with the figures, and `busy` says when it
is above half the cores (the command then refuses to store them unless forced).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import numpy as np

from fusec.errors import FusecError
from fusec.fusion.machine import INTEGER_FIELDS, MAY_BE_ZERO, MachineModel
from fusec.ir.graph import Graph
from fusec.ir.ops import OPS, op_of_cost_name, split_cost_name


@dataclass
class Calibration:
    model: MachineModel
    method: str  # "generated C probes" or "NumPy triad (no C compiler)"
    notes: list[str] = field(default_factory=list)
    load_before: float | None = None  # 1-minute load average before measuring (None: not available)
    load_after: float | None = None

    @property
    def load(self) -> float | None:
        """The higher of the load averages before and after measuring."""
        known = [x for x in (self.load_before, self.load_after) if x is not None]
        return max(known) if known else None


def load_average() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def busy(cal: Calibration, cores: int | None = None) -> str | None:
    """Why the figures should not be stored (the load above half the cores), or None."""
    cores = cores or os.cpu_count() or 1
    if cal.load is None or cal.load <= cores / 2:
        return None
    return (f"the load average was {cal.load:g} (before {cal.load_before:g}, after {cal.load_after:g}) "
            f"on {cores} cores, above half the cores: other processes shared the machine, so the "
            f"figures are too low")


def calibrate(quick: bool = False, timer: ProbeTimer | None = None) -> Calibration:
    """Measure this machine, reading the load average before and after (stored with the figures).
    `quick` uses smaller arrays, fewer repeats and fewer ops (for tests). `timer` times a probe
    kernel (fusec.calibration passes one); without it, or without a C compiler, the constants the
    probe kernels fit keep their defaults."""
    before = load_average()
    result = _measure(quick)
    if timer is not None and result.method == "generated C probes":
        result = fit(result, time_probes(probes(quick), timer, 1 if quick else ROUNDS), quick)
    result.load_before, result.load_after = before, load_average()
    if result.load is not None:
        result.model = replace(result.model, calibration_load=result.load)
        result.notes.append(f"load average {result.load_before:g} before, {result.load_after:g} after "
                            f"({os.cpu_count()} cores)")
    return result


# rounds over the short probes: the cost of a fork on this virtual machine moved from 60 to 270 us
# between one calibration and the next, a minute apart; the median of rounds spread over the
# calibration is steadier than one probe's median of runs taken together
ROUNDS = 3
JUMPY_ROUNDS = 9  # rounds of the probes of a call's cost, which are short (see Probe.jumpy_rounds)


def time_probes(plist: list[Probe], timer: ProbeTimer, rounds: int) -> dict[str, float]:
    """Each probe's seconds: the median of `rounds` timings, taken in turn over all the probes (the
    memory probes, long and steady, once; the jumpy ones, the mean of their own rounds)."""
    def rounds_of(pr: Probe) -> int:
        if rounds == 1 or pr.cold in IN_MEMORY:  # --quick times everything once
            return 1
        return pr.jumpy_rounds or rounds

    count = {pr.name: rounds_of(pr) for pr in plist}
    samples: dict[str, list[float]] = {}
    for r in range(max(count.values(), default=0)):
        for pr in plist:
            if r < count[pr.name]:
                samples.setdefault(pr.name, []).append(timer(pr))
    jumpy = {pr.name for pr in plist if pr.jumpy_rounds}
    return {name: (statistics.mean if name in jumpy else statistics.median)(times) for name, times in samples.items()}


def _measure(quick: bool) -> Calibration:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    defaults = MachineModel()
    try:
        from fusec.runtime import probes
    except ImportError as err:  # the runtime is optional for the planner
        return _numpy_calibration(quick, stamp, f"the runtime probes are not available ({err})")
    n = 2**21 if quick else 2**23
    try:
        bw = probes.measure_triad(n=n, repeats=3 if quick else 10)
        peak = probes.measure_peak_flops(iterations=100_000 if quick else 2_000_000)
        tiny = probes.measure_triad(n=1024, repeats=20 if quick else 200)
    except FusecError as err:  # no compiler, a failed build, an unwritable cache
        return _numpy_calibration(quick, stamp, f"the C probes could not run: {err.message}")
    overhead_s = tiny.bytes_per_run / (tiny.median_gbs * 1e9)
    model = MachineModel(
        bandwidth_gbs=round(bw.median_gbs, 2),
        peak_gflops=round(peak.gflops, 2),
        kernel_overhead_us=round(max(overhead_s * 1e6, 0.5), 2),
        cache_bytes=defaults.cache_bytes,
        source=f"calibrated {stamp} with generated C probes",
    )
    notes = [str(bw), str(peak), f"kernel overhead {model.kernel_overhead_us:g} us (median of a 1024-element triad)"]
    return Calibration(model, "generated C probes", notes)


def _numpy_calibration(quick: bool, stamp: str, why: str) -> Calibration:
    n = 2**21 if quick else 2**23
    a, b, c = np.empty(n), np.ones(n), np.full(n, 2.0)
    tmp = np.empty(n)
    samples = []
    for _ in range(3 if quick else 10):
        start = time.perf_counter()
        np.multiply(c, 3.0, out=tmp)  # a = b + s * c in two passes: 5 * 8 * n bytes move
        np.add(b, tmp, out=a)
        samples.append(5 * 8 * n / (time.perf_counter() - start) / 1e9)
    defaults = MachineModel()
    model = MachineModel(
        bandwidth_gbs=round(statistics.median(samples), 2),
        peak_gflops=defaults.peak_gflops,
        kernel_overhead_us=defaults.kernel_overhead_us,
        cache_bytes=defaults.cache_bytes,
        source=f"calibrated {stamp} with a NumPy triad (no generated kernel: {why})",
    )
    notes = [
        f"NumPy triad {model.bandwidth_gbs:g} GB/s median ({len(samples)} runs), single-threaded: "
        "an underestimate of what a fused C kernel reaches",
        f"peak and kernel overhead keep their defaults ({why})",
    ]
    return Calibration(model, "NumPy triad", notes)


# ------------------------------------------------------------------ probe kernels and the fit


@dataclass(frozen=True)
class Probe:
    name: str
    source: str  # a .fg graph whose ops make one kernel
    param: str  # the MachineModel field it fits ("op_ns:exp", "strided_op_ns:exp": that op's entry)
    repeats: int = 15
    # what the probe finds when it starts: "kernel" what another kernel left (2 MiB of other data
    # read just before, as a plan's kernel follows another: its few arrays out of the nearest
    # cache, the other core's thread asleep but not for long); "large kernel" what a kernel of
    # large arrays left (32 MiB read); "small kernel" what a small kernel that ran after a large
    # one left (32 MiB read, then another small kernel called: kernel_timing.AFTER_A_SMALL_KERNEL,
    # the state of a small kernel in a plan of large ones); "producer" right after the kernel of
    # the graph's first op, which makes its input (the probe is the kernel of the other ops); "memory" nothing
    # (its arrays in memory, as in a plan of large arrays: 1 GiB read); "large" arrays too large
    # for the last-level cache to keep, run back to back; "" its own arrays, run back to back
    cold: str = "kernel"
    # a cost that jumps between two levels from one minute to the next (a small kernel's call
    # took 1.8-2.8 us in some runs of the probe and 4.4-4.8 in others, quiet): timed in this many
    # rounds, and the mean of the rounds' medians fitted, which is what a plan pays on average
    # (the median of a few rounds lands on either level). 0: ROUNDS, and their median
    jumpy_rounds: int = 0

    def graph(self) -> Graph:
        from fusec.frontend import parse
        from fusec.fusion.planner import prepare

        return prepare(parse(self.source, filename=f"<probe {self.name}>"))


ProbeTimer = Callable[[Probe], float]  # a probe -> the median seconds of its kernel
IN_MEMORY = ("memory", "large")  # the probe states whose arrays are in memory, not in any cache

QUICK_OPS = ("exp", "erf", "tanh")  # `--quick` measures these; the others get the fitted ns per flop


def _stream(name: str, n: int, param: str) -> Probe:
    return Probe(name, f"graph {name}(x: f32[{n}]) {{\n  y = x * 2.0 + 1.0\n  return y\n}}\n", param)


def _call(cost_name: str, *args: str) -> str:
    """The .fg call of the op a cost name (OpDef.cost_name) names: gelu(x, approximate="tanh")."""
    op, attrs = split_cost_name(cost_name)
    named = [f'{key}="{value}"' for key, value in attrs.items()]
    return f"{op.name}({', '.join([*args, *named])})"


def _ident(cost_name: str) -> str:
    """A probe's name for a cost name: op_gelu_tanh for "gelu approximate=tanh"."""
    op, attrs = split_cost_name(cost_name)
    return "_".join([op.name, *attrs.values()])


def _op(op: str, n: int, terms: int = 8) -> Probe:
    """`terms` evaluations of `op` (a cost name) per element, on shifted inputs (so none is a copy
    of another), over data that stays in cache: the op's cost, not the fork or the memory, sets the time."""
    shifts = [f"x + {i / terms:g}" if i else "x" for i in range(terms)]
    if op_of_cost_name(op).arity == 2:
        calls, args = [_call(op, x, "w") for x in shifts], f"x: f32[{n}] in [0.1, 4], w: f32[{n}] in [0.5, 2]"
    else:
        calls, args = [_call(op, x) for x in shifts], f"x: f32[{n}] in [0.1, 4]"
    name = f"op_{_ident(op)}"
    return Probe(name, f"graph {name}({args}) {{\n  y = {' + '.join(calls)}\n  return y\n}}\n", f"op_ns:{op}")


def _stream2d(name: str, n: int, param: str, rows: int = 0, cold: str = "memory", expr: str = "x * 2.0 + 1.0") -> Probe:
    """y = x * 2 + 1 (or `expr`) over a [rows, n] array (rows = n unless given): as many bytes
    written as read."""
    return Probe(name, f"graph {name}(x: f32[{rows or n}, {n}]) {{\n  y = {expr}\n  return y\n}}\n", param, 9, cold)


def _read(name: str, n: int, rows: int, param: str, cold: str) -> Probe:
    """A row sum over a [rows, n] array, timed as `cold` says: a kernel that only reads."""
    return Probe(name, f"graph {name}(x: f32[{rows}, {n}]) {{\n  s = sum(x, axis=1)\n  return s\n}}\n", param, 9, cold)


def _transposed(name: str, n: int, expr: str, param: str, repeats: int = 15) -> Probe:
    """An elementwise kernel reading x through a transpose: its inner loop walks x with a stride of
    n elements (a column reduction no longer does: it streams rows into accumulators)."""
    return Probe(name, f"graph {name}(x: f32[{n}, {n}] in [0.1, 4]) {{\n  t = transpose(x, perm=[1, 0])\n"
                       f"  y = {expr}\n  return y\n}}\n", param, repeats)


def _strided_op(op: str, rows: int = 16384) -> Probe:
    """`op` (a cost name) computed in a loop that walks memory with a stride: a sum down the columns
    of a [rows, 4] array, narrower than a vector, so the loop runs down each column (a read through
    a transpose no longer does: its tile is staged, codegen/c_stage.py)."""
    call = _call(op, "x", "1.5") if op_of_cost_name(op).arity == 2 else _call(op, "x")
    name = f"strided_{_ident(op)}"
    return Probe(name, f"graph {name}(x: f32[{rows}, 4] in [0.1, 4]) {{\n  s = sum({call}, axis=0)\n"
                       f"  return s\n}}\n", f"strided_op_ns:{op}", 15)


def _matmul(name: str, n: int, epilogue: bool, param: str, k: int | None = None, batch: int = 0,
            n_out: int | None = None) -> Probe:
    """[batch,] n x k @ k x n_out (k and n_out = n unless given), plus a bias if `epilogue`."""
    k, n_out = k or n, n_out or n
    lead = f"{batch}, " if batch else ""
    bias = f", b: f32[{n_out}]" if epilogue else ""
    expr = "a @ w + b" if epilogue else "a @ w"
    return Probe(name, f"graph {name}(a: f32[{lead}{n}, {k}], w: f32[{lead}{k}, {n_out}]{bias}) {{\n  y = {expr}\n  return y\n}}\n",
                 param, 31)


# the arrays of the probe of the last-level cache's rate (in and out): small enough that the cache
# holds them whatever else the host's other machines keep there (it held 64 MiB, not always 128)
RESIDENT_PROBE_BYTES = 32 << 20
# the array the probe of how much of a program the cache keeps reads (run back to back): if all of
# it stays there, the probe says only that the cache keeps at least this much
RESIDENT_SIZE_PROBE_BYTES = 128 << 20


def probes(quick: bool = False) -> list[Probe]:
    """The probe kernels, in the order the fit uses them (each fits one constant, given those before)."""
    # each transcendental op under each name the cost model prices it by (gelu's tanh form apart)
    ops = QUICK_OPS if quick else sorted(name for op in OPS.values() if op.transcendental and not op.is_composite
                                         for name in op.cost_names())
    # memory probes: arrays too large for the last-level cache to keep between runs (this
    # machine's kept a 64 MiB array and doubled the bandwidth measured), run back to back, as a
    # plan's kernels run; `quick`: 64 MiB arrays, after reading 1 GiB of other data (rougher)
    n = 4096
    if quick:
        memory = [_read("read", n, n, "bandwidth_gbs", "memory"), _stream2d("memory", n, "write_factor")]
    else:
        memory = [_read("read", n, 32768, "bandwidth_gbs", "large"),  # 512 MiB, reads only
                  _stream2d("memory", n, "write_factor", rows=16384, cold="large")]  # 256 MiB in, 256 MiB out
    # a program whose arrays fit in the last-level cache: a stream over 16 + 16 MiB, run back to
    # back, gives its rate; a read of 128 MiB, which it keeps in part, how much it holds. One op
    # each, so the arrays the model counts for the program (program.program_bytes: every value of
    # the graph) are the arrays the probe runs over
    resident = [] if quick else [
        _stream2d("resident", n, "resident_bandwidth_gbs", rows=RESIDENT_PROBE_BYTES // (8 * n), cold="", expr="x * 2.0"),
        _read("resident_size", n, RESIDENT_SIZE_PROBE_BYTES // (4 * n), "resident_bytes", "")]
    # a column sum against a row sum of the same 16 MiB, each after another kernel moved 32 MiB, as
    # in a plan: column_factor puts the model's column sum at the measured multiple of its row sum
    # (`_column_factor`), so what the state does to both cancels
    # (their ratio moved from 0.94 to 1.6 between calibrations with three rounds each: nine, alternated)
    column = [Probe(name, f"graph {name}(x: f32[2048, 2048]) {{\n  s = sum(x, axis={axis})\n  return s\n}}\n",
                    "column_factor", 9, "large kernel", jumpy_rounds=JUMPY_ROUNDS)
              for name, axis in (("column", 0), ("column_row", 1))]
    return [
        # after another kernel, as in a plan. Measured quiet, a one-tile kernel took 1.2 us back
        # to back, 1.3-3.5 us after reading 512 KiB (it jumps between the two), 3.8-4.2 after
        # 1 MiB, 9.1 after 2 MiB and 12.7 after 32 MiB; a two-tile one 55-67 us back to back,
        # 58-76 after 512 KiB, 80-97 after 2 MiB and 87-117 after 32 MiB. In a later session the
        # one-tile kernel took 1.5-2.3 us after 1 MiB and 2.9-3.0 after 32 MiB and a small
        # kernel's call, which is what the small kernels of the benchmark's plans took (3-5 us)
        replace(_stream("call", 1024, "kernel_overhead_us"), cold="small kernel", jumpy_rounds=JUMPY_ROUNDS),  # one tile: no fork
        replace(_stream("call_cold", 1024, "cold_call_us"), cold="large kernel", jumpy_rounds=JUMPY_ROUNDS),
        replace(_stream("fork", 2 * 16384, "fork_us"), jumpy_rounds=JUMPY_ROUNDS),  # two tiles: the fork
        # 4 MiB (fit_bytes) that the kernel before it just wrote, as a plan's kernel reads an
        # intermediate: from the caches. Timed after a read of other data, as before, the read took
        # 120-150 us from one run to the next, and after its producer 143-151 us; the rate then
        # came out 45-78 GB/s from one calibration to the next. Half its time is the fork, which
        # jumps: timed as the fork is
        replace(Probe("cached", "graph cached(x: f32[1024, 1024]) {\n  t = x * 1.5\n  s = sum(t, axis=1)\n"
                                "  return s\n}\n", "cache_bandwidth_gbs", 9, "producer"), jumpy_rounds=JUMPY_ROUNDS),
        *memory,
        *resident,
        *column,
        *(_op(op, 1 << 17) for op in ops),
        # a small kernel of one transcendental function (tanh), after a small kernel: what its
        # first call costs, over the call and the op's cost per element (math_call_us)
        Probe("math_call", "graph math_call(x: f32[1024] in [0.1, 4]) {\n  y = tanh(x)\n  return y\n}\n",
              "math_call_us", 15, "small kernel", jumpy_rounds=JUMPY_ROUNDS),
        _transposed("transposed_cached", 512, "t * 2.0", "strided_cache_ns"),  # 1 MiB in, 1 MiB out
        # its arrays in memory, as in a plan of large arrays: the tiles' loads and stores are short
        # runs, which the prefetchers do not run ahead of (5.2 ms so at 2048 x 2048; 2.9-3.8 with
        # the arrays in the last-level cache, as back to back)
        replace(_transposed("transposed_memory", 1024 if quick else 2048, "t * 2.0", "strided_memory_ns", 7),
                cold="memory"),
        # and with them in the last-level cache, after another kernel moved 32 MiB, as in a plan of
        # arrays the cache keeps (after the resident probes, which say how much of a program it
        # keeps). Measured at 2048 x 2048: 4.1-4.7 ms so, 2.0-2.6 back to back, 8.8-10.1 in memory;
        # the benchmark plans' copies through a transpose took 3.0-6.0 from one run to the next
        *([] if quick else [replace(_transposed("transposed_resident", 2048, "t * 2.0", "strided_resident_ns", 9),
                                    cold="large kernel")]),
        *(_strided_op(op) for op in ops),
        _matmul("matmul_call", 16, False, "matmul_call_us"),  # next to no arithmetic: the call
        _matmul("matmul", 256 if quick else 512, False, "matmul_gflops"),
        _matmul("matmul_thin", 256 if quick else 512, False, "matmul_knee", k=64, batch=8),  # attention's q @ k^T: K = 64
        _matmul("matmul_thin_n", 256 if quick else 512, False, "matmul_knee_mn", batch=8, n_out=64),  # its p @ v: N = 64
        _matmul("matmul_bias", 16, True, "matmul_epilogue_us"),
    ]


def _with(model: MachineModel, param: str, value: float) -> MachineModel:
    field_name, _, op = param.partition(":")
    if op:  # "op_ns:exp": one op's entry of a per-op field
        return replace(model, **{field_name: {**getattr(model, field_name), op: value}})
    return replace(model, **{param: value})


def predict(model: MachineModel, graph: Graph, cold: str = "kernel") -> float:
    """The model's time for all of `graph`'s ops as one kernel (what a probe builds), in the state
    the probe's `cold` describes: after a small kernel or a large one, and with its arrays in
    memory or (a program as small as the probe's graph) in the last-level cache."""
    from fusec.fusion.cost import group_cost, plan_kernel_costs
    from fusec.fusion.program import program_bytes

    model = model.for_program(0 if cold in IN_MEMORY else program_bytes(graph))
    ops = [n.name for n in graph.ops()]
    if cold == "producer":  # the kernel of all but the first op, right after the first op's kernel
        return plan_kernel_costs(graph, [ops[:1], ops[1:]], model)[-1][1].seconds
    after = {"small kernel": False, "large kernel": True}.get(cold)  # else as the graph says
    return group_cost(graph, ops, model, cold=after).seconds


# the range each constant's fit searches, where it is not [1e-3, 1e5]
RANGES = {"write_factor": (1.0, 1e5),  # a store to memory costs at least a load: it reads its line first
          # at least the resident probe's own arrays: that probe measures the rate of a program the
          # cache holds. Below it, the two fits chase each other (a smaller cache asks a higher rate
          # of the probe, which asks a smaller cache) to the ends of their ranges: the cache "held
          # 1 MiB at 100000 GB/s" when the 128 MiB read found little of itself in the cache
          # and at most what the size probe reads: a probe that ran all at the cache's rate cannot
          # tell a larger cache (the fit ran off to 1 TiB so, and predicted softmax's and adam's
          # kernels of 48-112 MiB programs at half their time)
          "resident_bytes": (RESIDENT_PROBE_BYTES, RESIDENT_SIZE_PROBE_BYTES + 32 * 1024)}


def solve(model: MachineModel, param: str, graph: Graph, measured: float, lo: float = 1e-3, hi: float = 1e5,
          cold: str = "kernel") -> float:
    """The value of `param` at which the model predicts `measured` for `graph` (bisection in log
    space; clamped to [lo, hi] when no value in between reaches it)."""
    f_lo = predict(_with(model, param, lo), graph, cold) - measured
    f_hi = predict(_with(model, param, hi), graph, cold) - measured
    if abs(f_lo) <= 1e-6 * measured:  # reached at the end already, to the fit's own tolerance (a cache
        return lo  # the size probe finds none of: every size up to the end predicts the same time)
    if f_lo * f_hi > 0:  # out of reach: the end whose prediction is nearer
        return lo if abs(f_lo) < abs(f_hi) else hi
    a, b = math.log(lo), math.log(hi)
    for _ in range(60):
        mid = (a + b) / 2
        f_mid = predict(_with(model, param, math.exp(mid)), graph, cold) - measured
        if (f_mid > 0) == (f_lo > 0):
            a, f_lo = mid, f_mid
        else:
            b = mid
    return math.exp((a + b) / 2)


def fit(base: Calibration, measured: dict[str, float], quick: bool = False) -> Calibration:
    """Fit the probe kernels' constants into `base`'s model from their measured seconds."""
    model = base.model
    plist = [pr for pr in probes(quick) if pr.name in measured]
    if "resident" in measured and model.resident_bytes < RESIDENT_PROBE_BYTES:
        # start from a cache that holds the resident probe's arrays, or its rate would be fitted
        # with no cache to serve it (out of reach: the largest rate), and the size after it to suit
        model = replace(model, resident_bytes=RESIDENT_PROBE_BYTES)
    graphs = {pr.name: pr.graph() for pr in plist}
    derived = [pr for pr in plist if pr.param in DERIVED]
    plist = [pr for pr in plist if pr.param not in DERIVED]
    for _ in range(20):  # the call cost, fitted first, depends a little on the constants after it
        before = [_value(model, pr.param) for pr in plist]
        for pr in plist:
            lo, hi = RANGES.get(pr.param, (1e-3, 1e5))
            value = solve(model, pr.param, graphs[pr.name], measured[pr.name], lo, hi, pr.cold)
            model = _with(model, pr.param, 0.0 if pr.param in MAY_BE_ZERO and value <= 1e-3 else value)
        model = _strided_factor(model)  # the strided probes before the ops' depend on it
        if all(abs(_value(model, pr.param) - b) <= 1e-6 * max(b, 1e-3) for pr, b in zip(plist, before)):
            break
    for pr in plist:
        value = float(f"{_value(model, pr.param):.5g}")
        if pr.param in RANGES:  # rounded, still in its range
            value = min(max(value, RANGES[pr.param][0]), RANGES[pr.param][1])
        model = _with(model, pr.param, int(value) if pr.param in INTEGER_FIELDS else value)
    model = _column_factor(model, measured, {pr.name: pr for pr in derived})
    per_flop = [ns / op_of_cost_name(op).flops for op, ns in model.op_ns.items()]
    if per_flop:
        model = replace(model, transcendental_ns=round(statistics.median(per_flop), 4))
    notes = [f"probe {pr.name}: {measured[pr.name] * 1e6:.1f} us -> {pr.param} = {_value(model, pr.param):g}"
             for pr in plist]
    if "column" in measured and "column_row" in measured:
        notes.append(f"probes column and column_row: {measured['column'] * 1e6:.1f} and {measured['column_row'] * 1e6:.1f} us "
                     f"-> column_factor = {model.column_factor:g}: the column sum's time over the row sum's")
    notes.append(f"transcendental_ns = {model.transcendental_ns:g} per flop for the ops not measured "
                 f"(the median of the measured ones)")
    if model.strided_op_ns:
        notes.append(f"strided_compute_factor = {model.strided_compute_factor:g}: the median of the measured ops' "
                     f"strided ns over their contiguous ns")
    return Calibration(replace(model, source=base.model.source + " and probe kernels"), base.method,
                       base.notes + notes, base.load_before, base.load_after)


DERIVED = ("column_factor",)  # constants computed from two probes' times, after the others are fitted
COLUMN_FACTOR_RANGE = (1.0, 10.0)  # never faster than a stream: fusion/bound.py counts every byte at a stream's rate


def _column_factor(model: MachineModel, measured: dict[str, float], pair: dict[str, Probe]) -> MachineModel:
    """How much slower a column-form reduction moves its bytes: the factor at which the model puts
    the column sum at the measured multiple of its own row sum (both timed in the same state, so
    the state's effect on each cancels)."""
    if set(pair) != {"column", "column_row"}:
        return model
    column, row = pair["column"], pair["column_row"]
    target = predict(model, row.graph(), row.cold) * measured["column"] / measured["column_row"]
    lo, hi = COLUMN_FACTOR_RANGE
    value = solve(model, "column_factor", column.graph(), target, lo, hi, column.cold)
    return replace(model, column_factor=float(f"{value:.5g}"))


def _strided_factor(model: MachineModel) -> MachineModel:
    """How much slower plain arithmetic, and the ops not measured there, run in a strided loop: the
    median over the measured ops of their strided ns over their contiguous ns."""
    slower = [ns / model.op_ns[op] for op, ns in model.strided_op_ns.items() if op in model.op_ns]
    return replace(model, strided_compute_factor=round(statistics.median(slower), 4)) if slower else model


def _value(model: MachineModel, param: str) -> float:
    if param.startswith("op_ns:"):
        op = param[6:]
        return model.op_ns.get(op, model.transcendental_ns * op_of_cost_name(op).flops)
    if param.startswith("strided_op_ns:"):
        op = param[14:]
        return model.strided_op_ns.get(op, _value(model, f"op_ns:{op}") * model.strided_compute_factor)
    return getattr(model, param)
