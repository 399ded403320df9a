"""`fusec compile FILE --backend B --show ir,rules,groups,loops,source`: run the compiler and print stages."""

from __future__ import annotations

import argparse

from fusec.cli.common import add_file_args, add_strict_arg, require_backend, run_pipeline
from fusec.errors import FusecError
from fusec.fusion import check_expectations
from fusec.pipeline import STAGES


def parse_show(text: str | None) -> list[str]:
    if not text:
        return []
    stages = [s.strip() for s in text.split(",") if s.strip()]
    for s in stages:
        if s not in STAGES:
            raise FusecError(f"--show: unknown stage '{s}' (stages: {', '.join(STAGES)})")
    return stages


def cmd_compile(args: argparse.Namespace) -> int:
    show = parse_show(args.show)
    require_backend(args)
    stages = run_pipeline(args, "source", backend=args.backend, policy=args.policy)
    check_expectations(stages.plan)  # the file's `assert kernels ...`, as `fusec check` holds it
    for stage in show:
        print(f"== {stage} ==")
        print(stages.show(stage).rstrip("\n"))
        print()
    n = len(stages.kernels)
    print(f"compiled graph {stages.graph.name}: {n} kernel{'s' if n != 1 else ''} (backend {stages.backend})")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "compile",
        help="compile a graph and print the stages you ask for",
        description="Compile a .fg graph: parse, rewrite, plan, lower, schedule, generate code, build.",
    )
    add_file_args(p)
    p.add_argument("--backend", choices=("numpy", "c"), default="c", help="code generator (default c; numpy if there is no C compiler)")
    add_strict_arg(p)
    p.add_argument("--show", metavar="STAGES", help=f"comma-separated stages to print: {','.join(STAGES)}")
    p.add_argument("--policy", default="auto", help="fusion policy (default auto)")
    p.set_defaults(handler=cmd_compile)
