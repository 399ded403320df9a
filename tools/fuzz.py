#!/usr/bin/env python3
"""Differential fuzzing for long sessions: random graphs through rewrite, plan and compile on each
backend, compared with the interpreter. Every failing graph is shrunk and saved as a minimal .fg
reproducer (plus its inputs as .npz) in the output directory.

    python tools/fuzz.py --graphs 10000 --backends numpy,c --out fuzz-failures/
    python tools/fuzz.py --minutes 60 --special 0.05          # NaN/inf/-0/denormals in 5% of elements
    python tools/fuzz.py --seconds 120 --edges empty,names    # then: counts per family covered

Shrinking works in two passes. First on the generator's *choices*: each graph is made by
fusec.testing.graphgen from a list of recorded random decisions, and a shorter or smaller list
replays into a smaller graph, so sizes, ranks and op counts all shrink together. Then on the graph
itself: drop outputs, and cut an op off by turning it into an input of the same type. A candidate
is kept only while it fails in the same way (same backend, same kind, same exception type).

Ill-conditioned graphs (chains of exp, cancellations: docs/tolerances.md) can make two correct
implementations differ by more than the tolerance. So a float mismatch on an f32 computation is
judged once more against the truth: the same graph evaluated in float64. If the compiled result is
within 8 times the interpreter's own error of that truth, the difference is the problem's
conditioning, not a bug: it is reported as "ill-conditioned" and not counted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fusec.bisect import Failure, check, compile_and_run  # noqa: E402
from fusec.errors import FusecError  # noqa: E402
from fusec.interp import evaluate  # noqa: E402
from fusec.ir.dtypes import F32, F64  # noqa: E402
from fusec.ir.graph import Graph  # noqa: E402
from fusec.ir.printer import print_graph  # noqa: E402
from fusec.testing.edge_families import FAMILIES as EDGE_FAMILIES  # noqa: E402
from fusec.testing.edge_families import check_case, edge_case  # noqa: E402
from fusec.testing.graphgen import GenConfig, random_arrays, random_graph, replay_graph  # noqa: E402
from fusec.tolerance import ATOL, RTOL, working_precision  # noqa: E402


def find_failure(g: Graph, input_seed: int, backends: list[str], special: float, verbose: bool = False) -> Failure | None:
    arrays = random_arrays(g, np.random.default_rng(input_seed), special)
    expected = evaluate(g, arrays)
    # approx rules promise results within the tolerance on finite inputs only: with NaN and inf
    # among the inputs, rewrite with exact rules alone
    classes = ("exact",) if special else ("exact", "approx")
    for b in backends:
        f = check(g, arrays, b, expected, classes=classes)
        if f is not None and f.kind == "mismatch" and conditioning_explains(g, arrays, expected, f):
            if verbose:
                print(f"  ill-conditioned, not counted: {f}", flush=True)
            continue
        if f is not None:
            return f
    return None


def promote_to_f64(g: Graph) -> Graph:
    """The same graph with every f32 (inputs, constants, casts, iotas) made f64: the 'truth'."""
    def up(d):
        return F64 if d == F32 else d

    new = Graph(g.name)
    for i in g.inputs:
        t = g.type_of(i)
        new.add_input(i, up(t.dtype), t.shape)
    for node in g.nodes():
        if node.op == "input":
            continue
        if node.op == "const":
            new.const(node.attrs["value"], up(node.type.dtype), name=node.name)
            continue
        attrs = {k: (up(v) if v in (F32, F64) else v) for k, v in node.attrs.items()}
        new.add(node.op, *node.args, name=node.name, **attrs)
    new.set_outputs(list(g.outputs))
    return new


def conditioning_explains(g: Graph, arrays: list, expected: dict, f: Failure) -> bool:
    o = f.output
    if working_precision(g, o) != "f32":
        return False
    try:
        got = compile_and_run(g, arrays, f.backend)[o].astype(np.float64)
        truth = evaluate(promote_to_f64(g), [a.astype(np.float64) if a.dtype == np.float32 else a for a in arrays])[o]
    except FusecError:
        return False
    truth = truth.astype(np.float64)
    ref = expected[o].astype(np.float64)
    with np.errstate(all="ignore"):
        # NaN and inf (with its sign) must be where the interpreter has them: conditioning never excuses those
        same_specials = np.array_equal(np.isnan(got), np.isnan(ref)) and np.array_equal(
            np.where(np.isinf(got), got, 0.0), np.where(np.isinf(ref), ref, 0.0)
        )
        if not same_specials:
            return False
        finite = np.isfinite(got) & np.isfinite(truth) & np.isfinite(ref)
        err_got = np.abs(got - truth)[finite]
        err_ref = np.abs(ref - truth)[finite]
        allowed = 8 * err_ref + ATOL["f32"] + RTOL["f32"] * np.abs(truth[finite])
    return bool((err_got <= allowed).all())


def _same(g: Graph, input_seed: int, backends: list[str], special: float, signature: str) -> bool:
    try:
        f = find_failure(g, input_seed, backends, special)
    except FusecError:
        return False
    return f is not None and f.signature == signature


# ------------------------------------------------------------------------------------------ shrinking


def shrink_choices(record: list[int], cfg: GenConfig, still_fails, deadline: float = float("inf")) -> list[int]:
    """Delete chunks of the choice list and lower single choices, while the replayed graph still fails
    (until `deadline`, a time.time(): shrinking is a search, and a good-enough reproducer will do)."""
    best = list(record)
    changed = True
    while changed and time.time() < deadline:
        changed = False
        for size in (16, 8, 4, 2, 1):
            i = 0
            while i < len(best) and time.time() < deadline:
                cand = best[:i] + best[i + size :]
                if _try(cand, cfg, still_fails):
                    best, changed = cand, True
                else:
                    i += size
        for i in range(len(best)):
            for smaller in (0, best[i] // 2, best[i] - 1):
                if 0 <= smaller < best[i]:
                    cand = best[:i] + [smaller] + best[i + 1 :]
                    if _try(cand, cfg, still_fails):
                        best, changed = cand, True
                        break
    return best


def _try(record: list[int], cfg: GenConfig, still_fails) -> bool:
    try:
        g = replay_graph(record, cfg)
    except FusecError:
        return False
    return still_fails(g)


def rebuild(g: Graph, outputs: list[str], cut: str | None = None) -> Graph:
    """A copy of g with other outputs, optionally with op `cut` replaced by an input of its type."""
    new = Graph(g.name)
    new.dims = dict(g.dims)
    ren: dict[str, str] = {}  # the cut op's name -> its input's name
    for i in g.inputs:
        t = g.type_of(i)
        new.add_input(i, t.dtype, t.shape, written=g.input_dims.get(i))
        if i in g.input_ranges:
            new.input_ranges[i] = g.input_ranges[i]
    for node in g.nodes():
        if node.op == "input":
            continue
        if node.name == cut:
            name = node.name if not node.name.startswith("%") else f"cut{node.name[1:]}"
            new.add_input(name, node.type.dtype, node.type.shape)
            if node.type.dtype.is_int:
                new.input_ranges[name] = (-10, 10)
            outputs = [name if o == node.name else o for o in outputs]
            ren[node.name] = name
            continue
        if node.op == "const":
            new.const(node.attrs["value"], node.type.dtype, name=node.name)
        else:
            new.add(node.op, *[ren.get(a, a) for a in node.args], name=node.name, **node.attrs)
    new.set_outputs(outputs)
    new.dead_code_elimination()
    used = {w for ws in new.input_dims.values() for w in ws if isinstance(w, str)}
    new.dims = {k: v for k, v in new.dims.items() if k in used}
    new.verify()
    return new


def shrink_graph(g: Graph, still_fails, deadline: float = float("inf")) -> Graph:
    best = g
    changed = True
    while changed and time.time() < deadline:
        changed = False
        outs = list(dict.fromkeys(best.outputs))
        if len(best.outputs) > 1:
            for o in outs:
                cand = rebuild(best, [o])
                if still_fails(cand):
                    best, changed = cand, True
                    break
        for node in best.ops():
            try:
                cand = rebuild(best, list(best.outputs), cut=node.name)
            except FusecError:
                continue
            if cand.ops() and still_fails(cand):
                best, changed = cand, True
                break
    return best


def save(out_dir: Path, seed: int, g: Graph, input_seed: int, failure: Failure, special: float) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"fuzz_{seed}_{failure.backend}_{failure.kind}"
    header = [
        f"# Found by tools/fuzz.py (graph seed {seed}, input seed {input_seed}, special {special}), then shrunk.",
        f"# {failure}".replace("\n", " "),
    ]
    text = "\n".join(header) + "\n" + print_graph(g)
    path = out_dir / f"{stem}.fg"
    path.write_text(text)
    arrays = random_arrays(g, np.random.default_rng(input_seed), special)
    np.savez(out_dir / f"{stem}.npz", **dict(zip(g.inputs, arrays)))
    return path


# ------------------------------------------------------------------------------------------ main


def graph_family(name: str, make, count: int, seed: int, backends: list[str], special: float) -> int:
    """Run `count` graphs `make(seed)` of a generated family; the number failing."""
    failing = 0
    for k in range(seed, seed + count):
        g = make(k)
        f = find_failure(g, k, backends, special, verbose=True)
        if f is not None:
            failing += 1
            print(f"{name} {k}: {f}\n{print_graph(g)}", flush=True)
    if count:
        print(f"{name}: {count} graphs, {failing} failing", flush=True)
    return failing


def long_reductions(count: int, seed: int, backends: list[str], special: float) -> int:
    """The long-reductions family (fusec/testing/long_reductions.py): 1e6 values per reduction."""
    from fusec.testing.long_reductions import long_reduction_graph

    return graph_family("long reductions", long_reduction_graph, count, seed, backends, special)


def amplified_powers(count: int, seed: int, backends: list[str], special: float) -> int:
    """The amplified-powers family (fusec/testing/amplified_powers.py): f32 powers times 1000s."""
    from fusec.testing.amplified_powers import amplified_power_graph

    return graph_family("amplified powers", amplified_power_graph, count, seed, backends, special)


def run_edge_case(family: str, seed: int, backends: list[str], out_dir: Path, covered: Counter) -> int:
    """One case of an edge family (zero-size axes, names, dtypes): 1 if it misbehaves (its source is
    saved in the output directory), else 0."""
    case = edge_case(family, seed)
    try:
        status, problem = check_case(case, backends, check)
    except Exception as err:  # a crash anywhere is a finding, with its reproducer
        status, problem = "crashed", f"{type(err).__name__}: {err}"
    covered[family, "failing" if problem else status] += 1
    if problem is None:
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"edge_{family}_{seed}.fg"
    path.write_text(f"# Found by tools/fuzz.py, edge family {family} (seed {seed}): {problem}".replace("\n", " ") + "\n" + case.source)
    print(f"edge {family} {seed}: {problem}\n  saved {path}", flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graphs", type=int, default=1000, help="how many graphs (default 1000)")
    ap.add_argument("--minutes", type=float, default=None, help="stop after this long instead")
    ap.add_argument("--seconds", type=float, default=None, help="stop after this many seconds instead")
    ap.add_argument("--edges", default="empty,names,dtypes",
                    help="edge families run alongside, one case per random graph in turn (fusec/testing/edge_families.py; '' for none)")
    ap.add_argument("--seed", type=int, default=0, help="first graph seed")
    ap.add_argument("--backends", default="numpy,c", help="comma-separated: numpy, c")
    ap.add_argument("--max-ops", type=int, default=10)
    ap.add_argument("--special", type=float, default=0.0, help="fraction of special float inputs")
    ap.add_argument("--out", default="fuzz-failures", help="directory for reproducers")
    ap.add_argument("--long-reductions", type=int, default=0, metavar="N",
                    help="first run N graphs of the long-reductions family (1e6 values per reduction)")
    ap.add_argument("--amplified-powers", type=int, default=0, metavar="N",
                    help="first run N graphs of the amplified-powers family (RoPE-like position * base ** (k i / D))")
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--shrink-minutes", type=float, default=3.0, help="time limit for shrinking one failure")
    args = ap.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    cfg = GenConfig(max_ops=args.max_ops)
    limit = args.seconds if args.seconds is not None else (args.minutes * 60 if args.minutes else None)
    deadline = time.time() + limit if limit is not None else None
    edges = [f.strip() for f in args.edges.split(",") if f.strip()]
    unknown = [f for f in edges if f not in EDGE_FAMILIES]
    if unknown:
        ap.error(f"--edges: unknown famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)} (families: {', '.join(EDGE_FAMILIES)})")
    covered: Counter = Counter()  # (family, outcome) -> count, reported at the end
    out_dir = Path(args.out)
    seen: set[str] = set()
    n = failures = 0
    seed = args.seed
    t0 = time.time()
    failures += long_reductions(args.long_reductions, args.seed, backends, args.special)
    failures += amplified_powers(args.amplified_powers, args.seed, backends, args.special)
    while (deadline is None and n < args.graphs) or (deadline is not None and time.time() < deadline):
        g, record = random_graph(seed, cfg)
        f = find_failure(g, seed, backends, args.special, verbose=True)
        n += 1
        covered["random", "failing" if f is not None else "ok"] += 1
        if edges:
            failures += run_edge_case(edges[n % len(edges)], seed, backends, out_dir, covered)
        if f is not None:
            failures += 1
            sig = f.signature
            print(f"seed {seed}: {f}", flush=True)
            if not args.no_shrink:
                # only the failing backend is rerun while shrinking: a C compile per candidate is slow
                def still(c: Graph, sig=sig, b=f.backend, s=seed) -> bool:
                    return _same(c, s, [b], args.special, sig)

                stop = time.time() + args.shrink_minutes * 60
                record = shrink_choices(record, cfg, still, stop)
                g = shrink_graph(replay_graph(record, cfg), still, stop + 60)
                f = find_failure(g, seed, [f.backend], args.special) or f
            path = save(out_dir, seed, g, seed, f, args.special)
            new = " (new kind)" if sig not in seen else ""
            seen.add(sig)
            print(f"  shrunk to {len(g.ops())} ops: {path}{new}", flush=True)
        seed += 1
        if n % 100 == 0:
            print(f"{n} graphs, {failures} failing, {time.time() - t0:.0f}s", flush=True)
    if args.long_reductions:
        covered["long reductions", "run"] += args.long_reductions
    if args.amplified_powers:
        covered["amplified powers", "run"] += args.amplified_powers
    print(f"done: {n} graphs, {failures} failing ({len(seen)} kinds), {time.time() - t0:.0f}s")
    print("families covered: " + "; ".join(
        f"{fam} " + ", ".join(f"{k} {covered[fam, k]}" for k in ("ok", "refused", "failing", "run") if covered[fam, k])
        for fam in dict.fromkeys(fam for fam, _ in covered)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
