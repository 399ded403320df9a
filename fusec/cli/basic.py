"""Commands on the language itself: check, fmt, run.

Each command imports what it runs (check: the pipeline up to the plan; fmt: the parser and the
printer; run: the interpreter or the compiler), so a command starts without loading the others'.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fusec.cli.common import (
    add_file_args,
    add_sizes_arg,
    add_strict_arg,
    load_graph,
    parse_sizes,
    require_backend,
    summarize,
    write_atomic,
)
from fusec.errors import FusecError


def check_one(path: str, sizes: dict[str, int]) -> None:
    """Parse, rewrite and plan (the pipeline up to the plan, as compile runs it) and hold the plan to
    the file's `assert kernels ...` lines (exit 2 at the assert if it breaks one)."""
    from fusec.fusion import check_expectations
    from fusec.pipeline import compile_stages

    stages = compile_stages(path, sizes=sizes, stop_after="groups")
    g = stages.graph
    outs = ", ".join(f"{o}: {g.type_of(o)}" for o in g.outputs)
    held = check_expectations(stages.plan)
    n = stages.kernel_count
    extra = ", ".join(held) if held else f"plan: {n} kernel{'s' if n != 1 else ''}"
    print(f"ok: {path}: graph {g.name}, {len(g.inputs)} inputs, {len(g.ops())} ops -> {outs}; {extra}")


def cmd_check(args: argparse.Namespace) -> int:
    """Check every file given; report each failure and exit 2 if any failed."""
    sizes = parse_sizes(args.sizes)
    failed = 0
    for path in args.files:
        try:
            check_one(path, sizes)
        except FusecError as err:
            if len(args.files) == 1:
                raise
            print(str(err), file=sys.stderr)
            failed += 1
    if failed:
        print(f"{failed} of {len(args.files)} files failed", file=sys.stderr)
        return 2
    return 0


def cmd_fmt(args: argparse.Namespace) -> int:
    if len(args.files) > 1 and not (args.check or args.in_place):
        raise FusecError("fmt prints one file; with several, use --check or -i")
    from fusec.frontend import load
    from fusec.ir.printer import print_graph

    sizes = parse_sizes(args.sizes)
    # read every file before writing any, so a mistake in one leaves them all as they were
    canonical = [(Path(f), print_graph(load(f, sizes=sizes))) for f in args.files]
    if args.check:
        differ = [path for path, text in canonical if path.read_text() != text]
        for path in differ:
            print(f"{path}: not in canonical form", file=sys.stderr)
        return 1 if differ else 0
    if args.in_place:
        for path, text in canonical:
            write_atomic(path, text)
        return 0
    sys.stdout.write(canonical[0][1])
    return 0


def run_inputs(g, args):
    from fusec.inputs import load_npz, random_inputs

    if args.inputs:
        return load_npz(g, args.inputs)
    return random_inputs(g, seed=args.seed)


def cmd_run(args: argparse.Namespace) -> int:
    from fusec.fusion import check_expectations
    from fusec.inputs import save_npz
    from fusec.interp import evaluate
    from fusec.pipeline import compile_stages

    g = load_graph(args)
    inputs = run_inputs(g, args)
    backend = getattr(args, "backend", "interp")
    if args.verify and backend == "interp":
        raise FusecError("--verify compares a compiled backend with the interpreter: add --backend numpy or --backend c")
    if getattr(args, "bisect", False) and not args.verify:
        raise FusecError("--bisect explains a --verify mismatch: add --verify")
    if getattr(args, "sanitize", False):
        if backend != "c":
            raise FusecError("--sanitize builds C kernels with sanitizers: add --backend c")
        from fusec.cli.sanitize import ensure_sanitizer_runtime

        ensure_sanitizer_runtime()  # may re-run this command with the ASan runtime preloaded
        print("sanitize: kernels built with AddressSanitizer, UBSan and bounds assertions")
    require_backend(args)
    if backend == "interp":
        check_expectations(compile_stages(g, stop_after="groups").plan)  # the file's `assert kernels ...`
        values = evaluate(g, inputs)
    else:
        from fusec.api import compile as compile_graph  # layer 7, like this module

        compiled = compile_graph(g, backend=backend)
        check_expectations(compiled.stages.plan)  # the file's `assert kernels ...`, as `fusec check` holds it
        backend = compiled.backend  # "numpy" if the C backend fell back
        results = compiled(*inputs)
        values = dict(zip(g.outputs, results if isinstance(results, tuple) else (results,)))
    print(f"graph {g.name} (backend {backend})")
    for o in g.outputs:
        print("  " + summarize(o, values[o]))
    if args.out:
        save_npz(args.out, {o: values[o] for o in g.outputs})
        print(f"wrote {args.out}")
    if args.verify:
        status = verify_against_interpreter(g, inputs, values)
        if status and getattr(args, "bisect", False):
            from fusec.bisect import bisect  # layer 7: where did it go wrong?

            print(bisect(g, inputs, backend))
        return status
    return 0


def verify_against_interpreter(g, inputs, values) -> int:
    """Exit status 1, with the worst error, when a compiled result differs from the interpreter's."""
    from fusec.interp import evaluate
    from fusec.tolerance import compare_output

    expected = evaluate(g, inputs)
    failed = False
    for o in g.outputs:
        mismatch = compare_output(g, o, values[o], expected[o])
        if mismatch is not None:
            print(f"verify: {o}: {mismatch}")
            failed = True
    if failed:
        print("verify: FAILED: the results differ from the interpreter beyond the tolerance (fusec/tolerance.py)")
        return 1
    print(f"verify: ok: {len(g.outputs)} output(s) match the interpreter within the tolerance")
    return 0


def add_run_args(p: argparse.ArgumentParser) -> None:
    add_file_args(p)
    p.add_argument("--inputs", metavar="IN.npz", help="input arrays by input name (default: seeded random)")
    p.add_argument("--out", metavar="OUT.npz", help="write the outputs to this .npz file")
    p.add_argument("--seed", type=int, default=0, help="seed for the random inputs (default 0)")
    p.add_argument("--backend", choices=("interp", "numpy", "c"), default="interp", help="run with the interpreter (default) or compiled")
    add_strict_arg(p)
    p.add_argument("--verify", action="store_true", help="also run the interpreter; exit 1 if the results differ beyond the tolerance")
    p.add_argument(
        "--sanitize",
        action="store_true",
        help="with --backend c: build kernels with -fsanitize=address,undefined and bounds assertions (also FUSEC_SANITIZE=1)",
    )
    p.add_argument(
        "--bisect",
        action="store_true",
        help="with --verify, on a mismatch: name the first kernel that diverges (in ulps) and the rewrite rule or fusion that causes it",
    )


def register(sub) -> None:
    p = sub.add_parser(
        "check",
        help="parse and type-check .fg files",
        description="Parse and type-check .fg files, and hold each to its `assert kernels` lines.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="one or more .fg source files")
    add_sizes_arg(p)
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser(
        "fmt",
        help="print a .fg file in canonical form",
        description="Print a .fg file in canonical form, or check or rewrite several.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="one .fg file to print; one or more with --check or -i")
    add_sizes_arg(p)
    p.add_argument("-i", "--in-place", action="store_true", help="rewrite each file instead of printing")
    p.add_argument("--check", action="store_true", help="name each file not in canonical form; exit 1 if there is one")
    p.set_defaults(handler=cmd_fmt)

    p = sub.add_parser("run", help="run a graph and summarise its outputs", description="Run a graph and summarise its outputs.")
    add_run_args(p)
    p.set_defaults(handler=cmd_run)
