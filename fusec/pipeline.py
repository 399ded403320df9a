"""The whole compiler, one stage per line (see `compile_stages`).

    parse -> rewrite -> plan -> lower -> schedule -> codegen + build

Every command and the Python API go through `compile_stages`, so `fusec check`, `explain`, `viz`,
`compile`, `run`, `tune`, `bisect` and `fusec.compile` all see the same rewritten graph and the same
plan. `stop_after=` ends the run early: "groups" for the commands that only plan (they need no C
compiler), "loops" for the tuner. Every stage's result is kept in a `Stages` record and can be
printed (`Stages.show(name)`), which is what `fusec compile FILE --show ir,rules,groups,loops,source`
prints.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fusec.errors import FusecError
from fusec.frontend import load
from fusec.fusion import MachineModel, explain, format_report, plan
from fusec.fusion.plan import Group, Plan
from fusec.ir.graph import Graph
from fusec.ir.printer import print_graph
from fusec.rewrite import DEFAULT_CLASSES, RewriteResult, Rule, rewrite
from fusec.rewrite.driver import DEFAULT_MAX_ITERATIONS

if TYPE_CHECKING:  # the stages after the plan are imported when they run: `fusec check` never loads them
    from fusec.codegen.base import Backend, Kernel
    from fusec.loops.ir import LoopNest
    from fusec.loops.schedule import Schedule

# the stages' names, in order, as `--show` and `stop_after=` spell them
STAGES = ("ir", "rules", "groups", "loops", "schedule", "source")

_warned_no_compiler = False


@dataclass
class Stages:
    """What each stage produced, in order; the stages after `stop_after` are left empty."""

    graph: Graph  # parse
    rewritten: RewriteResult | None = None  # rewrite
    plan: Plan | None = None  # plan
    nests: list[LoopNest | None] = field(default_factory=list)  # lower (None: an opaque group runs its reference op)
    schedules: list[Schedule | None] = field(default_factory=list)  # schedule
    kernels: list[Kernel] = field(default_factory=list)  # codegen + build
    backend: str = "c"  # the backend that built the kernels (or was asked for, if none were built)
    stopped_after: str = STAGES[-1]
    notes: list[str] = field(default_factory=list)

    @property
    def kernel_count(self) -> int:
        """How many kernels the program runs: one per group of the plan."""
        if self.plan is None:
            raise FusecError(f"there is no plan yet: the pipeline stopped after '{self.stopped_after}'")
        return self.plan.kernels

    def lowered(self) -> list[tuple[Group, LoopNest]]:
        """(group, loop nest) of every kernel that has a nest (opaque groups have none)."""
        return [(g, n) for g, n in zip(self.plan.groups, self.nests) if n is not None]

    def show(self, stage: str) -> str:
        if stage not in STAGES:
            raise FusecError(f"unknown stage '{stage}' (stages: {', '.join(STAGES)})")
        if STAGES.index(stage) > STAGES.index(self.stopped_after):
            raise FusecError(f"cannot show '{stage}': the pipeline stopped after '{self.stopped_after}'")
        if stage == "ir":
            return print_graph(self.graph)
        if stage == "rules":
            return print_graph(self.rewritten.graph) + "\n" + self.rewritten.trace_text() + "\n"
        if stage == "groups":
            return format_report(explain(self.plan))
        if stage in ("loops", "schedule"):  # loops: as lowered and as scheduled; schedule: each primitive's nest
            from fusec.loops.show import print_schedule_steps, print_scheduled

            show = print_scheduled if stage == "loops" else print_schedule_steps
            parts = []
            for nest, sched, grp in zip(self.nests, self.schedules, self.plan.groups):
                if nest is None:
                    parts.append(f"kernel group {grp.id} ({grp.kind}): runs its reference NumPy op\n")
                else:
                    parts.append(show(nest, sched, self.backend))
            return "\n".join(parts)
        return "\n\n".join(k.source for k in self.kernels)  # source


def compile_stages(
    graph_or_path: Graph | str | Path,
    backend: str = "c",
    sizes: dict[str, int] | None = None,
    policy: str = "auto",
    rewrite_classes: Sequence[str] | None = DEFAULT_CLASSES,
    donate: dict[str, str] | None = None,
    schedules: dict[int, Schedule] | None = None,
    tune_db: str | Path | bool | None = None,
    *,
    rules: Sequence[Rule] | None = None,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    force_fuse: Sequence = (),
    forbid: Sequence = (),
    model: MachineModel | None = None,
    stop_after: str = STAGES[-1],
) -> Stages:
    """Run the stages of the compiler on a graph (or a .fg file), up to `stop_after`, keeping each result.

    rewrite_classes: the rule classes to apply (None: no rewrite stage, the graph is planned as
        written); rules: the rules to draw them from (default: the standard library);
        max_iterations: the rewrite driver's bound on its passes.
    policy, force_fuse, forbid, model: the fusion policy, op pairs that must / must not share a
        kernel (("a", "b") or "a,b"), and the machine model for the cost model (default: calibrated).
    donate: output -> input updated in place. schedules: group id -> Schedule, overriding the
        tuning database `tune_db` (a path; None: the default one; False: do not look).
    stop_after: the last stage to run, one of STAGES ("groups" needs no backend, so no C compiler).
    """
    if stop_after not in STAGES:
        raise FusecError(f"unknown stage '{stop_after}' (stages: {', '.join(STAGES)})")

    def runs(stage: str) -> bool:
        return STAGES.index(stage) <= STAGES.index(stop_after)

    s = Stages(parse_stage(graph_or_path, sizes), backend=backend, stopped_after=stop_after)  # parse
    if runs("rules"):
        s.rewritten = rewrite_stage(s.graph, rewrite_classes, rules, max_iterations)  # rewrite
    if runs("groups"):
        check_pairs_survive(s.graph, s.rewritten, force_fuse, forbid)
        s.plan = plan(s.rewritten.graph, policy, model=model, force_fuse=force_fuse, forbid=forbid)  # plan
    if runs("loops"):
        be = choose_backend(backend)
        s.backend = be.name
        inplace = donations(s.plan, donate or {})
        s.nests = [lower(s.plan.graph, grp, inplace) for grp in s.plan.groups]  # lower
        s.schedules = [pick_schedule(be, n, (schedules or {}).get(g.id), tune_db) for g, n in zip(s.plan.groups, s.nests)]  # schedule
    if runs("source"):
        s.kernels = build(be, s.plan.graph, s.plan.groups, s.nests, s.schedules)  # codegen + build
    return s


def lower_all(graph_or_path: Graph | str | Path, **options) -> tuple[Graph, list[tuple[Group, LoopNest]]]:
    """(the graph the kernels compute, [(group, nest)] of every kernel with a loop nest), exactly as
    compile_stages lowers them: what the tuner measures. options: those of compile_stages."""
    s = compile_stages(graph_or_path, stop_after="loops", **options)
    return s.plan.graph, s.lowered()


# ----------------------------------------------------------------------------------------------
# the stages


def parse_stage(graph_or_path: Graph | str | Path, sizes: dict[str, int] | None) -> Graph:
    if isinstance(graph_or_path, Graph):
        if sizes:
            raise FusecError("sizes= applies to a .fg file; a Graph already has its sizes")
        graph_or_path.verify()
        return graph_or_path
    return load(graph_or_path, sizes=sizes)


def rewrite_stage(graph: Graph, classes: Sequence[str] | None, rules: Sequence[Rule] | None = None,
                  max_iterations: int = DEFAULT_MAX_ITERATIONS) -> RewriteResult:
    """Rewrite with the given rule classes (drawn from `rules`, default the standard library); None
    skips the stage (the graph is compiled as written)."""
    if classes is None:
        return RewriteResult(graph.copy())
    return rewrite(graph, classes, max_iterations=max_iterations, rules=rules)


def check_pairs_survive(graph: Graph, rewritten: RewriteResult, force_fuse: Sequence, forbid: Sequence) -> None:
    """A --force-fuse / --forbid pair names ops of the planned (rewritten) graph: say so when one of
    them was written in the source but rewritten away, rather than that it does not exist."""
    for flag, pairs in (("--force-fuse", force_fuse), ("--forbid", forbid)):
        for item in pairs:
            for name in (item.split(",") if isinstance(item, str) else item):
                name = str(name).strip()
                if name in graph and name not in rewritten.graph:
                    rules = [step.rule for step in rewritten.trace if step.node == name]
                    how = f"rule '{rules[-1]}' rewrote it" if rules else "the rewrite removed it"
                    raise FusecError(f"{flag}: '{name}' is not in the graph that is planned: {how} "
                                     "(`fusec compile FILE --show rules` prints the rewritten graph)")


def choose_backend(name: str) -> Backend:
    """The backend; a missing C compiler gives one warning and the NumPy backend."""
    global _warned_no_compiler
    from fusec.codegen import BACKENDS, get_backend

    if name not in BACKENDS:
        raise FusecError(f"unknown backend '{name}' (backends: {', '.join(BACKENDS)})")
    if name == "c":
        from fusec.runtime.build import NoCompilerError

        try:
            return get_backend("c")
        except NoCompilerError as err:
            if not _warned_no_compiler:
                warnings.warn(f"{err.message}; using the NumPy backend instead", RuntimeWarning, stacklevel=3)
                _warned_no_compiler = True
            return get_backend("numpy")
    return get_backend(name)


def donations(p: Plan, donate: dict[str, str]) -> dict[str, str]:
    """Check that each donated input can hold its output; returns output -> input."""
    g = p.graph
    seen: dict[str, str] = {}
    for out, inp in donate.items():
        if inp not in g.inputs:
            raise FusecError(f"cannot donate '{inp}': it is not an input of graph '{g.name}'")
        if out not in g.outputs:
            raise FusecError(f"cannot donate '{inp}' to '{out}': '{out}' is not an output of graph '{g.name}'")
        if inp in seen:
            raise FusecError(f"input '{inp}' is donated twice (to '{seen[inp]}' and '{out}')")
        if inp in g.outputs:
            raise FusecError(f"cannot donate '{inp}': it is also an output")
        if g.type_of(inp) != g.type_of(out):
            raise FusecError(f"cannot donate '{inp}' ({g.type_of(inp)}) to '{out}' ({g.type_of(out)}): the types differ")
        writer = p.group_of(out)
        if writer is None or inp not in writer.inputs:
            raise FusecError(f"cannot donate '{inp}' to '{out}': the kernel that writes '{out}' does not read '{inp}'")
        for grp in p.groups[p.groups.index(writer) + 1 :]:
            if inp in grp.inputs:
                raise FusecError(f"cannot donate '{inp}' to '{out}': a later kernel (group {grp.id}) still reads '{inp}'")
        seen[inp] = out
    return {o: i for i, o in seen.items()}


def lower(graph: Graph, grp: Group, inplace: dict[str, str]) -> LoopNest | None:
    if grp.kind == "opaque":
        if any(o in inplace for o in grp.outputs):
            raise FusecError(f"cannot update in place through group {grp.id} ({grp.kind})")
        return None
    mine = {o: i for o, i in inplace.items() if o in grp.outputs}
    from fusec.loops.lower import lower_group

    return lower_group(graph, grp, name=f"{graph.name}_k{grp.id}", inplace=mine)


def pick_schedule(be: Backend, nest: LoopNest | None, override: Schedule | None,
                  tune_db: str | Path | bool | None = None) -> Schedule | None:
    """An explicit schedule, else the fastest one `fusec tune` stored for this kernel on this machine
    (tune_db: a path; None: $FUSEC_TUNE_DB or the cache dir's tune.jsonl; False: do not look), else
    the backend's default."""
    if nest is None:
        return None
    if override is not None:
        return override
    if tune_db is not False:
        from fusec.tune import best_schedule

        tuned = best_schedule(nest, be, None if tune_db in (None, True) else tune_db)
        if tuned is not None:
            return tuned
    return be.default_schedule(nest)


def build(be: Backend, graph: Graph, groups: list[Group], nests: list, scheds: list) -> list[Kernel]:
    """Every group's kernel, in plan order (the backend may compile them together)."""
    items = [(g, n, s) for g, n, s in zip(groups, nests, scheds) if n is not None]
    built = iter(be.build_all(graph, items))
    return [next(built) if n is not None else reference_kernel(graph, g) for g, n in zip(groups, nests)]


def reference_kernel(graph: Graph, grp: Group) -> Kernel:
    """A group no loop nest describes (opaque): run its ops with the interpreter's NumPy calls."""
    from fusec.codegen.base import Kernel

    members = list(grp.nodes)
    params = tuple(grp.inputs) + tuple(grp.outputs)

    def run(*arrays):
        values = dict(zip(params, arrays))
        with np.errstate(all="ignore"):
            for n in members:
                node = graph.node(n)
                args = [values[a] if a in values else np.asarray(graph.node(a).attrs["value"], graph.node(a).type.dtype.numpy) for a in node.args]
                values[n] = np.asarray(node.opdef.numpy(args, node.attrs)).astype(node.type.dtype.numpy)
        for o, arr in zip(grp.outputs, arrays[len(grp.inputs) :]):
            np.copyto(arr, values[o])

    source = f"# group {grp.id} ({grp.kind}): the reference NumPy op(s) {', '.join(graph.node(n).op for n in members)}\n"
    return Kernel(f"{graph.name}_k{grp.id}", "reference", params, tuple(grp.inputs), tuple(grp.outputs), source, run)
