"""Planning time against op count: elementwise chains and a stack of transformer decoder blocks.

    .venv/bin/python bench/bench_planning.py            # the table (policy auto, default model)
    .venv/bin/python bench/bench_planning.py --chains 1000 5000 --layers 12   # a subset
    pytest bench/bench_planning.py                      # the same graphs, checked for correctness

Planning used to grow with the square of the op count (post-dominators from ancestor and
descendant sets of every op, a whole-graph cycle search per merge attempt); issue 15 asks for a
5,000-op chain under 2 s and a 12-layer decoder under 1 s. The graphs are built here, not read
from files, so their size is a parameter.

Each row is the median of a few runs of plan(graph, "auto") in this process: wall seconds, and the
process's CPU seconds, which other work on a shared machine inflates far less (planning runs on
one core). `solver` says whether auto ran the optimal policy's integer program ("bound": the
heuristics' plan met the lower bound, so it did not; "enum": a search of every plan found the
optimum, so it did not; "-": the graph is above its op limit).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import fusec
from fusec.fusion import MachineModel, plan
from fusec.ir import F32, Graph

ROOT = Path(__file__).resolve().parent.parent
MODEL = MachineModel()  # the defaults, so the plans do not depend on a calibration
UNARY = ("neg", "abs", "sqrt", "neg")


def chain(n: int, shape: tuple[int, ...] = (256, 256)) -> Graph:
    """n elementwise ops, each reading the one before; every other one also reads the input."""
    g = Graph(f"chain{n}")
    x = g.add_input("x", F32, shape)
    v = x
    for i in range(n):
        v = g.add("add", v, x) if i % 2 else g.add(UNARY[(i // 2) % len(UNARY)], v)
    g.set_outputs([v])
    return g


def decoder(layers: int, sizes: dict[str, int] | None = None) -> Graph:
    """`layers` copies of examples/09's transformer block, each with its own weights, one feeding the next."""
    block = fusec.load(ROOT / "examples" / "09_transformer_block.fg", sizes=sizes or {"S": 64, "D": 64, "H": 4, "Dh": 16, "F": 256})
    g = Graph(f"decoder{layers}")
    x = g.add_input("x", F32, block.type_of("x").shape)
    for layer in range(layers):
        names = {"x": x}
        for node in block.nodes():
            new = f"l{layer}_{node.name.lstrip('%')}"
            if node.op == "input":
                names[node.name] = g.add_input(new, node.type.dtype, node.type.shape) if node.name != "x" else x
            elif node.op == "const":
                names[node.name] = g.const(node.attrs["value"], node.type.dtype, name=new)
            else:
                names[node.name] = g.add(node.op, *(names[a] for a in node.args), name=new, **node.attrs)
        x = names[block.outputs[0]]
    g.set_outputs([x])
    return g


def time_plan(g: Graph, repeats: int = 3) -> tuple[float, float, int, str]:
    """Median wall and CPU seconds of plan(g) (policy auto), the kernels it makes, and whether the
    optimal policy's solver ran."""
    walls, cpus, p = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        p = plan(g, "auto", MODEL)
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    solver = "-" if "optimal" not in p.candidates else {"lower bound": "bound", "enumeration": "enum"}.get(p.gap_by, "ran")
    return statistics.median(walls), statistics.median(cpus), p.kernels, solver


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, nargs="*", default=[500, 1000, 2000, 5000], metavar="OPS",
                    help="elementwise chains of these op counts")
    ap.add_argument("--layers", type=int, nargs="*", default=[1, 4, 12], metavar="N",
                    help="decoder stacks of these layer counts")
    ap.add_argument("--repeats", type=int, default=3, help="runs per graph (the median is shown)")
    args = ap.parse_args(argv)
    print(f"planning time, policy auto (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'graph':<14} {'ops':>6} {'kernels':>8} {'wall s':>8} {'CPU s':>8} {'CPU us/op':>10} {'solver':>7}")
    builders = [(chain, n) for n in args.chains] + [(decoder, n) for n in args.layers]
    for build, n in builders:  # one graph at a time: the others would only add to the collector's work
        g = build(n)
        wall, cpu, kernels, solver = time_plan(g, args.repeats)
        ops = len(g.ops())
        print(f"{g.name:<14} {ops:>6} {kernels:>8} {wall:>8.3f} {cpu:>8.3f} {cpu / ops * 1e6:>10.0f} {solver:>7}", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (wall times on a busy machine are upper bounds)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
