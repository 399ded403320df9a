"""The tuner: for each kernel of a graph, search its schedules and store the fastest.

    graph, kernels = fusec.pipeline.lower_all(path_or_graph)    # the kernels fusec.compile builds
    results = tune_graph(graph, kernels, backend="c", settings=TuneSettings(strategy="model", budget=24))

Per kernel:
  1. the search space (space.py) and a strategy (strategies.py);
  2. the reference: the interpreter's values for the kernel's inputs and outputs, saved once to a
     temporary directory that the worker processes read;
  3. the default schedule is measured first; then batches from the strategy: each batch is built in
     parallel on the executor, then measured one candidate at a time, each in its own process on an
     executor worker (isolate.py), checked against the reference before its time counts;
  4. a confirmation round: the default and the fastest few are measured again, in turn, and their
     samples pooled, so load that drifted during the search does not pick the winner;
  5. one record (the best and default schedules, every trial) is appended to the database.

A kernel whose key already has a record of at least this budget (or of its whole space) is not
measured again: the record is the result (`KernelResult.reused`), unless `retune`. `seconds` bounds
the whole run: once it has passed, each remaining kernel measures its default only.

A failing candidate (compile error, crash, hang, wrong result) becomes a typed Trial and the
search goes on; it never stops the tuner.
"""

from __future__ import annotations

import concurrent.futures
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fusec.codegen.base import Backend
from fusec.errors import FusecError
from fusec.fusion.machine import load_model
from fusec.fusion.plan import Group
from fusec.inputs import random_inputs
from fusec.interp import evaluate
from fusec.ir.graph import Graph
from fusec.loops.ir import LoopNest
from fusec.loops.schedule import Schedule
from fusec.runtime.build import sanitize_requested
from fusec.tune.db import TuneDB
from fusec.tune.executors import is_local, local_executor
from fusec.tune.isolate import measure_on_worker
from fusec.tune.jobs import FAILURES, BackendSpec, BuildResult, KernelJob, Trial
from fusec.tune.signature import (
    FORMAT,
    backend_identity,
    dtypes_of,
    kernel_hash,
    key_parts,
    machine_id,
    machine_signature,
    record_key,
    shapes_of,
)
from fusec.tune.space import Space, schedule_from_dict, schedule_ignored, schedule_to_dict, search_space
from fusec.tune.strategies import STRATEGIES, make_strategy
from fusec.tune.worker import build_candidate, pack_arrays

# environment a worker needs to build and run kernels exactly as this process would
PASS_ENV = ("FUSEC_CACHE_DIR", "XDG_CACHE_HOME", "CC", "FUSEC_SANITIZE")


@dataclass(frozen=True)
class TuneSettings:
    strategy: str = "auto"
    budget: int = 32  # candidates measured per kernel, the default included
    timeout_s: float = 60.0  # per candidate: build (a cache hit), check and timing in the worker
    batch: int = 8  # candidates built in parallel before they are measured one by one
    seed: int = 0  # random inputs and the random strategy
    warmup: int = 2
    repeats: int = 7
    min_sample_s: float = 0.002
    confirm: int = 2  # the fastest candidates measured again with the default before choosing
    build_timeout_s: float = 600.0  # for one batch of builds (the compiler itself stops at 120 s per kernel)
    seconds: float | None = None  # wall-time budget of the whole run (None: the budget of trials only)
    retune: bool = False  # measure even when the database already has a record of this budget

    def check(self) -> None:
        if self.strategy not in STRATEGIES:
            raise FusecError(f"unknown strategy {self.strategy!r} (expected one of {', '.join(STRATEGIES)})")
        if self.budget < 1:
            raise FusecError(f"the budget must be at least 1 candidate, got {self.budget}")
        if not self.timeout_s > 0:
            raise FusecError(f"the timeout must be positive, got {self.timeout_s}")
        if self.seconds is not None and not self.seconds > 0:
            raise FusecError(f"the time budget must be positive, got {self.seconds} s")
        if self.repeats < 1 or self.warmup < 0 or self.batch < 1:
            raise FusecError("repeats and batch must be at least 1, warmup at least 0")


