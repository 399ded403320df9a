"""The measurement protocol `fusec bench` applies to every path, fusec's own and the peers'.

For one .fg file:

1. load it (at reduced sizes with --quick, where its named dimensions allow) and draw seeded inputs;
2. run the unfused interpreter: the ground truth and the baseline every speedup is relative to;
3. measure the STREAM-triad bandwidth in this run, and cost the fusion plan with a model that uses it;
4. for each path, check its outputs against the interpreter (fusec.tolerance) *before* timing it:
   a path that disagrees is reported as wrong and never timed;
5. time it: warm-up, repeats, median and interquartile spread (fusec.bench.timing);
6. time each kernel of the C program on its own, for the roofline picture.

Paths: `interp`; `numpy`, `c` (default schedules) and `c-tuned` (schedules from the tuning
database), each with fresh outputs and with caller-provided outputs (`+out`, `program(..., out=)`);
peers (numexpr, torch.compile, jax.jit) run in their own processes (fusec.bench.peers).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

import fusec
from fusec.bench.results import PathResult, check_outputs
from fusec.bench.timing import Timing, time_calls
from fusec.errors import FusecError
from fusec.frontend import load
from fusec.fusion import explain, load_model, plan, prepare, unfused_plan
from fusec.inputs import random_inputs
from fusec.interp import interpret
from fusec.ir.graph import Graph
from fusec.pipeline import rewrite_stage

BACKENDS = ("numpy", "c", "c-tuned")
QUICK_ELEMENTS = 1 << 20  # --quick: shrink the dimensions until no value holds more elements than this


@dataclass(frozen=True)
class Settings:
    repeats: int = 15
    warmup: int = 1
    max_seconds: float = 20.0  # per path: stop repeating once this much time was spent (>= 3 samples)
    quick: bool = False
    triad_elements: int = 1 << 23
    seed: int = 0

    @classmethod
    def for_run(cls, quick: bool, repeats: int | None) -> Settings:
        if repeats is not None and repeats < 1:
            raise FusecError(f"--repeats must be at least 1, got {repeats}")
        if quick:
            return cls(repeats=repeats or 3, max_seconds=5.0, quick=True, triad_elements=1 << 21)
        return cls(repeats=repeats or 15)


@dataclass
class KernelPoint:
    """One kernel of the C program, for the roofline: what it moves and computes, measured and predicted."""

    name: str
    kind: str
    nbytes: int
    flops: int
    predicted_ms: float
    measured_ms: float | None = None

    @property
    def intensity(self) -> float:
        return self.flops / self.nbytes if self.nbytes else math.inf


@dataclass
class FileResult:
    file: str
    graph: str
    sizes: dict[str, int]
    triad_gbs: float
    threads: int
    bytes_unfused: int
    bytes_fused: int
    model: dict
    paths: list[PathResult] = field(default_factory=list)
    kernels: list[KernelPoint] = field(default_factory=list)

    @property
    def baseline(self) -> Timing | None:
        return next((p.timing for p in self.paths if p.name == "interp"), None)

    def path_dicts(self) -> dict[str, dict]:
        return {p.name: p.to_dict(self.baseline, self.triad_gbs) for p in self.paths}


def quick_sizes(path: str | Path, given: dict[str, int]) -> dict[str, int]:
    """Smaller named dimensions for a quick run: halve one at a time (largest first) while the graph
    still loads and some value holds more than QUICK_ELEMENTS elements. Dimensions tied to each other
    (H * Dh = D) keep whatever value the graph needs. `given` (--set) is never changed."""
    defaults = load(path).dims
    graph = load(path, sizes=given or None)
    sizes = dict(graph.dims)

    def biggest(g: Graph) -> int:
        return max(g.type_of(n).size for n in g.nx.nodes)

    while biggest(graph) > QUICK_ELEMENTS:
        for name in sorted((d for d in sizes if d not in given and sizes[d] > 1), key=lambda d: -sizes[d]):
            trial = {**sizes, name: sizes[name] // 2}
            try:
                graph = load(path, sizes=trial)
            except FusecError:
                continue
            sizes = trial
            break
        else:
            break  # no dimension can shrink any further
    return {k: v for k, v in sizes.items() if v != defaults.get(k) or k in given}


def build_program(graph: Graph, variant: str) -> fusec.Compiled:
    """The compiled program of one fusec path (tests replace this to inject a wrong result)."""
    backend = "numpy" if variant == "numpy" else "c"
    return fusec.compile(graph, backend=backend, tune_db=None if variant == "c-tuned" else False)


def _same_schedules(a: fusec.Compiled, b: fusec.Compiled) -> bool:
    return [str(s) for s in a.stages.schedules] == [str(s) for s in b.stages.schedules]


def fusec_paths(graph: Graph, xs: list[np.ndarray], expected: tuple, variant: str, settings: Settings,
                report: dict, default_c: fusec.Compiled | None) -> tuple[list[PathResult], fusec.Compiled | None]:
    """The fresh-output and out= paths of one variant (numpy, c, c-tuned)."""
    names = (variant, f"{variant}+out")

    def both(status: str) -> list[PathResult]:
        return [PathResult(n, status, mode) for n, mode in zip(names, ("fresh", "caller"))]

    try:
        program = build_program(graph, variant)
    except FusecError as err:
        return both(f"failed: {err.message}"), None
    if variant != "numpy" and program.backend != "c":
        return both("skipped: no C compiler"), None
    if variant == "c-tuned" and default_c is not None and _same_schedules(program, default_c):
        return both("skipped: the tuning database holds no schedule for these kernels (run `fusec tune FILE`)"), program
    common = dict(kernels=program.kernels, nbytes=report["bytes_fused"], predicted_ms=report["predicted_ms_fused"])
    outs = tuple(np.empty(o.shape, o.dtype) for o in program.outputs)
    calls = {
        names[0]: (lambda: program(*xs), "fresh"),
        names[1]: (lambda: program(*xs, out=outs), "caller"),
    }
    results = []
    for name, (call, mode) in calls.items():
        try:
            got = call()
            if mode == "caller":
                got = outs
            problem = check_outputs(graph, got, expected)
            if problem:
                results.append(PathResult(name, problem, mode, **common))
                continue
            timing = time_calls(call, settings.repeats, settings.warmup, settings.max_seconds)
        except FusecError as err:
            results.append(PathResult(name, f"failed: {err.message}", mode, **common))
            continue
        results.append(PathResult(name, "ok", mode, timing, **common))
    return results, program


def kernel_points(program: fusec.Compiled, xs: list[np.ndarray], report: dict, settings: Settings) -> list[KernelPoint]:
    """Time each kernel of a compiled program on its own (outputs preallocated), as the executor runs it."""
    from fusec.runtime.executor import Executor, Step, ValueType

    g = program.stages.plan.graph
    samples: dict[int, list[float]] = {k: [] for k in range(len(program.stages.kernels))}

    def timed(k, run):
        def wrapper(*arrays):
            t0 = time.perf_counter()
            run(*arrays)
            samples[k].append(time.perf_counter() - t0)

        return wrapper

    steps = [Step(k.name, timed(i, k.run), k.params, k.inputs, k.outputs, dict(k.inplace)) for i, k in enumerate(program.stages.kernels)]
    types = {n: ValueType(g.type_of(n).shape, g.type_of(n).dtype.numpy) for n in g.nx.nodes}
    produced = [o for o in dict.fromkeys(g.outputs) if any(o in k.outputs for k in program.stages.kernels)]
    executor = Executor(steps, produced, types)
    inputs = dict(zip(g.inputs, xs))
    outs = {o: np.empty(types[o].shape, types[o].dtype) for o in produced}
    time_calls(lambda: executor.run(inputs, outs), settings.repeats, settings.warmup, settings.max_seconds)
    points = []
    for i, (kernel, grp) in enumerate(zip(program.stages.kernels, report["groups"])):
        runs = samples[i][settings.warmup :] or samples[i]
        points.append(KernelPoint(kernel.name, grp["kind"], grp["bytes"], grp["flops"], grp["predicted_ms"],
                                  float(np.median(runs)) * 1e3 if runs else None))
    return points


def bench_file(path: str | Path, given_sizes: dict[str, int], backends: list[str], peers: list[str],
               settings: Settings, triad) -> FileResult:
    """Measure every requested path of one file. `triad` is a callable returning a probes.Bandwidth."""
    from fusec.bench.peers import run_peer

    sizes = quick_sizes(path, given_sizes) if settings.quick else dict(given_sizes)
    graph = load(path, sizes=sizes or None)
    xs = random_inputs(graph, seed=settings.seed)
    expected = interpret(graph, *xs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    bandwidth = triad()
    model = load_model()
    model = replace(model, bandwidth_gbs=bandwidth.best_gbs, source=f"{model.source}, bandwidth: triad in this run")
    report = explain(plan(rewrite_stage(graph, ("exact", "approx")).graph, policy="auto"), model)
    # unfused: one kernel per op of the graph as written (composites as their primitives), which is
    # what the interpreter runs; the plan's own "unfused" figure is of the rewritten graph
    unfused = explain(unfused_plan(prepare(graph)), model)
    result = FileResult(str(path), graph.name, dict(graph.dims), bandwidth.best_gbs, bandwidth.threads,
                        unfused["bytes_fused"], report["bytes_fused"], model.to_dict())
    default_c = None
    paths: list[PathResult] = []
    for variant in [b for b in BACKENDS if b in backends]:
        found, program = fusec_paths(graph, xs, expected, variant, settings, report, default_c)
        paths += found
        if variant == "c" and program is not None and all(p.status == "ok" for p in found):
            default_c = program
    interp_timing = time_calls(lambda: interpret(graph, *xs), settings.repeats, settings.warmup, settings.max_seconds)
    result.paths.append(PathResult("interp", "ok", "fresh", interp_timing, len(graph.ops()), unfused["bytes_fused"],
                                   unfused["predicted_ms_fused"]))
    result.paths += paths
    minimum = sum(graph.type_of(n).nbytes for n in dict.fromkeys(graph.inputs + graph.outputs))
    for peer in peers:
        result.paths.append(run_peer(peer, str(path), sizes, settings, minimum))
    if default_c is not None:
        result.kernels = kernel_points(default_c, xs, explain(default_c.stages.plan, model), settings)
    return result
