"""`fusec demo`: compile one example and show what every stage of the compiler did.

It walks the pipeline the way docs/architecture.md draws it (parse, rewrite, plan, lower, generate,
build), prints each stage's result, then runs the program on the interpreter and on both backends,
checks them against the interpreter, and times them with the protocol of `fusec bench`
(fusec.bench.timing: warm-up, repeats, median and interquartile spread). It states the machine's
cores and load average next to the figures, says so when the machine is busy, and presents the
figures as ratios measured in one run, which is what carries over to another machine.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fusec.bench.protocol import Settings
from fusec.bench.system import load_average
from fusec.bench.timing import time_calls
from fusec.cli.common import add_sizes_arg, parse_sizes
from fusec.errors import FusecError
from fusec.fusion import explain
from fusec.inputs import random_inputs
from fusec.interp import interpret
from fusec.pipeline import compile_stages
from fusec.tolerance import compare

DEFAULT_EXAMPLE = "03_softmax.fg"
DEFAULT_SIZES = {"N": 1024, "D": 1024}  # big enough to show the memory wall, small enough to be quick


def find_example(name: str | None) -> Path:
    """The example to show: a path, or a word found in the name of a file in examples/."""
    if name and Path(name).is_file():
        return Path(name)
    examples = Path(__file__).resolve().parents[2] / "examples"
    pattern = f"*{name}*.fg" if name else DEFAULT_EXAMPLE
    found = sorted(examples.glob(pattern))
    if not found:
        raise FusecError(f"no example matches '{name}' in {examples}")
    return found[0]


def banner(step: int, title: str) -> None:
    print(f"\n[{step}] {title}\n" + "-" * (len(title) + 4))


def indent(text: str) -> str:
    return "\n".join("    " + line if line else "" for line in text.rstrip("\n").splitlines())


def busy(load: tuple[float, float, float] | None, cores: int) -> bool:
    """`fusec bench`'s rule: busy when the 1-minute load average is above half the cores."""
    return load is not None and load[0] > cores / 2


def print_timings(runners: dict, settings: Settings) -> None:
    """Time each runner with the bench protocol and print median, spread and the ratio to the first."""
    cores = os.cpu_count() or 1
    before = load_average()
    timings = {label: time_calls(fn, settings.repeats, settings.warmup, settings.max_seconds) for label, fn in runners.items()}
    after = load_average()
    loads = [x for x in (before, after) if x is not None]
    worst = max(loads, key=lambda x: x[0]) if loads else None
    is_busy = any(busy(x, cores) for x in loads)
    load_text = f"load average {worst[0]:.1f}" if worst else "load average unknown"
    print(f"    machine: {cores} cores, {load_text}" + ("  <- BUSY: other work is running" if is_busy else " (quiet)"))
    print(f"    {'path':<34} {'median ms':>10} {'spread ms':>10}  vs interp")
    base = timings[next(iter(timings))].median
    for label, t in timings.items():
        print(f"    {label:<34} {t.median * 1e3:10.3f} {t.spread * 1e3:10.3f}  {base / t.median:6.2f}x" + ("  (busy)" if is_busy else ""))
    slower = [label for label, t in list(timings.items())[1:] if t.median > base]
    print()
    print(f"    Median and interquartile spread of {settings.repeats} calls after a warm-up, as `fusec bench` measures.")
    print("    'vs interp' is a ratio of two times measured in this run: ratios carry over to other machines,")
    print("    absolute times do not.")
    if is_busy:
        print(f"    The machine was busy ({load_text} on {cores} cores): other processes took CPU time from these")
        print("    runs, so every figure above is noisy and threaded kernels suffer most; rerun on a quiet machine.")
    if slower:
        print(f"    Slower than the interpreter here: {', '.join(slower)}. At small sizes a kernel's fixed cost (calls,")
        print("    thread start-up) outweighs the memory it saves; fusion pays off when arrays outgrow the caches.")
    print("    For the full comparison (bandwidth, roofline, peers): fusec bench FILE")


def cmd_demo(args: argparse.Namespace) -> int:
    path = find_example(args.example)
    sizes = parse_sizes(args.sizes) if args.sizes else (DEFAULT_SIZES if args.example is None else {})
    print(f"fusec demo: {path.name}" + (f" with {', '.join(f'{k}={v}' for k, v in sizes.items())}" if sizes else ""))

    stages = {b: compile_stages(path, backend=b, sizes=sizes) for b in ("numpy", "c")}
    c = stages["c"]

    banner(1, "parse: the .fg text becomes a typed graph (canonical form)")
    print(indent(c.show("ir")))

    banner(2, "rewrite: verified algebraic rules simplify the graph")
    print(indent(c.show("rules")))

    banner(3, "plan: which ops fuse into one kernel, and what the roofline model predicts")
    print(indent(c.show("groups")))

    banner(4, "lower: each group becomes one loop nest, then a schedule tiles and parallelises it")
    print(indent(c.show("loops")))

    banner(5, f"generate: readable code per kernel (C backend: {c.backend})")
    source = c.show("source")
    lines = source.splitlines()
    print(indent("\n".join(lines[: args.source_lines])))
    if len(lines) > args.source_lines:
        print(f"    ... ({len(lines) - args.source_lines} more lines: fusec compile {path} --show source)")

    banner(6, "run: the interpreter is the ground truth; both backends are checked against it")
    from fusec.api import Compiled

    graph = c.graph
    inputs = random_inputs(graph, seed=0)
    expected = interpret(graph, *inputs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    report = explain(c.plan)
    runners = {"interp (one NumPy call per op)": lambda: interpret(graph, *inputs)}
    for name, st in stages.items():
        program = Compiled(st)
        got = program(*inputs)
        got = got if isinstance(got, tuple) else (got,)
        for out_name, a, e in zip(graph.outputs, got, expected):
            mismatch = compare(a, e)
            if mismatch is not None:
                raise FusecError(f"the {name} backend disagrees with the interpreter on '{out_name}': {mismatch}")
        runners[f"{name} backend ({program.kernels} kernel{'s' if program.kernels != 1 else ''})"] = lambda p=program: p(*inputs)
    print("    outputs agree with the interpreter within the stated tolerance (fusec/tolerance.py)")
    print(f"    bytes moved: unfused {report['bytes_unfused'] / 2**20:.1f} MiB, fused {report['bytes_fused'] / 2**20:.1f} MiB")
    banner(7, "measure: the same protocol as fusec bench, with the machine's load stated")
    print_timings(runners, Settings(repeats=args.repeats))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="compile an example and show every stage",
        description="Compile an example, print what each compiler stage did, then run and time it.",
    )
    p.add_argument("example", nargs="?", help=f"an example name (e.g. gelu) or a .fg path (default {DEFAULT_EXAMPLE})")
    add_sizes_arg(p)
    p.add_argument("--source-lines", type=int, default=60, help="how many lines of generated C to print (default 60)")
    p.add_argument("--repeats", type=int, default=15, help="timed calls per path (default 15, as fusec bench)")
    p.set_defaults(handler=cmd_demo)