@dataclass
class KernelResult:
    name: str
    kind: str
    key: str
    space: Space
    strategy: str
    trials: list[Trial] = field(default_factory=list)
    pruned: int = 0
    record: dict | None = None  # what was stored (None: nothing ran correctly, or nothing to tune)
    skipped: str = ""  # why nothing was measured (the backend ignores this kernel's schedule)
    seconds: float = 0.0  # wall time spent tuning this kernel
    budget: int = 0  # trials this kernel may take (the default included)
    reused: bool = False  # the result is a stored record: nothing was measured

    @property
    def default(self) -> Trial | None:
        return self.trials[0] if self.trials else None

    @property
    def best(self) -> Trial | None:
        ok = [t for t in self.trials if t.ok]
        return min(ok, key=lambda t: t.median_s) if ok else None

    @property
    def failures(self) -> Counter:
        return Counter(t.status for t in self.trials if not t.ok)

    @property
    def speedup(self) -> float | None:
        d, b = self.default, self.best
        if d is None or b is None or not d.ok:
            return None
        return d.median_s / b.median_s


def trial_to_dict(t: Trial) -> dict:
    out = {"schedule": schedule_to_dict(t.schedule), "status": t.status, "load": t.load}
    if t.machine is not None:
        out["machine_id"] = machine_id(t.machine)
    if t.ok:
        out.update(median_s=t.median_s, spread=round(t.spread, 4), min_s=min(t.samples), max_s=max(t.samples),
                   repeats=len(t.samples), samples=[float(f"{x:.6g}") for x in t.samples])
    else:
        out["detail"] = t.detail[:500]
    return out


def trial_from_dict(d: dict) -> Trial:
    """A stored trial (its samples, else its median as the one sample)."""
    samples = d.get("samples") or ([d["median_s"]] if d.get("median_s") else [])
    status = d.get("status", "crash")
    return Trial(schedule_from_dict(d["schedule"]), status, str(d.get("detail", "")),
                 [float(x) for x in samples] if status == "ok" else [], load=d.get("load"))


