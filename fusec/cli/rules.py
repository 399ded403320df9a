"""Commands on rewrite rules: `fusec rules list`, `fusec rules verify`, and `fusec rewrite FILE`."""

from __future__ import annotations

import argparse
import json
import os
import sys

from fusec.cli.common import add_file_args, run_pipeline
from fusec.errors import FusecError
from fusec.ir.printer import print_graph
from fusec.rewrite import CLASSES, DEFAULT_CLASSES, load_rules, standard_rules, verify_rule
from fusec.rewrite.driver import DEFAULT_MAX_ITERATIONS
from fusec.rewrite.verify import DEFAULT_CASES


def _rules(args: argparse.Namespace):
    """The standard library, or the rule files given with --rules (plus the library with --with-standard)."""
    if getattr(args, "rule_files", None):
        return load_rules(*args.rule_files, standard=getattr(args, "with_standard", False))
    return standard_rules()


def _select(rules, names: list[str] | None, cls: str | None):
    if cls is not None:
        rules = [r for r in rules if r.cls == cls]
    if names:
        known = {r.name for r in rules}
        for n in names:
            if n not in known:
                import difflib

                close = difflib.get_close_matches(n, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise FusecError(f"no rule named '{n}'{hint}")
        rules = [r for r in rules if r.name in names]
    return rules


def _shown_path(path: str) -> str:
    """A path relative to the current directory when it lies below it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def cmd_rules_list(args: argparse.Namespace) -> int:
    rules = _select(_rules(args), args.names, args.cls)
    if args.json:
        print(json.dumps({"count": len(rules), "rules": [r.to_json() for r in rules]}, indent=2))
        return 0
    width = max((len(r.name) for r in rules), default=0)
    for r in rules:
        guard = f"   if {r.guard_text}" if r.guard_text else ""
        print(f"{r.name:<{width}}  {r.cls:<6}  {r.pattern_text}  ->  {r.replacement_text}{guard}")
        if args.long:
            indent = " " * (width + 2)
            if r.doc:
                print(f"{indent}{r.doc}")
            if r.cls != "exact":
                print(f"{indent}tolerance: {r.tolerance}")
            if r.domain:
                print(f"{indent}assuming " + ", ".join(f"{name} in [{lo:g}, {hi:g}]" for name, lo, hi in r.domain))
            if r.location is not None:
                print(f"{indent}{_shown_path(r.location.filename)}:{r.location.line}")
    counts = ", ".join(f"{sum(r.cls == c for r in rules)} {c}" for c in CLASSES)
    print(f"{len(rules)} rules ({counts})")
    return 0


def cmd_rules_verify(args: argparse.Namespace) -> int:
    rules = _select(_rules(args), args.names, args.cls)
    if not rules:
        raise FusecError("no rules to verify")
    results = []
    for r in rules:
        res = verify_rule(r, cases=args.cases, seed=args.seed)
        results.append(res)
        if not args.json:
            print(res, flush=True)
    failed = [r for r in results if not r.passed]
    if args.json:
        print(
            json.dumps(
                {
                    "rules": len(results),
                    "passed": len(results) - len(failed),
                    "failed": len(failed),
                    "cases_per_rule": args.cases,
                    "seed": args.seed,
                    "results": [r.to_json() for r in results],
                },
                indent=2,
            )
        )
    else:
        print(f"{len(results) - len(failed)} of {len(results)} rules verified ({args.cases} cases each, seed {args.seed})")
    return 1 if failed else 0


def _parse_classes(text: str) -> tuple[str, ...]:
    classes = tuple(c.strip() for c in text.split(",") if c.strip())
    if not classes:
        raise FusecError("--classes needs at least one of " + ", ".join(CLASSES))
    for c in classes:
        if c not in CLASSES:
            raise FusecError(f"--classes: unknown rule class '{c}' (classes: {', '.join(CLASSES)})")
    return classes


def cmd_rewrite(args: argparse.Namespace) -> int:
    classes = _parse_classes(args.classes)
    if args.max_iterations < 1:
        raise FusecError(f"--max-iterations must be at least 1, got {args.max_iterations}")
    result = run_pipeline(args, "rules", rewrite_classes=classes, max_iterations=args.max_iterations, rules=_rules(args)).rewritten
    sys.stdout.write(print_graph(result.graph))
    if args.trace:
        # as comments, so the whole output is still a .fg file
        for line in result.trace_text().splitlines():
            print(f"# {line}")
    return 0


def _add_rule_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rules", dest="rule_files", action="append", metavar="FILE.rules", help="use the rules in this file instead of the standard library (repeatable)")
    p.add_argument("--with-standard", action="store_true", help="with --rules: the standard library first, then the files")


def register(sub) -> None:
    p = sub.add_parser("rules", help="list or verify the rewrite rules", description="List or verify the rewrite rules.")
    rsub = p.add_subparsers(dest="rules_command", metavar="ACTION", parser_class=type(p))
    rsub.required = True

    q = rsub.add_parser("list", help="name, class, pattern and replacement of each rule", description="List the rewrite rules.")
    q.add_argument("names", nargs="*", metavar="NAME", help="only these rules")
    q.add_argument("--class", dest="cls", choices=CLASSES, help="only rules of this class")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.add_argument("-l", "--long", action="store_true", help="also each rule's description, tolerance, domain and source")
    _add_rule_source_args(q)
    q.set_defaults(handler=cmd_rules_list)

    q = rsub.add_parser(
        "verify",
        help="check every rule against the interpreter",
        description="Check each rule against the reference interpreter on random cases with 0, -0, inf, nan and "
        "denormals. Exits 0 only if every rule keeps its class's promise.",
    )
    q.add_argument("names", nargs="*", metavar="NAME", help="only these rules")
    q.add_argument("--class", dest="cls", choices=CLASSES, help="only rules of this class")
    q.add_argument("--cases", type=int, default=DEFAULT_CASES, help=f"applicable cases per rule (default {DEFAULT_CASES})")
    q.add_argument("--seed", type=int, default=0, help="seed for the random cases (default 0)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    _add_rule_source_args(q)
    q.set_defaults(handler=cmd_rules_verify)

    p = sub.add_parser(
        "rewrite",
        help="apply the rewrite rules to a graph and print it",
        description="Apply the rewrite rules (with constant folding, CSE and dead-code elimination) and print the "
        "rewritten graph as .fg text.",
    )
    add_file_args(p)
    p.add_argument(
        "--classes",
        default=",".join(DEFAULT_CLASSES),
        metavar="C1,C2",
        help=f"rule classes to use, from {', '.join(CLASSES)} (default {','.join(DEFAULT_CLASSES)}; unsafe only if named)",
    )
    p.add_argument("--trace", action="store_true", help="also print which rule fired where, as comments")
    p.add_argument("--max-iterations", type=int, default=DEFAULT_MAX_ITERATIONS, help=f"iteration bound (default {DEFAULT_MAX_ITERATIONS})")
    _add_rule_source_args(p)
    p.set_defaults(handler=cmd_rewrite)
