"""`fusec tune FILE`: search each kernel's schedules, measure them safely, store the fastest.

The kernels come from the compiler's own pipeline (`fusec.pipeline.lower_all`: the same rewrites,
fusion policy and lowering as `fusec compile`), so the records it stores are found again by a later
`fusec compile` / `fusec run` / `fusec.compile`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter

from fusec.cli.common import add_sizes_arg, parse_sizes
from fusec.errors import FusecError
from fusec.pipeline import choose_backend, lower_all
from fusec.tune import STRATEGIES, TuneDB, TuneSettings, best_record, search_space, tune_graph
from fusec.tune.executors import make_executor
from fusec.tune.progress import Progress
from fusec.tune.report import (
    fmt_time,
    format_failures,
    format_report,
    format_result,
    format_space,
    format_stored,
    load_note,
    result_json,
    summarise,
)
from fusec.tune.space import schedule_ignored


def cmd_tune(args: argparse.Namespace) -> int:
    settings = TuneSettings(strategy=args.strategy, budget=args.budget, timeout_s=args.timeout, seed=args.seed,
                            repeats=args.repeats, seconds=args.seconds, retune=args.retune)
    settings.check()
    db = TuneDB(args.db)
    if args.report:
        contents = db.read()
        for p in contents.problems:
            print(f"warning: {p}", file=sys.stderr)
        rows = summarise(contents.records)
        if args.json:
            print(json.dumps({"db": str(db.path), "skipped_lines": len(contents.problems), "kernels": rows}, indent=2))
        else:
            print(format_report(db.path, rows, contents.problems))
        return 0
    if not args.file:
        raise FusecError("fusec tune needs a .fg FILE (or --report to summarise the database)")
    backend = choose_backend(args.backend)
    graph, kernels = lower_all(args.file, backend=backend.name, sizes=parse_sizes(args.sizes), policy=args.policy)
    if args.list:
        for _, nest in kernels:
            space = search_space(nest, backend.name, backend.default_schedule(nest), ignored=schedule_ignored(backend, nest))
            print(format_space(space))
        return 0
    problems = db.read().problems
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    if args.stored:
        for _, nest in kernels:
            print(format_stored(nest, best_record(nest, backend, db), backend.default_schedule(nest)))
        return 0
    note = load_note()  # before: the user can wait for a quieter machine
    if note:
        print(note, file=sys.stderr)
    bar = Progress() if not args.json and not args.verbose and sys.stderr.isatty() else None

    def progress(result, trial):
        if bar is not None:
            bar(result, trial)
        if args.verbose and trial is not None:
            t = f"{fmt_time(trial.median_s)}" if trial.ok else f"{trial.status}: {trial.detail}"
            print(f"  {result.name}: {trial.schedule}  {t}", file=sys.stderr)

    executor, closer = make_executor(args.executor)
    try:
        results = tune_graph(graph, kernels, backend=backend.name, settings=settings, db=db, executor=executor,
                             store=not args.dry_run, progress=progress)
    finally:
        if bar is not None:
            bar.close()
        executor.shutdown(wait=False, cancel_futures=True)
        if closer is not None:
            closer.close()
    note = load_note()  # after the run: what the machine was doing while it measured
    if note and not args.json:
        print(note, file=sys.stderr)
    stored = sum(r.record is not None and not r.reused for r in results) if not args.dry_run else 0
    if args.json:
        print(json.dumps({"graph": graph.name, "backend": backend.name, "db": str(db.path), "stored": stored,
                          "executor": args.executor, "load_average": round(os.getloadavg()[0], 2),
                          "kernels": [result_json(r) for r in results]}, indent=2))
        return 0
    n = len(results)
    print(f"tuned graph {graph.name}: {n} kernel{'s' if n != 1 else ''}, backend {backend.name}, "
          f"budget {settings.budget} trials per kernel" + (f", {settings.seconds:g} s" if settings.seconds else ""))
    for r in results:
        print(format_result(r))
    failures = sum((r.failures for r in results if not r.reused), start=Counter())
    if failures:
        print(f"failed candidates: {format_failures(failures)} (recorded, not used)")
    if args.dry_run:
        print("dry run: nothing stored")
    elif any(r.reused for r in results) and not stored:
        print(f"nothing measured: every kernel has a record in {db.path} (--retune measures again)")
    else:
        print(f"stored {stored} record{'s' if stored != 1 else ''} in {db.path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "tune",
        help="search each kernel's schedules and store the fastest for compile",
        description="Autotune a .fg graph: for each kernel, measure schedules (tiles, loop order, threads, "
                    "vector width, streaming stores, unroll, rows per block, matmul rows, NumPy block size) in "
                    "isolated processes, check each against the interpreter, and store the fastest in the tuning "
                    "database, where fusec compile and run find it.",
    )
    p.add_argument("file", metavar="FILE", nargs="?", help="a .fg source file (not needed with --report)")
    add_sizes_arg(p)
    p.add_argument("--backend", choices=("c", "numpy"), default="c", help="code generator (default c)")
    p.add_argument("--strategy", choices=STRATEGIES, default="auto",
                   help="auto (exhaustive if the space fits the trials, else model), exhaustive, random, model")
    p.add_argument("--trials", "--budget", dest="budget", type=int, default=32, metavar="N",
                   help="candidates measured per kernel, the default included (default 32); --budget is an alias")
    p.add_argument("--seconds", type=float, metavar="S",
                   help="wall-time budget of the whole run; afterwards kernels measure only their default")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds per candidate before it is killed (default 60)")
    p.add_argument("--repeats", type=int, default=7, metavar="R", help="timed samples per candidate (default 7)")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="seed for the inputs and the random strategy")
    p.add_argument("--policy", default="auto", help="fusion policy, as for compile (default auto)")
    p.add_argument("--executor", default="local", metavar="local|dask://HOST:PORT",
                   help="where builds and measurements run: a local process pool (default) or a Dask scheduler")
    p.add_argument("--db", metavar="PATH", help="tuning database (default $FUSEC_TUNE_DB, else tune.jsonl in the cache dir)")
    p.add_argument("--json", action="store_true", help="print the results as JSON (no progress bar)")
    p.add_argument("--list", action="store_true", help="print each kernel's search space and measure nothing")
    p.add_argument("--stored", action="store_true", help="print the schedule compile would take from the database for each kernel, and measure nothing")
    p.add_argument("--report", action="store_true", help="summarise the tuning database (every tuned kernel) and exit")
    p.add_argument("--retune", action="store_true", help="measure again even when the database has a record of this many trials")
    p.add_argument("--dry-run", action="store_true", help="measure but store nothing")
    p.add_argument("-v", "--verbose", action="store_true", help="print every candidate as it is measured (stderr)")
    p.set_defaults(handler=cmd_tune)
