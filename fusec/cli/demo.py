"""`fusec demo`: compile one example and show what every stage of the compiler did.

It walks the pipeline the way docs/architecture.md draws it (parse, rewrite, plan, lower, generate,
build), prints each stage's result, then runs the program on the interpreter and on both backends,
checks them against the interpreter, and times them in this run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

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


def median_ms(fn, repeats: int = 5) -> float:
    fn()  # warm up: the first call pays for page faults and library loading
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


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
    base = None
    for label, fn in runners.items():
        ms = median_ms(fn)
        base = base or ms
        print(f"    {label:<34} {ms:9.2f} ms   {base / ms:5.1f}x")
    print("\n    (times are the median of 5 runs in this process; bench/ holds the real benchmarks)")
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
    p.set_defaults(handler=cmd_demo)
