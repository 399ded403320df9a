"""Commands on rewrite rules: `fusec rules list`, `fusec rules verify`, `fusec rules prove`, and `fusec rewrite FILE`."""

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


def _parse_dtypes(text: str) -> tuple[str, ...]:
    from fusec.ir.dtypes import DTYPES

    names = tuple(d.strip() for d in text.split(",") if d.strip())
    for d in names:
        if d not in DTYPES:
            raise FusecError(f"--dtype: unknown dtype '{d}' (dtypes: {', '.join(DTYPES)})")
    if not names:
        raise FusecError("--dtype needs at least one dtype")
    return names


def cmd_rules_prove(args: argparse.Namespace) -> int:
    from fusec.rewrite.prove import prove_rules, z3_module

    z3_module()  # a clear error without the prove extra
    rules = _select(_rules(args), args.names, args.cls)
    if not rules:
        raise FusecError("no rules to prove")
    if not args.timeout > 0:
        raise FusecError(f"--timeout must be positive, got {args.timeout}")
    dtypes = _parse_dtypes(args.dtype)
    report, failed = [], 0
    for rule, proofs in prove_rules(rules, dtypes, args.timeout, use_cache=not args.no_cache):
        if any(p.verdict == "counterexample" for p in proofs):
            failed += 1
        report.append({"rule": rule.name, "class": rule.cls, "proofs": [p.to_json() for p in proofs]})
        if not args.json:
            verdicts = {p.verdict for p in proofs}
            head = "PROVED" if verdicts == {"proved"} else ("FAIL" if "counterexample" in verdicts else "UNKNOWN")
            if head == "UNKNOWN" and verdicts <= {"proved", "bounded"}:
                head = "BOUNDED"  # proved for small ranks only (a transpose's permutations, enumerated)
            if not proofs:
                head = "NONE"
            print(f"{head} {rule.name} [{rule.cls}]: {rule.pattern_text} -> {rule.replacement_text}", flush=True)
            if not proofs:
                print("  no dtype among " + ",".join(dtypes) + " is an instance of this rule")
            for p in proofs:
                print("\n".join("  " + line for line in p.line().splitlines()))
    proved = sum(all(p["verdict"] == "proved" for p in r["proofs"]) and bool(r["proofs"]) for r in report)
    if args.json:
        print(json.dumps({"rules": len(report), "proved": proved, "counterexamples": failed, "dtypes": list(dtypes),
                          "timeout": args.timeout, "results": report}, indent=2))
    else:
        print(f"{proved} of {len(report)} rules proved at every dtype ({','.join(dtypes)}); "
              f"{failed} with a counterexample")
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
    p = sub.add_parser("rules", help="list, verify or prove the rewrite rules", description="List, verify or prove the rewrite rules.")
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

    q = rsub.add_parser(
        "prove",
        help="prove each rule over IEEE-754 with an SMT solver (the prove extra)",
        description="Prove each rule with Z3 (pip install 'fusec[prove]'): for each dtype, proved (equal on every "
        "input, bit for bit, NaN equal to NaN), a counterexample (confirmed with NumPy) or unknown (with the reason). "
        "Results are cached. Exits 1 if any rule has a counterexample.",
    )
    q.add_argument("names", nargs="*", metavar="NAME", help="only these rules")
    q.add_argument("--class", dest="cls", choices=CLASSES, help="only rules of this class")
    q.add_argument("--dtype", default="f32,f64,i32,i64,bool", metavar="D1,D2", help="dtypes to prove at (default f32,f64,i32,i64,bool)")
    q.add_argument("--timeout", type=float, default=10.0, help="seconds the solver may take per rule and dtype (default 10)")
    q.add_argument("--no-cache", action="store_true", help="prove again instead of using cached results")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    _add_rule_source_args(q)
    q.set_defaults(handler=cmd_rules_prove)

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
