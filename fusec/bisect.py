"""Layer 7: find where a compiled graph goes wrong.

`check` compiles a graph, runs it and compares every output with the interpreter: this is the
differential test the fuzzer (tools/fuzz.py) runs on thousands of random graphs.

`bisect` explains a mismatch in three steps, each cheaper to reason about than the last:

1. Rewrites. If the *interpreter* already disagrees on the rewritten graph, a rewrite rule changed
   the meaning: re-run the rewriter without each rule that fired, and name the one whose removal
   makes the mismatch go away.
2. Kernels. Otherwise run every kernel alone, on inputs the interpreter computed, and name the first
   fused group whose output diverges, with the error in ulps. Feeding each kernel exact inputs
   keeps an earlier kernel's small error from being blamed on a later one.
3. Fusion decisions. Forbid each producer -> consumer edge inside that group in turn, recompile,
   and name the edge whose fusion causes the mismatch; if none does (or the group holds one op),
   the backend's code for the group itself is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fusec.api import Compiled
from fusec.errors import FusecError
from fusec.interp import evaluate
from fusec.ir.graph import Graph
from fusec.loops.masks import read_elements
from fusec.pipeline import Stages, compile_stages
from fusec.tolerance import Mismatch, compare_output

DEFAULT_CLASSES = ("exact", "approx")


@dataclass
class Failure:
    """A compiled graph that disagrees with the interpreter (`mismatch`) or does not compile or run
    (`crash`, an internal error: a FusecError on a well-typed graph is one too)."""

    backend: str
    kind: str  # "mismatch" or "crash"
    output: str | None = None
    mismatch: Mismatch | None = None
    error: BaseException | None = None

    @property
    def signature(self) -> str:
        """What makes two failures the same bug, for shrinking: the backend, the kind, the error type."""
        if self.kind == "crash":
            return f"{self.backend}: crash: {type(self.error).__name__}"
        return f"{self.backend}: mismatch"

    def __str__(self) -> str:
        if self.kind == "crash":
            first = (str(self.error).splitlines() or [""])[0]
            return f"{self.backend}: {type(self.error).__name__}: {first}"
        return f"{self.backend}: output '{self.output}': {self.mismatch}"


def compile_with(graph: Graph, backend: str, classes=DEFAULT_CLASSES, rules=None, policy: str = "auto", forbid=(),
                 stop_after: str = "source") -> Stages:
    """The one pipeline, with the knobs bisection turns: the rewrite rules to draw from and fusion
    edges to forbid (default schedules, no tuning database, so a run does not depend on tuning)."""
    return compile_stages(graph, backend, policy=policy, rewrite_classes=classes, rules=rules, forbid=forbid, tune_db=False, stop_after=stop_after)


def compile_and_run(graph: Graph, arrays: list[np.ndarray], backend: str, **compile_args: Any) -> dict[str, np.ndarray]:
    results = Compiled(compile_with(graph, backend, **compile_args))(*arrays)
    results = results if isinstance(results, tuple) else (results,)
    return dict(zip(graph.outputs, results))


def check(graph: Graph, arrays: list[np.ndarray], backend: str, expected: dict | None = None, **compile_args: Any) -> Failure | None:
    """Compile `graph` for `backend`, run it on `arrays`, and compare with the interpreter.

    compile_args: classes, rules, policy, forbid (see `compile_with`)."""
    expected = evaluate(graph, arrays) if expected is None else expected
    try:
        got = compile_and_run(graph, arrays, backend, **compile_args)
    except Exception as err:  # noqa: BLE001 - every escape on a well-typed graph is a finding
        return Failure(backend, "crash", error=err)
    for o in graph.outputs:
        m = compare_output(graph, o, got[o], expected[o])
        if m is not None:
            return Failure(backend, "mismatch", output=o, mismatch=m)
    return None


# ------------------------------------------------------------------------------------------ bisection


@dataclass
class GroupDivergence:
    group: int
    kind: str
    ops: list[str]
    output: str
    mismatch: Mismatch

    def __str__(self) -> str:
        m = self.mismatch
        return (
            f"group {self.group} ({self.kind}: {', '.join(self.ops)}) diverges first: output '{self.output}' is off by "
            f"{m.max_ulp_error:.3g} ulps (max abs error {m.max_abs_error:.3g})"
        )


@dataclass
class BisectReport:
    backend: str
    failure: Failure | None  # the whole graph's mismatch, None if there is none
    rewrite_rule: str | None = None  # the rule whose removal fixes it
    group: GroupDivergence | None = None  # the first kernel that is wrong on exact inputs
    fusion_edge: tuple[str, str] | None = None  # the producer -> consumer fusion that causes it
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.failure is None:
            return f"bisect: no mismatch on backend {self.backend}"
        lines = [f"bisect: {self.failure}"]
        if self.rewrite_rule:
            lines.append(f"bisect: rewrite rule '{self.rewrite_rule}' causes it: without it the results match")
        if self.group is not None:
            lines.append(f"bisect: {self.group}")
        if self.fusion_edge:
            a, b = self.fusion_edge
            lines.append(f"bisect: fusing '{a}' into '{b}' causes it: with that edge forbidden the results match")
        lines += [f"bisect: {n}" for n in self.notes]
        return "\n".join(lines)


def bisect(graph: Graph, arrays: list[np.ndarray], backend: str = "c", rewrite_classes=DEFAULT_CLASSES, policy: str = "auto") -> BisectReport:
    """Explain why `graph` compiled for `backend` disagrees with the interpreter on `arrays`."""
    expected = evaluate(graph, arrays)
    failure = check(graph, arrays, backend, expected, classes=rewrite_classes, policy=policy)
    report = BisectReport(backend, failure)
    if failure is None:
        return report
    if failure.kind == "crash":
        report.notes.append("it does not compile or run, so there are no results to bisect")
        return report

    # 1. the rewrites, judged by the interpreter alone
    built = compile_with(graph, backend, rewrite_classes, policy=policy)
    rewritten = built.rewritten
    if _differs(evaluate(rewritten.graph, arrays), expected, graph.outputs, rewritten.graph.outputs, graph):
        report.rewrite_rule = _guilty_rule(graph, arrays, expected, rewrite_classes, rewritten)
        if report.rewrite_rule is None:
            report.notes.append("the rewritten graph already differs in the interpreter, but no single rule explains it")
        return report

    # 2. the kernels, each on exact inputs
    the_plan = built.plan
    report.group = _first_divergent_group(built, arrays)
    if report.group is None:
        report.notes.append(
            "every kernel is within tolerance on exact inputs: the small errors of several kernels add up"
        )
        report.rewrite_rule = _rule_whose_removal_fixes(graph, arrays, expected, backend, rewrite_classes, rewritten, policy)
        return report

    # 3. the fusion decisions inside that group
    grp = the_plan.groups[report.group.group]
    members = set(grp.nodes)
    g = the_plan.graph
    edges = [(a, n) for n in grp.nodes for a in dict.fromkeys(g.node(n).args) if a in members]
    for a, b in edges:
        try:
            again = check(graph, arrays, backend, expected, classes=rewrite_classes, policy=policy, forbid=[(a, b)])
        except FusecError:
            continue
        if again is not None and again.kind == "crash":
            continue
        if again is None:
            report.fusion_edge = (a, b)
            break
    if report.fusion_edge is None:
        if len(grp.nodes) == 1:
            report.notes.append(f"the group is one op ({g.node(grp.nodes[0]).op}): the {backend} backend computes it wrongly")
        else:
            # unfused, every op is its own kernel: the first wrong one is the op the backend gets wrong
            alone = _first_divergent_group(compile_with(graph, backend, rewrite_classes, policy="unfused"), arrays)
            if alone is not None and len(alone.ops) == 1:
                report.notes.append(f"no fusion decision explains it: even alone, {alone.ops[0]} is wrong on the {backend} backend")
            else:
                report.notes.append(f"no single fusion decision explains it: the {backend} backend's code for this group is wrong")
        rule = _rule_whose_removal_fixes(graph, arrays, expected, backend, rewrite_classes, rewritten, policy)
        if rule is not None:
            report.rewrite_rule = rule
    return report


def _differs(got: dict, expected: dict, want_names: list[str], got_names: list[str], graph: Graph) -> bool:
    return any(compare_output(graph, a, got[b], expected[a]) is not None for a, b in zip(want_names, got_names))


def _without(rule_name: str):
    from fusec.rewrite.library import standard_rules

    return [r for r in standard_rules() if r.name != rule_name]


def _guilty_rule(graph, arrays, expected, classes, rewritten) -> str | None:
    for name in rewritten.fired():
        if name in ("fold", "cse", "dce"):
            continue
        again = compile_with(graph, "numpy", classes or (), rules=_without(name), stop_after="rules").rewritten
        if not _differs(evaluate(again.graph, arrays), expected, graph.outputs, again.graph.outputs, graph):
            return name
    return None


def _rule_whose_removal_fixes(graph, arrays, expected, backend, classes, rewritten, policy) -> str | None:
    """A rule that fired and without which the compiled graph matches (it may enable a bad fusion)."""
    for name in rewritten.fired():
        if name in ("fold", "cse", "dce"):
            continue
        try:
            again = _check_with_rules(graph, arrays, backend, expected, classes, _without(name), policy)
        except FusecError:
            continue
        if again is None:
            return name
    return None


def _check_with_rules(graph, arrays, backend, expected, classes, rules, policy) -> Failure | None:
    """check(), with the rewriter limited to `rules`."""
    return check(graph, arrays, backend, expected, classes=classes, rules=rules, policy=policy)


def _first_divergent_group(built: Stages, arrays) -> GroupDivergence | None:
    """Run every kernel of a compiled graph alone, on the interpreter's values of its inputs."""
    g = built.plan.graph
    ref = evaluate(g, arrays, keep_all=True)
    for grp, kernel in zip(built.plan.groups, built.kernels):
        values = {}
        for p in kernel.params:
            if p in kernel.outputs and p not in kernel.inputs:
                t = g.type_of(p)
                values[p] = np.empty(t.shape, t.dtype.numpy)
            else:
                values[p] = np.array(ref[p], copy=True, order="C")
        kernel.run(*(values[p] for p in kernel.params))
        for o in kernel.outputs:
            read = read_elements(g, o, values[o].shape)  # a masked matmul leaves unread elements unwritten
            got = values[o] if read is None else np.where(read, values[o], ref[o])
            m = compare_output(g, o, got, ref[o])
            if m is not None:
                return GroupDivergence(grp.id, grp.kind, [f"{n} = {g.node(n).op}" for n in grp.nodes], o, m)
    return None


__all__ = ["BisectReport", "Failure", "GroupDivergence", "bisect", "check", "compile_and_run", "compile_with"]