def make_record(graph: Graph, nest: LoopNest, backend: Backend, result: KernelResult, settings: TuneSettings) -> dict | None:
    best = result.best
    if best is None:
        return None
    signature = best.machine or machine_signature()  # the machine that measured it (a cluster worker)
    loads = sorted(t.load for t in result.trials if t.load is not None)
    return {
        "format": FORMAT,
        "key": record_key(nest, backend, machine_id(signature)),
        "key_parts": key_parts(nest, backend, machine_id(signature)),
        "kernel": nest.name,
        "graph": graph.name,
        "kind": nest.kind,
        "kernel_hash": kernel_hash(nest),
        "backend": backend.name,
        "backend_identity": backend_identity(backend),
        "machine_id": machine_id(signature),
        "machine": signature,
        "shapes": shapes_of(nest),
        "dtypes": dtypes_of(nest),
        "best": trial_to_dict(best),
        "default": trial_to_dict(result.default) if result.default else None,
        "speedup": result.speedup,
        "strategy": result.strategy,
        "budget": settings.budget,
        "space": len(result.space),
        "tried": len(result.trials),
        "failures": dict(result.failures),
        "trials": [trial_to_dict(t) for t in result.trials],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # how busy the machine was (median over the trials): judge the times by it
        "load_average": loads[len(loads) // 2] if loads else round(os.getloadavg()[0], 2),
        "worker": best.machine is not None,
    }


def history(db: TuneDB, key: str) -> list[tuple[Schedule, float]]:
    """(schedule, seconds) of every correct trial of this kernel in earlier runs."""
    out = []
    for rec in db.records_for(key):
        for t in rec.get("trials", []):
            if isinstance(t, dict) and t.get("status") == "ok" and isinstance(t.get("median_s"), (int, float)):
                try:
                    out.append((schedule_from_dict(t["schedule"]), float(t["median_s"])))
                except (FusecError, KeyError):
                    continue
    return out


def _save_arrays(directory: Path, nest: LoopNest, values: dict[str, np.ndarray]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for b in nest.buffers:
        if b.role in ("in", "inout"):
            np.save(directory / f"in_{b.name}.npy", np.require(values[b.value], dtype=b.dtype.numpy, requirements="C").reshape(b.shape))
        if b.role in ("out", "inout"):
            np.save(directory / f"expected_{b.name}.npy", np.require(values[b.written_value], dtype=b.dtype.numpy, requirements="C").reshape(b.shape))


def tune_graph(
    graph: Graph,
    kernels: list[tuple[Group, LoopNest]],
    backend: str = "c",
    settings: TuneSettings | None = None,
    db: TuneDB | None = None,
    executor: concurrent.futures.Executor | None = None,
    backend_options: dict | None = None,
    backend_factory: str = "",
    store: bool = True,
    progress: Callable[[KernelResult, Trial | None], None] | None = None,
) -> list[KernelResult]:
    """Tune the given kernels of `graph`, (group, nest) pairs; store the best schedule of each.

    `graph` and `kernels` come from the compiler's own pipeline, `fusec.pipeline.lower_all(...)`,
    so the kernels tuned are the ones `fusec.compile` builds and looks up. `executor` runs the builds
    and the measurements (default: a local process pool); `progress(result, trial)` is called when a
    kernel starts (trial None) and after each trial."""
    settings = settings or TuneSettings()
    settings.check()
    db = db or TuneDB()
    if sanitize_requested():
        raise FusecError("FUSEC_SANITIZE is set: sanitized kernels are for finding memory errors, not for timing; "
                         "unset it to tune")
    spec = BackendSpec(backend, tuple(sorted((backend_options or {}).items())), backend_factory)
    backend_obj = spec.make()
    # every space first, so a strategy that refuses one (exhaustive over budget) does before anything runs
    spaces = [search_space(n, backend_obj.name, backend_obj.default_schedule(n), ignored=schedule_ignored(backend_obj, n))
              for _, n in kernels]
    if settings.strategy == "exhaustive":
        for (_, nest), space in zip(kernels, spaces):
            make_strategy("exhaustive", len(space), settings.budget).start(nest, space.candidates[1:], settings.budget)
    values = evaluate(graph, random_inputs(graph, seed=settings.seed), keep_all=True)
    env = tuple((k, os.environ[k]) for k in PASS_ENV if k in os.environ)
    own_executor = executor is None
    executor = executor or local_executor()
    deadline = time.monotonic() + settings.seconds if settings.seconds else None
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="fusec-tune-") as tmp:
            for (group, nest), space in zip(kernels, spaces):
                directory = Path(tmp) / nest.name
                _save_arrays(directory, nest, values)
                inline = None if is_local(executor) else pack_arrays(directory)  # workers may not see our disk
                job = KernelJob(spec, graph, group, nest, directory, env, settings.warmup, settings.repeats,
                                settings.min_sample_s, inline)
                result = tune_kernel(job, space, backend_obj, settings, db, executor, progress, deadline)
                if not result.reused:
                    result.record = make_record(graph, nest, backend_obj, result, settings)
                    if store and result.record is not None:
                        db.append(result.record)
                results.append(result)
    finally:
        if own_executor:  # not waiting: a build that hung is left to finish (or not) on its own
            executor.shutdown(wait=False, cancel_futures=True)
    return results


def stored_result(db: TuneDB, key: str, space: Space, budget: int) -> dict | None:
    """The newest record of this key that measured at least `budget` trials (or the whole space)."""
    enough = [r for r in db.records_for(key)
              if isinstance(r.get("trials"), list) and len(r["trials"]) >= min(budget, len(space))]
    return enough[-1] if enough else None


def tune_kernel(job: KernelJob, space: Space, backend: Backend, settings: TuneSettings, db: TuneDB,
                executor: concurrent.futures.Executor,
                progress: Callable[[KernelResult, Trial | None], None] | None = None,
                deadline: float | None = None) -> KernelResult:
    start = time.perf_counter()
    nest = job.nest
    key = record_key(nest, backend)
    rest = space.candidates[1:]
    strategy = make_strategy(settings.strategy, len(space), settings.budget, settings.seed, machine_model(), history(db, key))
    strategy.start(nest, rest, settings.budget)
    result = KernelResult(nest.name, nest.kind, key, space, strategy.name, budget=min(settings.budget, len(space)))
    if space.note:  # a single candidate that the backend does not even look at: nothing to measure
        result.skipped = space.note
        return result
    old = None if settings.retune else stored_result(db, key, space, settings.budget)
    if old is not None:  # measured before, as much as asked now: measure nothing
        result.trials = [trial_from_dict(t) for t in old["trials"] if isinstance(t, dict) and "schedule" in t]
        result.reused, result.record, result.strategy = True, old, str(old.get("strategy", result.strategy))
        if progress:
            progress(result, None)
        return result
    if progress:
        progress(result, None)
    wait_s = settings.timeout_s + 60  # the worker's own timeout kills a hung candidate; this is a safety net

    def measure(s: Schedule) -> dict:
        try:
            return executor.submit(measure_on_worker, job, s, settings.timeout_s).result(timeout=wait_s)
        except concurrent.futures.TimeoutError:
            return {"status": "timeout", "detail": f"no answer from the executor within {wait_s:g} s"}
        except Exception as err:  # a worker that died, a lost connection: this candidate is lost, not the run
            return {"status": "crash", "detail": f"the executor failed: {type(err).__name__}: {err}"}

    def run_batch(batch: list[Schedule]) -> None:
        futures = [executor.submit(build_candidate, job, s) for s in batch]  # built in parallel
        deadline_b = time.monotonic() + settings.build_timeout_s
        builds = []
        for future in futures:  # every build done before anything is timed
            try:
                builds.append(future.result(timeout=max(deadline_b - time.monotonic(), 0.0)))
            except concurrent.futures.TimeoutError:  # a build that hangs cannot be stopped, only left behind
                builds.append(None)
            except Exception as err:
                builds.append(BuildResult(False, 0.0, f"the executor failed: {type(err).__name__}: {err}"))
        for s, built in zip(batch, builds):
            if result.trials and deadline is not None and time.monotonic() > deadline:
                break  # out of time: the rest of the batch is not measured (the default always is)
            if built is None:
                trial = Trial(s, "timeout", f"the build took more than {settings.build_timeout_s:g} s")
            elif not built.ok:
                trial = Trial(s, "compile", built.error, build_s=built.seconds)
            else:
                res = measure(s)  # one at a time
                status = res.get("status", "crash")
                trial = Trial(s, status if status in FAILURES or status == "ok" else "crash",
                              str(res.get("detail", "")), list(res.get("samples", [])), built.seconds,
                              res.get("load"), res.get("machine"))
            strategy.observe(s, trial.median_s)
            result.trials.append(trial)
            if progress:
                progress(result, trial)

    run_batch([space.default])
    remaining = list(rest)
    while len(result.trials) < settings.budget and remaining:
        if deadline is not None and time.monotonic() > deadline:
            break
        batch = strategy.next_batch(remaining, min(settings.batch, settings.budget - len(result.trials)))
        if not batch:
            break
        chosen = set(batch)
        remaining = [s for s in remaining if s not in chosen]
        run_batch(batch)
    confirm(result, measure, settings.confirm)
    result.pruned = strategy.pruned
    result.seconds = time.perf_counter() - start
    return result


def confirm(result: KernelResult, measure: Callable[[Schedule], dict], top: int) -> None:
    """Measure the default and the `top` fastest candidates once more, in turn, and pool the samples.

    Load on a shared machine drifts during a search; a candidate measured in a quiet minute can look
    faster than the default measured in a busy one. A second round close together in time evens
    that out before the best is chosen (a candidate that fails now is marked failed).
    """
    ok = sorted((t for t in result.trials[1:] if t.ok), key=lambda t: t.median_s)[:top]
    if not ok or top < 1:
        return
    for trial in [result.trials[0]] + ok:
        if not trial.ok:
            continue
        res = measure(trial.schedule)
        if res.get("status") == "ok":
            trial.samples.extend(res.get("samples", []))
        else:
            trial.status = res.get("status", "crash") if res.get("status") in FAILURES else "crash"
            trial.detail = "on a second run: " + str(res.get("detail", ""))
            trial.samples = []


def machine_model():
    """The calibrated machine model (`fusec calibrate`), else the defaults."""
    try:
        return load_model()
    except FusecError:
        return None
