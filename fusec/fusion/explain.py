"""The explain report: what each kernel holds, what it costs, and why each cut edge is cut.

`explain(plan)` gives a JSON-ready dict; `format_report` turns it into text for a terminal;
`compare` plans a graph with every policy and lines them up.
"""

from __future__ import annotations

from fusec.fusion.cost import group_cost, in_plan
from fusec.fusion.legality import analyze
from fusec.fusion.machine import MachineModel
from fusec.fusion.margins import edge_margins, format_margin
from fusec.fusion.plan import Plan, unfused_plan
from fusec.fusion.program import plan_bytes, program_bytes


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 6)


def explain(plan: Plan, model: MachineModel | None = None) -> dict:
    """A JSON-ready report on `plan`, costed with `model` (default: the model the plan was made with)."""
    g = plan.graph
    base = model or plan.model or MachineModel()
    model = base.for_program(plan_bytes(g, [grp.nodes for grp in plan.groups]))  # the plan's own arrays
    groups = []
    fused_bytes, fused_s = 0, 0.0
    order = {n: i for i, n in enumerate(g.topo_order())}
    shapes = [analyze(g, grp.nodes, order) for grp in plan.groups]
    # plan.groups are in the order the kernels run, so each one's cold call is judged from the one before
    costs = in_plan([group_cost(g, grp.nodes, model, shape) for grp, shape in zip(plan.groups, shapes)], model)
    for grp, shape, c in zip(plan.groups, shapes, costs):
        fused_bytes += c.nbytes
        fused_s += c.seconds
        groups.append(
            {
                "id": grp.id,
                "kind": grp.kind,
                "ops": list(grp.nodes),
                "op_kinds": [f"{g.node(n).op}:{g.node(n).kind}" for n in grp.nodes],
                "inputs": list(grp.inputs),
                "outputs": list(grp.outputs),
                "iteration_space": list(shape.space),
                "reduce_axes": list(shape.axes),
                "bytes": c.nbytes,
                "flops": c.flops,
                "predicted_ms": _ms(c.seconds),
                "bound": c.bound,
                # how its inner loop walks memory: "contiguous", "strided" (a read through a
                # transpose, or down narrow columns), or "staged" (codegen/c_stage.py)
                "loop": "staged" if c.staged else "strided" if c.strided else "contiguous",
            }
        )
    margins = edge_margins(plan, model)
    margin_of = {(e["producer"], e["consumer"]): e for e in margins}
    unfused_bytes, unfused_s = 0, 0.0
    unfused_model = base.for_program(program_bytes(g))  # the unfused program keeps every array
    unfused = unfused_plan(g).groups
    for c in in_plan([group_cost(g, grp.nodes, unfused_model, analyze(g, grp.nodes, order)) for grp in unfused], unfused_model):
        unfused_bytes += c.nbytes
        unfused_s += c.seconds
    return {
        "graph": g.name,
        "policy": plan.policy,
        "requested_policy": plan.requested or plan.policy,
        "kernels": plan.kernels,
        "ops": len(g.ops()),
        "groups": groups,
        "not_fused": [{"producer": n.producer, "consumer": n.consumer, "rule": n.rule, "reason": n.reason,
                       "margin_ms": margin_of[(n.producer, n.consumer)]["margin_ms"]
                       if (n.producer, n.consumer) in margin_of else None}
                      for n in plan.not_fused],
        "edges": margins,
        "bytes_unfused": unfused_bytes,
        "bytes_fused": fused_bytes,
        "predicted_ms_unfused": _ms(unfused_s),
        "predicted_ms_fused": _ms(fused_s),
        "predicted_speedup": round(unfused_s / fused_s, 3) if fused_s > 0 else None,
        "policy_candidates_ms": {k: round(v, 6) for k, v in plan.candidates.items()},
        "model": model.to_dict(),
        # the rate of the loads that miss the nearer caches, for a program of this plan's arrays
        "memory_gbs": round(model.memory_gbs, 3),
        "resident_share": round(model.resident_share(), 3),
    }


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


LOOP_NOTES = {"contiguous": "", "strided": "; strided loop", "staged": "; transposed tiles staged, then a vector loop"}


