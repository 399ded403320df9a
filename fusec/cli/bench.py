"""`fusec bench FILE...`: fused against unfused and against the peers, one protocol for every path.

The protocol (fusec.bench.protocol): correctness against the interpreter first, then warm-up,
repeats, median and interquartile spread; the triad bandwidth and the machine's load measured in
the same run. Exit 1 when a path disagrees with the interpreter or fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fusec.cli.common import add_sizes_arg, parse_sizes, write_atomic
from fusec.errors import FusecError


def parse_backends(text: str | None) -> list[str]:
    from fusec.bench.protocol import BACKENDS

    if text is None:
        return list(BACKENDS)
    names = [b.strip() for b in text.split(",") if b.strip()]
    for b in names:
        if b not in BACKENDS:
            raise FusecError(f"unknown backend '{b}' for bench (backends: {', '.join(BACKENDS)}; the interpreter always runs)")
    return names


def sizes_for(path: str, sizes: dict[str, int]) -> dict[str, int]:
    """The --set values that name a dimension of this file (several files may have different ones)."""
    from fusec.frontend import load

    dims = load(path).dims
    return {k: v for k, v in sizes.items() if k in dims}


def cmd_bench(args: argparse.Namespace) -> int:
    from fusec.bench import report
    from fusec.bench.peers import parse_peers
    from fusec.bench.protocol import Settings, bench_file
    from fusec.bench.system import describe_machine, load_average
    from fusec.runtime.probes import measure_triad

    backends = parse_backends(args.backend)
    peers = parse_peers(args.peers)
    settings = Settings.for_run(args.quick, args.repeats)
    sizes = parse_sizes(args.sizes)
    per_file = {f: sizes_for(f, sizes) for f in args.files}  # a bad file fails here, before any timing
    unused = set(sizes) - {k for s in per_file.values() for k in s}
    if unused:
        raise FusecError(f"--set {sorted(unused)[0]}: none of the files has a dimension of that name")
    if args.plot:
        from fusec.bench.plot import require_matplotlib

        require_matplotlib()

    before = load_average()
    triad_threads = []

    def triad():
        bw = measure_triad(n=settings.triad_elements, repeats=8)
        triad_threads.append(bw.threads)
        return bw

    results = []
    for f in args.files:
        if not args.json:
            print(f"measuring {f} ...", file=sys.stderr, flush=True)
        results.append(bench_file(f, per_file[f], backends, peers, settings, triad))
    machine = describe_machine(triad_threads[0] if triad_threads else 1)
    machine.peak_gflops = _peak(settings)
    machine.load_before, machine.load_after = before, load_average()

    print(report.json_report(machine, results) if args.json else report.text_report(machine, results), end="")
    if args.markdown:
        write_atomic(args.markdown, report.markdown_report(machine, results))
    if args.plot:
        from fusec.bench.plot import roofline

        roofline(machine, results, Path(args.plot))
    if machine.load_warning() and args.json:  # the text report states it itself
        print(f"warning: {machine.load_warning()}", file=sys.stderr)
    bad = [(r.file, p.name, p.status) for r in results for p in r.paths if p.status.startswith(("wrong", "failed"))]
    for file, name, status in bad:
        print(f"{file}: {name}: {status}", file=sys.stderr)
    return 1 if bad else 0


def _peak(settings) -> float | None:
    """The float32 fma peak for the roofline (None without a C compiler)."""
    from fusec.runtime.build import NoCompilerError
    from fusec.runtime.probes import measure_peak_flops

    try:
        return measure_peak_flops(iterations=200_000 if settings.quick else 2_000_000).gflops
    except NoCompilerError:
        return None


def register(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="time fused against unfused (and numexpr, torch.compile, jax.jit)",
        description="Check every path against the interpreter, then time it: the interpreter, the NumPy and C "
        "backends (fresh and caller-provided outputs), the C backend with tuned schedules, and the peers.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="one or more .fg files")
    p.add_argument("--backend", metavar="B,...", help="fusec paths to time: numpy, c, c-tuned (default all three)")
    p.add_argument("--peers", metavar="P,...", help="peers to time: numexpr, torch, jax, or none (default all three)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--markdown", metavar="OUT.md", help="also write a Markdown table")
    p.add_argument("--plot", metavar="OUT.png", help="also draw a roofline chart (needs matplotlib: fusec[plot])")
    p.add_argument("--quick", action="store_true", help="few repeats, smaller sizes where the dimensions allow (CI)")
    p.add_argument("--repeats", type=int, metavar="N", help="timed calls per path (default 15; --quick: 3)")
    add_sizes_arg(p)
    p.set_defaults(handler=cmd_bench)
