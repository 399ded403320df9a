"""Issue 12 in one run: kernels against the roofline, fresh outputs, matmul layers, the NumPy backend,
contention, whole models and latency, on the installed peers; writes its section of bench/README.md.

    python bench/bench_models.py                 # everything (15-30 minutes on a busy 2-core machine)
    python bench/bench_models.py --only latency,kernels --no-readme

Protocol: each fusec variant is checked against the interpreter first, then timed in rounds that
alternate the variants (A, B, A, B, ...), reporting the median of all samples. Peers (numexpr,
torch.compile, jax.jit) run in processes of their own (fusec.bench.peers) with the same inputs and
correctness check. The STREAM triad is measured in the same run; the load average is printed with
every section, since the machine is shared.
"""

# The timed lambdas close over loop variables on purpose: each is called only inside its own iteration.
# ruff: noqa: B023

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import fusec
from fusec.bench.peers import run_peer
from fusec.bench.protocol import Settings, check_outputs, quick_sizes
from fusec.bench.system import cpu_name, package_version
from fusec.frontend import load
from fusec.inputs import random_inputs
from fusec.interp import interpret
from fusec.runtime.probes import measure_triad

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "examples"
README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- bench_models: begin -->", "<!-- bench_models: end -->"
PEERS = ("numexpr", "torch", "jax")
CHOSEN_PEERS = set(PEERS)  # --peers
KERNELS = {"chain": "01_chain", "gelu": "02_gelu", "softmax": "03_softmax", "layernorm": "04_layernorm", "rmsnorm": "05_rmsnorm"}
ADAM_DONATE = {"p_new": "p", "m_new": "m", "v_new": "v"}


# ------------------------------------------------------------------------------------- timing