def format_report(report: dict) -> str:
    chosen = report["policy"]
    if report["requested_policy"] == "auto":
        chosen += " (chosen by auto: " + ", ".join(f"{k} {v:.3f} ms" for k, v in report["policy_candidates_ms"].items()) + ")"
    m = report["model"]
    k = report["kernels"]
    lines = [
        f"graph {report['graph']}: {report['ops']} ops -> {k} kernel{'' if k == 1 else 's'}, policy {chosen}",
        f"machine model ({m['source']}): {m['bandwidth_gbs']:g} GB/s, {m['peak_gflops']:g} GFLOP/s, "
        f"{m['kernel_overhead_us']:g} us per kernel" + _resident_note(report),
        "",
    ]
    for grp in report["groups"]:
        space = "[" + ", ".join(map(str, grp["iteration_space"])) + "]"
        axes = f" over axes {grp['reduce_axes']}" if grp["kind"] == "reduce" else ""
        lines.append(
            f"kernel {grp['id']} ({grp['kind']} {space}{axes}): {_mib(grp['bytes'])}, {grp['flops']:.3g} flops, "
            f"{grp['predicted_ms']:.3f} ms ({grp['bound']}-bound{LOOP_NOTES[grp['loop']]})"
        )
        lines.append("  ops:     " + ", ".join(f"{n}={k}" for n, k in zip(grp["ops"], grp["op_kinds"])))
        lines.append("  reads:   " + (", ".join(grp["inputs"]) or "-"))
        lines.append("  writes:  " + (", ".join(grp["outputs"]) or "-"))
    inside = [e for e in report["edges"] if e["fused"]]
    between = {(e["producer"], e["consumer"]): e for e in report["edges"] if not e["fused"]}
    if inside:
        lines += ["", f"edges fused (margin: the predicted gain over the kernel cut after the producer, less the "
                      f"model's {m['margin']:.0%} error on the work fusing adds):"]
        for e in inside:
            lines.append(f"  {e['producer']} -> {e['consumer']} in kernel {e['kernels'][0]}: {format_margin(e)}")
    if report["not_fused"]:
        lines += ["", "edges left between kernels:"]
        for nf in report["not_fused"]:
            lines.append(f"  {nf['producer']} -> {nf['consumer']}: {nf['rule']}: {nf['reason']}")
            e = between.get((nf["producer"], nf["consumer"]))
            if e is not None:
                lines.append(f"    merging kernels {e['kernels'][0]} and {e['kernels'][1]}: {format_margin(e)}")
    lines += [
        "",
        f"bytes moved:    unfused {_mib(report['bytes_unfused'])}  fused {_mib(report['bytes_fused'])}",
        f"predicted time: unfused {report['predicted_ms_unfused']:.3f} ms  fused {report['predicted_ms_fused']:.3f} ms"
        + (f"  ({report['predicted_speedup']:.2f}x)" if report["predicted_speedup"] else ""),
    ]
    return "\n".join(lines)


def compare(graph, model: MachineModel | None = None, force_fuse=(), forbid=()) -> list[dict]:
    """Plan `graph` with every policy; one row per policy with its kernels, bytes and predicted time."""
    from fusec.errors import FusecError
    from fusec.fusion.planner import POLICIES, plan

    rows = []
    for name in POLICIES:
        try:
            p = plan(graph, name, model, force_fuse, forbid)
        except FusecError as err:  # the optimal policy's solver found no plan within its time limit
            if name != "optimal":
                raise
            rows.append({"policy": name, "kernels": None, "bytes_fused": None, "predicted_ms_fused": None,
                         "gap": None, "groups": [], "error": err.message})
            continue
        r = explain(p, model)
        rows.append(
            {
                "policy": name,
                "kernels": r["kernels"],
                "bytes_fused": r["bytes_fused"],
                "predicted_ms_fused": r["predicted_ms_fused"],
                "gap": p.gap,  # optimal: the solver's proven relative gap (0.0: proven optimal); else None
                "gap_by": p.gap_by,  # optimal: "solver", or "lower bound" (its plan meets fusion/bound.py's bound)
                "groups": [grp["ops"] for grp in r["groups"]],
            }
        )
    return rows


def format_compare(rows: list[dict]) -> str:
    """A table of the policies; `gap` is the optimal policy's proven optimality gap (the most its
    plan's predicted time can exceed the best partition's), '-' for the heuristics, which prove none."""
    lines = [f"{'policy':<10} {'kernels':>7} {'bytes':>12} {'predicted':>12} {'gap':>6}  groups"]
    for r in rows:
        if r.get("error"):
            lines.append(f"{r['policy']:<10} {'-':>7} {'-':>12} {'-':>12} {'-':>6}  {r['error']}")
            continue
        gap = "-" if r["gap"] is None else f"{r['gap']:.1%}"
        groups = " | ".join(" ".join(ops) for ops in r["groups"])
        lines.append(f"{r['policy']:<10} {r['kernels']:>7} {_mib(r['bytes_fused']):>12} "
                     f"{r['predicted_ms_fused']:>9.3f} ms {gap:>6}  {groups}")
    if any(r.get("gap_by") == "lower bound" for r in rows):
        lines.append("optimal by lower bound: the plan's predicted time meets a bound no plan can beat (every op "
                     "computed once, inputs read and outputs written once, the fewest kernels), so no solver ran")
    return "\n".join(lines)


def _resident_note(report: dict) -> str:
    """What the last-level cache does for this graph, when the model has a figure for it."""
    share = report.get("resident_share", 0.0)
    if not share:
        return ""
    mib = report["model"]["program_bytes"] / 2**20
    return (f"; this plan's arrays take {mib:.0f} MiB, so the last-level cache is expected to serve "
            f"{share:.0%} of their traffic between runs and memory to move {report['memory_gbs']:g} GB/s")
