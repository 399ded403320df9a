"""Commands on fusion: explain (what fuses and why), calibrate (measure the machine), viz (draw it)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from fusec.cli.common import add_file_args, run_pipeline, write_atomic
from fusec.errors import FusecError
from fusec.fusion import (
    MachineModel,
    compare,
    explain,
    format_compare,
    format_report,
    load_model,
    save_model,
)
from fusec.fusion.machine import model_path
from fusec.fusion.planner import POLICY_HELP


def _pair_list(text: str) -> str:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected two op names A,B, got '{text}'")
    return text


def add_plan_args(p: argparse.ArgumentParser) -> None:
    add_file_args(p)
    p.add_argument("--policy", default="auto", choices=list(POLICY_HELP),
                   help="fusion policy: " + "; ".join(f"{k}: {v}" for k, v in POLICY_HELP.items()))
    p.add_argument("--force-fuse", action="append", default=[], type=_pair_list, metavar="A,B",
                   help="counterfactual: put ops A and B in one kernel (repeatable)")
    p.add_argument("--forbid", action="append", default=[], type=_pair_list, metavar="A,B",
                   help="counterfactual: keep ops A and B in different kernels (repeatable)")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_machine_args(p: argparse.ArgumentParser) -> None:
    what_if = p.add_argument_group("what-if machine (override the calibrated model for this run)")
    what_if.add_argument("--bandwidth", type=_positive, metavar="GB/S", help="memory bandwidth")
    what_if.add_argument("--peak", type=_positive, metavar="GFLOP/S", help="arithmetic peak")
    what_if.add_argument("--overhead", type=_positive, metavar="US", help="fixed cost per kernel")


def _model(args: argparse.Namespace) -> MachineModel:
    m = load_model()
    changes = {k: v for k, v in (("bandwidth_gbs", getattr(args, "bandwidth", None)),
                                 ("peak_gflops", getattr(args, "peak", None)),
                                 ("kernel_overhead_us", getattr(args, "overhead", None))) if v is not None}
    if changes:
        m = replace(m, **changes, source=f"{m.source}, with " + ", ".join(f"{k}={v:g}" for k, v in changes.items()))
    return m


def _plan(args: argparse.Namespace, counterfactual: bool = True):
    """The plan compile builds (the pipeline up to the plan: parse, rewrite, plan), with the
    --force-fuse / --forbid pairs unless counterfactual is False."""
    pairs = {"force_fuse": args.force_fuse, "forbid": args.forbid} if counterfactual else {}
    return run_pipeline(args, "groups", policy=args.policy, model=_model(args), **pairs).plan


def cmd_explain(args: argparse.Namespace) -> int:
    if args.compare:  # every policy, on the graph the plan stage sees (rewritten, as compile rewrites it)
        g = run_pipeline(args, "rules").rewritten.graph
        rows = compare(g, model=_model(args), force_fuse=args.force_fuse, forbid=args.forbid)
        if args.json:
            print(json.dumps({"graph": g.name, "policies": rows}, indent=2))
        else:
            print(f"graph {g.name}: every policy's plan (predicted with the same cost model)")
            print(format_compare(rows))
        return 0
    report = explain(_plan(args))
    if args.force_fuse or args.forbid:  # the counterfactual against the planner's own choice
        own = explain(_plan(args, counterfactual=False))
        report["counterfactual"] = {
            "force_fuse": args.force_fuse,
            "forbid": args.forbid,
            "planner_kernels": own["kernels"],
            "planner_predicted_ms": own["predicted_ms_fused"],
            "delta_ms": round(report["predicted_ms_fused"] - own["predicted_ms_fused"], 6),
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(format_report(report))
    cf = report.get("counterfactual")
    if cf:
        what = " ".join([f"--force-fuse {x}" for x in cf["force_fuse"]] + [f"--forbid {x}" for x in cf["forbid"]])
        verdict = "slower" if cf["delta_ms"] > 0 else "faster" if cf["delta_ms"] < 0 else "no different"
        print(
            f"counterfactual ({what}): predicted {report['predicted_ms_fused']:.3f} ms in {report['kernels']} kernels "
            f"vs {cf['planner_predicted_ms']:.3f} ms in {cf['planner_kernels']} for the planner's own plan "
            f"({abs(cf['delta_ms']):.3f} ms {verdict})"
        )
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    if args.show:
        m = load_model()
        print(f"machine model ({m.source}), from {model_path()}:")
        for k, v in m.to_dict().items():
            if k not in ("source", "program_bytes"):  # program_bytes: set per graph, not a machine figure
                print(f"  {k} = {v}")
        return 0
    from fusec.calibration import calibrate
    from fusec.fusion.calibrate import busy

    print("measuring this machine (a few seconds)...", flush=True)
    result = calibrate(quick=args.quick)
    for note in result.notes:
        print(f"  {note}")
    m = result.model
    print(f"measured with {result.method}: {m.bandwidth_gbs:g} GB/s, {m.peak_gflops:g} GFLOP/s, "
          f"{m.kernel_overhead_us:g} us per kernel"
          + (f"; programs up to {m.resident_bytes / 2**20:.0f} MiB stay in the last-level cache "
             f"({m.resident_bandwidth_gbs:g} GB/s)" if m.resident_bytes and m.resident_bandwidth_gbs else ""))
    why = busy(result)
    if why and not args.force:
        raise FusecError(f"not storing these figures: {why}. Measure again on a quieter machine, "
                         f"or store them anyway with --force")
    if why:
        print(f"warning: {why}; storing them anyway (--force)")
    path = save_model(m)
    print(f"wrote {path}")
    return 0


def cmd_viz(args: argparse.Namespace) -> int:
    from fusec.fusion.dot import plan_dot, plan_html, plan_svg
    from fusec.ir.dot import dot_program

    out = Path(args.output)
    suffix = out.suffix.lower()
    if suffix not in (".svg", ".dot", ".html"):
        raise FusecError(f"-o {out}: the output must end in .svg, .dot or .html")
    if not out.parent.is_dir():
        raise FusecError(f"-o {out}: the directory {out.parent} does not exist")
    p = _plan(args)
    if suffix == ".dot":
        write_atomic(out, plan_dot(p))
        print(f"wrote {out} (DOT text; draw it with: dot -Tsvg {out} -o {out.with_suffix('.svg')})")
    elif suffix == ".svg":
        write_atomic(out, plan_svg(p))
        if dot_program():
            print(f"wrote {out} (laid out by Graphviz dot)")
        else:
            dot_path = out.with_suffix(".dot")
            write_atomic(dot_path, plan_dot(p))
            print(f"wrote {out} with fusec's simple built-in layout: Graphviz `dot` is not installed.")
            print(f"wrote {dot_path} too: with Graphviz, `dot -Tsvg {dot_path} -o {out}` gives a better layout")
    else:
        write_atomic(out, plan_html(p, explain(p)))
        print(f"wrote {out} (open it in a browser)")
    print(f"{p.kernels} kernel{'s' if p.kernels != 1 else ''}, one colour each; dashed red arrows are values passed between kernels through memory")
    return 0


def register(sub) -> None:
    p = sub.add_parser("explain", help="show the fusion plan: kernels, costs, and why edges are not fused",
                       description="Plan a graph's kernels and explain every decision.")
    add_plan_args(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--compare", action="store_true", help="show every policy's plan side by side")
    add_machine_args(p)
    p.set_defaults(handler=cmd_explain)

    p = sub.add_parser("calibrate", help="measure bandwidth and peak for the cost model",
                       description="Measure this machine's bandwidth, peak and per-kernel cost with generated "
                                   "kernels, and store them in the user cache directory ($FUSEC_CACHE_DIR).")
    p.add_argument("--quick", action="store_true", help="smaller, faster measurement (less precise)")
    p.add_argument("--show", action="store_true", help="print the stored model instead of measuring")
    p.add_argument("--force", action="store_true",
                   help="store the figures even when the load average was above half the cores")
    p.set_defaults(handler=cmd_calibrate)

    p = sub.add_parser("viz", help="draw the graph with one colour per kernel",
                       description="Draw the fusion plan as SVG, DOT or HTML.")
    add_plan_args(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="out.svg, out.dot or out.html")
    p.set_defaults(handler=cmd_viz)