def load_text() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def alternate(variants: dict[str, callable], rounds: int = 3, per_round: int = 5) -> dict[str, float]:
    """Median seconds of each variant, timed in alternating rounds (one warm-up call each first)."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():
        fn()
    for _ in range(rounds):
        for name, fn in variants.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(s) for name, s in samples.items()}


def peer_times(path: Path, sizes: dict[str, int], peers=PEERS) -> dict[str, float | str]:
    """Median seconds per installed peer (its own process), or why it has none; --peers narrows them."""
    settings = Settings(repeats=9, max_seconds=15.0)
    found: dict[str, float | str] = {}
    for peer in peers:
        if peer not in CHOSEN_PEERS:
            continue
        result = run_peer(peer, str(path), sizes, settings, 0)
        found[peer] = result.timing.median if result.status == "ok" and result.timing else result.status
    return found


def ms(seconds: float | str | None) -> str:
    return f"{seconds * 1e3:.2f} ms" if isinstance(seconds, float) else ("-" if seconds is None else str(seconds)[:40])


def best_peer(peers: dict[str, float | str]) -> tuple[str, float] | None:
    timed = {k: v for k, v in peers.items() if isinstance(v, float)}
    return min(timed.items(), key=lambda kv: kv[1]) if timed else None


def checked(program: fusec.Compiled, graph, xs) -> fusec.Compiled:
    expected = interpret(graph, *xs)
    problem = check_outputs(graph, program(*[x.copy() for x in xs]), expected if isinstance(expected, tuple) else (expected,))
    if problem:
        raise SystemExit(f"{graph.name}: {problem}")
    return program


def io_bytes(graph) -> int:
    names = dict.fromkeys(graph.inputs + graph.outputs)
    return sum(graph.type_of(n).nbytes for n in names)


# ------------------------------------------------------------------------------------ sections


def kernels(triad_gbs: float) -> list[str]:
    rows = ["| workload | fusec `out=` | % of roofline | fusec fresh | fresh, result held | best other peer | fresh / best |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, stem in KERNELS.items():
        path = EX / f"{stem}.fg"
        graph = load(path)
        xs = random_inputs(graph, seed=0)
        prog = checked(fusec.compile(path, backend="c"), graph, xs)
        out = prog(*xs)
        held: list = []

        def fresh_held(prog=prog, xs=xs, held=held):
            held.append(prog(*xs))  # the caller keeps three results: no array can be recycled
            del held[:-3]

        t = alternate({"out": lambda: prog(*xs, out=out), "fresh": lambda: prog(*xs), "held": fresh_held})
        peers = peer_times(path, {})
        best = best_peer(peers)
        roof = io_bytes(graph) / (triad_gbs * 1e9)
        peer = f"{best[0]} {ms(best[1])}" if best else "-"
        ratio = f"{t['fresh'] / best[1]:.2f}" if best else "-"
        rows.append(f"| {name} {graph.type_of(graph.outputs[0])} | {ms(t['out'])} | {100 * roof / t['out']:.0f}% | {ms(t['fresh'])} | "
                    f"{ms(t['held'])} | {peer} | {ratio} |")
        print(rows[-1], flush=True)
    return rows


def adam_and_mlp() -> list[str]:
    rows = ["| workload | fusec `out=` / in place | fusec fresh | reference in this process | best other peer |", "| --- | --- | --- | --- | --- |"]
    path = EX / "07_adam.fg"
    graph = load(path)
    xs = random_inputs(graph, seed=0)
    adam = fusec.compile(path, backend="c", donate=ADAM_DONATE)
    fresh = checked(fusec.compile(path, backend="c"), graph, xs)
    t = alternate({"inplace": lambda: adam(*xs), "fresh": lambda: fresh(*xs)})
    best = best_peer(peer_times(path, {}, ("torch", "jax")))
    peer = f"{best[0]} {ms(best[1])}" if best else "-"
    fused = torch_fused_adam() if "torch" in CHOSEN_PEERS else "not chosen"
    against = f" (fusec in place / torch fused: {t['inplace'] / fused:.2f})" if isinstance(fused, float) else ""
    rows.append(f"| adam, 16.8M params | {ms(t['inplace'])} | {ms(t['fresh'])} | | {peer}; torch fused Adam step "
                f"{ms(fused)}{against} |")
    print(rows[-1], flush=True)

    path = EX / "06_mlp.fg"
    graph = load(path)
    xs = random_inputs(graph, seed=0)
    mlp = checked(fusec.compile(path, backend="c"), graph, xs)
    out, mm = mlp(*xs), np.empty(graph.type_of(graph.outputs[0]).shape, np.float32)
    x, w = xs[0], xs[1]
    t = alternate({"out": lambda: mlp(*xs, out=out), "fresh": lambda: mlp(*xs), "numpy": lambda: np.matmul(x, w, out=mm)})
    peers = peer_times(path, {}, ("torch", "jax"))
    jax = peers.get("jax")
    listed = "; ".join(f"{k} {ms(v)}" for k, v in peers.items())
    against_jax = f" (fusec out= / jax: {t['out'] / jax:.2f})" if isinstance(jax, float) else ""
    rows.append(f"| mlp gelu(x@w+b) 1024x1024x4096 | {ms(t['out'])} ({t['out'] / t['numpy']:.2f}x NumPy's x @ w) | {ms(t['fresh'])} | "
                f"NumPy x @ w {ms(t['numpy'])} | {listed}{against_jax} |")
    print(rows[-1], flush=True)
    return rows


TORCH_FUSED_ADAM = """
import statistics, sys, time
import torch
n = 16777216
p = torch.nn.Parameter(torch.randn(n))
p.grad = torch.randn(n)
opt = torch.optim.Adam([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, fused=True)
for _ in range(9):  # step 10 is timed, as the example computes it; then more steps for the median
    opt.step()
times = []
for _ in range(15):
    start = time.perf_counter()
    opt.step()
    times.append(time.perf_counter() - start)
print(statistics.median(times))
"""


def torch_fused_adam() -> float | str:
    """Median seconds of one step of torch's fused Adam (fused=True) on the example's 16.8M parameters,
    in a process of its own (in place, as fusec's donated Adam), or why there is none."""
    try:
        done = subprocess.run([sys.executable, "-c", TORCH_FUSED_ADAM], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "timed out"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        return "not installed" if "No module named 'torch'" in last else last
    return float(done.stdout)


def numexpr_by_hand(name: str):
    """What a numexpr user writes for a normalization (numexpr has no reductions along an axis):
    NumPy's reductions, numexpr's elementwise passes, f32 constants kept f32."""
    import numexpr as ne

    f32 = np.float32
    if name == "softmax":
        def run(x):
            m = x.max(axis=1, keepdims=True)
            e = ne.evaluate("exp(x - m)", local_dict={"x": x, "m": m})
            return ne.evaluate("e / s", local_dict={"e": e, "s": e.sum(axis=1, keepdims=True)})
    elif name == "layernorm":
        def run(x, gamma, beta):
            d = ne.evaluate("x - mean", local_dict={"x": x, "mean": x.mean(axis=1, keepdims=True)})
            var = ne.evaluate("d * d", local_dict={"d": d}).mean(axis=1, keepdims=True)
            return ne.evaluate("d / sqrt(var + eps) * gamma + beta",
                               local_dict={"d": d, "var": var, "eps": f32(1e-5), "gamma": gamma, "beta": beta})
    else:  # rmsnorm
        def run(x, gamma):
            ms = ne.evaluate("x * x", local_dict={"x": x}).mean(axis=1, keepdims=True)
            return ne.evaluate("x / sqrt(ms + eps) * gamma", local_dict={"x": x, "ms": ms, "eps": f32(1e-6), "gamma": gamma})
    return run


def numpy_backend() -> list[str]:
    rows = ["| workload | fusec NumPy backend, fresh | fusec NumPy backend, `out=` | numexpr, fresh | NumPy backend fresh / numexpr |",
            "| --- | --- | --- | --- | --- |"]
    if package_version("numexpr") is None:
        return rows + ["| (numexpr is not installed) | | | | |"]
    for name, stem in KERNELS.items():
        path = EX / f"{stem}.fg"
        graph = load(path)
        xs = random_inputs(graph, seed=0)
        prog = checked(fusec.compile(path, backend="numpy"), graph, xs)
        out = prog(*xs)
        variants = {"fresh": lambda: prog(*xs), "out": lambda: prog(*xs, out=out)}
        if name in ("chain", "gelu"):  # the peers harness translates elementwise graphs (its own process)
            t = alternate(variants, rounds=2)
            ne = peer_times(path, {}, ("numexpr",))["numexpr"]
        else:
            by_hand = numexpr_by_hand(name)
            problem = check_outputs(graph, (by_hand(*xs),), (interpret(graph, *xs),))
            if problem:
                raise SystemExit(f"numexpr {name}: {problem}")
            t = alternate({**variants, "numexpr": lambda: by_hand(*xs)}, rounds=2)
            ne = t["numexpr"]
        ratio = f"{t['fresh'] / ne:.2f}" if isinstance(ne, float) else "-"
        rows.append(f"| {name} | {ms(t['fresh'])} | {ms(t['out'])} | {ms(ne)} | {ratio} |")
        print(rows[-1], flush=True)
    return rows


def _busy():
    """Another process keeping one core busy (this script started it; it is stopped by its pid)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def contention() -> list[str]:
    rows = ["| example (bench --quick sizes) | interpreter | C, one core busy | C / interpreter |", "| --- | --- | --- | --- |"]
    busy = _busy()
    try:
        time.sleep(0.5)
        for path in sorted(EX.glob("*.fg")):
            sizes = quick_sizes(path, {})
            graph = load(path, sizes=sizes)
            xs = random_inputs(graph, seed=0)
            prog = checked(fusec.compile(path, backend="c", sizes=sizes), graph, xs)
            t = alternate({"interp": lambda: interpret(graph, *xs), "c": lambda: prog(*xs)}, rounds=3, per_round=5)
            rows.append(f"| {path.stem} | {ms(t['interp'])} | {ms(t['c'])} | {t['c'] / t['interp']:.2f} |")
            print(rows[-1], flush=True)
        rows += ["", "| full size, fresh outputs | fusec C idle | fusec C busy | slowdown | jax.jit idle | jax.jit busy | slowdown |",
                 "| --- | --- | --- | --- | --- | --- | --- |"]
        for name in ("chain", "softmax"):
            path = EX / f"{KERNELS[name]}.fg"
            graph = load(path)
            xs = random_inputs(graph, seed=0)
            prog = fusec.compile(path, backend="c")
            busy_c = alternate({"c": lambda: prog(*xs)})["c"]
            busy_jax = peer_times(path, {}, ("jax",))["jax"]
            busy.kill()
            busy.wait()
            time.sleep(0.5)
            idle_c = alternate({"c": lambda: prog(*xs)})["c"]
            idle_jax = peer_times(path, {}, ("jax",))["jax"]
            slow_jax = f"{busy_jax / idle_jax:.2f}" if isinstance(busy_jax, float) and isinstance(idle_jax, float) else "-"
            rows.append(f"| {name} | {ms(idle_c)} | {ms(busy_c)} | {busy_c / idle_c:.2f} | {ms(idle_jax)} | {ms(busy_jax)} | {slow_jax} |")
            print(rows[-1], flush=True)
            busy = _busy()
            time.sleep(0.5)
    finally:
        busy.kill()
        busy.wait()
    return rows


def models() -> list[str]:
    rows = ["| workload | fusec fresh | fusec `out=` | fusec NumPy backend | best other peer | fusec fresh / best |", "| --- | --- | --- | --- | --- | --- |"]
    cases = [("attention, example 08 (H=8, S=1024)", "08_attention", {}),
             ("attention, B=4 x 12 heads, S=512, Dh=64", "08_attention", {"H": 48, "S": 512}),
             ("transformer block, example 09 (S=512, D=768)", "09_transformer_block", {})]
    for label, stem, sizes in cases:
        path = EX / f"{stem}.fg"
        graph = load(path, sizes=sizes or None)
        xs = random_inputs(graph, seed=0)
        prog = checked(fusec.compile(path, backend="c", sizes=sizes or None), graph, xs)
        npb = fusec.compile(path, backend="numpy", sizes=sizes or None)
        out = prog(*xs)
        t = alternate({"fresh": lambda: prog(*xs), "out": lambda: prog(*xs, out=out), "numpy": lambda: npb(*xs)}, rounds=2, per_round=4)
        peers = peer_times(path, sizes, ("torch", "jax"))
        best = best_peer(peers)
        listed = "; ".join(f"{k} {ms(v)}" for k, v in peers.items())
        ratio = f"{t['fresh'] / best[1]:.2f}" if best else "-"
        rows.append(f"| {label} ({prog.kernels} kernels) | {ms(t['fresh'])} | {ms(t['out'])} | {ms(t['numpy'])} | {listed} | {ratio} |")
        print(rows[-1], flush=True)
    return rows


def _wall(cmd: list[str], env: dict | None = None, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=env, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def latency() -> list[str]:
    """Item 8. Child processes run as an installed fusec does: with bytecode cached (in a temporary
    PYTHONPYCACHEPREFIX, so the tree is untouched, whatever PYTHONDONTWRITEBYTECODE says) and the disk
    caches warm, except where a row says cold. Each command runs once untimed first; a row gives the
    median wall time and, in brackets, the median CPU time of the child (user + system, its compiler
    included), which a busy machine inflates less than wall time."""
    import json
    import resource
    import shutil

    from fusec.runtime.cache_dir import default_cache_dir

    pyc = tempfile.mkdtemp(prefix="fusec-bench-pyc-")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPYCACHEPREFIX": pyc}
    py = [sys.executable, "-c"]

    def child(cmd: list[str], cache: str | None = None) -> tuple[float, float, str]:
        """(wall s, CPU s, stdout) of one run of `cmd`; `cache` is its FUSEC_CACHE_DIR."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env | ({"FUSEC_CACHE_DIR": cache} if cache else {}))
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, out.stdout

    def command(cmd: list[str], repeats: int = 7) -> str:
        child(cmd)  # untimed: writes bytecode, fills the caches
        runs = [child(cmd) for _ in range(repeats)]
        return f"{ms(statistics.median(r[0] for r in runs))} ({ms(statistics.median(r[1] for r in runs))} CPU)"

    def cold_cache(keep_front_end: bool) -> str:
        """An empty cache directory; with keep_front_end, holding the parser tables and the parsed rule
        library of the warm one (a new program on a machine where fusec has run before)."""
        directory = tempfile.mkdtemp(prefix="fusec-bench-cold-")
        for sub in ("grammars", "rules") if keep_front_end else ():
            if (warm / sub).is_dir():
                shutil.copytree(warm / sub, Path(directory) / sub)
        return directory

    def compiler_alone(directory: str) -> float:
        """Wall time of the C compiler alone on the translation units a cold compile wrote, run at
        the same time as fusec runs them."""
        entries = [json.loads(meta.read_text()) | {"dir": meta.parent} for meta in Path(directory).glob("v1/*/*/entry.json")]
        t0 = time.perf_counter()
        procs = [subprocess.Popen([*e["compiler_command"], *e["flags"], "-o", str(Path(pyc) / f"alone{i}.so"), str(e["dir"] / "kernel.c"), "-lm"])
                 for i, e in enumerate(entries)]
        for proc in procs:
            proc.wait()
        return time.perf_counter() - t0

    fusec_cli = [sys.executable, "-m", "fusec"]
    rows = ["| what | median | target |", "| --- | --- | --- |",
            f"| `python -c pass` (the floor) | {command(py + ['pass'])} | |",
            f"| `python -c 'import numpy, networkx, lark'` (what `check` cannot do without) | {command(py + ['import numpy, networkx, lark'])} | |",
            f"| `fusec --help` | {command(fusec_cli + ['--help'])} | 150 ms |",
            f"| `fusec check examples/03_softmax.fg` | {command(fusec_cli + ['check', str(EX / '03_softmax.fg')])} | 300 ms |"]
    print("\n".join(rows[2:]), flush=True)
    timed_compile = ("import sys, time; import fusec; t, c = time.perf_counter(), time.process_time(); fusec.compile(sys.argv[1]); "
                     "print(time.perf_counter() - t, time.process_time() - c)")
    hits, firsts, cold_kernels, compilers, colds = [], [], [], [], []
    for path in sorted(EX.glob("*.fg")):
        fusec.compile(path)
        warm = default_cache_dir()
        tag = path.stem[:2]
        t = alternate({"hit": lambda: fusec.compile(path)}, rounds=1, per_round=5)["hit"]
        hits.append(f"{tag} {t * 1e3:.2f}")
        child(py + [timed_compile, str(path)])
        first = [float(child(py + [timed_compile, str(path)])[2].split()[0]) for _ in range(3)]
        firsts.append(f"{tag} {statistics.median(first) * 1e3:.0f}")
        runs, alone = [], []
        for _ in range(3):
            directory = cold_cache(keep_front_end=True)
            runs.append(float(child(py + [timed_compile, str(path)], cache=directory)[2].split()[0]))
            alone.append(compiler_alone(directory))
            shutil.rmtree(directory, ignore_errors=True)
        cold_kernels.append(f"{tag} {statistics.median(runs) * 1e3:.0f}")
        compilers.append(f"{tag} {statistics.median(alone) * 1e3:.0f}")
        directory = cold_cache(keep_front_end=False)
        colds.append(f"{tag} {float(child(py + [timed_compile, str(path)], cache=directory)[2].split()[0]) * 1e3:.0f}")
        shutil.rmtree(directory, ignore_errors=True)
        print(f"{tag}: hit {hits[-1]}, first {firsts[-1]}, cold kernels {cold_kernels[-1]} (compiler alone {compilers[-1]}), cold {colds[-1]}", flush=True)
    shutil.rmtree(pyc, ignore_errors=True)
    rows.append(f"| cache-hit `fusec.compile`, same process, ms | {', '.join(hits)} | 10 ms (01-08), 30 ms (09) |")
    rows.append(f"| first `fusec.compile` in a new process, disk caches warm (median of 3), ms | {', '.join(firsts)} | close to `check` |")
    rows.append(f"| cold kernels: `fusec.compile` in a new process, empty kernel cache, C compiler included (median of 3), ms "
                f"| {', '.join(cold_kernels)} | 500 ms |")
    rows.append(f"| ... of which the C compiler alone, on the same files, as many at once as fusec runs (median of 3), ms | {', '.join(compilers)} | |")
    rows.append(f"| cold everything: empty `FUSEC_CACHE_DIR` (parser tables and rule library built too; one run), ms | {', '.join(colds)} | |")
    small = fusec.compile(EX / "01_chain.fg", sizes={"N": 8, "M": 8})
    x = random_inputs(small.graph, seed=0)[0]
    t = alternate({"fusec": lambda: small(x), "numpy": lambda: ((x * 2 + 1) * x - 3) / (x * x + 1) + np.sqrt(np.abs(x))},
                  rounds=5, per_round=2000)
    rows.append(f"| 8x8 chain: compiled call / the NumPy expression | {t['fusec'] * 1e6:.1f} us / {t['numpy'] * 1e6:.1f} us = "
                f"{t['fusec'] / t['numpy']:.2f}x | 2x |")
    for row in rows[6:]:
        print(row, flush=True)
    return rows


SECTIONS = {"kernels": None, "layers": adam_and_mlp, "numpy": numpy_backend, "contention": contention, "models": models, "latency": latency}
TITLES = {"kernels": "Kernels (items 1, 2): caller-provided and fresh outputs", "layers": "Adam in place and the MLP layer (items 3, 4)",
          "numpy": "The NumPy backend against numexpr (item 5)", "contention": "One core kept busy by another process (item 6)",
          "models": "Whole models (item 7)", "latency": "Latency (item 8)"}


def write_readme(text: str) -> None:
    current = README.read_text() if README.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        current = head + block + rest.split(END, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(current)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help=f"comma-separated sections ({', '.join(SECTIONS)})")
    ap.add_argument("--no-readme", action="store_true", help="print the tables without writing bench/README.md")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers to run (torch.compile takes minutes to compile on a busy machine)")
    args = ap.parse_args()
    CHOSEN_PEERS.intersection_update(args.peers.split(","))
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    os.chdir(ROOT)
    triad = measure_triad()
    start = load_text()
    versions = ", ".join(f"{p} {package_version(p)}" for p in ("numpy", "numexpr", "torch", "jax") if package_version(p))
    lines = ["## Issue 12: kernels, layers, models, contention and latency (`python bench/bench_models.py`)", "",
             f"{cpu_name()}, {os.cpu_count()} cores; {versions}; {triad}; "
             f"load average (1/5 min) {start} at the start, taken {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", ""]
    for name in chosen:
        print(f"\n== {TITLES[name]} (load {load_text()})", flush=True)
        rows = kernels(triad.median_gbs) if name == "kernels" else SECTIONS[name]()
        lines += [f"### {TITLES[name]}", "", f"Load average at the start of this section: {load_text()}.", "", *rows, ""]
    text = "\n".join(lines)
    if not args.no_readme:
        write_readme(text)
    print(f"\nload at the end {load_text()}")


if __name__ == "__main__":
    main()
