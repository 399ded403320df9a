"""Planning time against op count: elementwise chains and a stack of transformer decoder blocks.

    .venv/bin/python bench/bench_planning.py            # the table (policy auto, default model)
    .venv/bin/python bench/bench_planning.py --chains 1000 5000 --layers 12   # a subset
    pytest bench/bench_planning.py                      # the same graphs, checked for correctness

Planning used to grow with the square of the op count (post-dominators from ancestor and
descendant sets of every op, a whole-graph cycle search per merge attempt); issue 15 asks for a
5,000-op chain under 2 s and a 12-layer decoder under 1 s. The graphs are built here, not read
from files, so their size is a parameter.
"""

from __future__ import annotations

import argparse
import os
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


def time_plan(g: Graph, repeats: int = 3) -> tuple[float, int]:
    """Median seconds of plan(g) (policy auto) and the kernels it makes."""
    times, kernels = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        kernels = plan(g, "auto", MODEL).kernels
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], kernels


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, nargs="*", default=[500, 1000, 2000, 5000], metavar="OPS",
                    help="elementwise chains of these op counts")
    ap.add_argument("--layers", type=int, nargs="*", default=[1, 4, 12], metavar="N",
                    help="decoder stacks of these layer counts")
    args = ap.parse_args(argv)
    print(f"planning time, policy auto (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'graph':<14} {'ops':>6} {'kernels':>8} {'seconds':>9} {'us/op':>7}")
    graphs = [chain(n) for n in args.chains] + [decoder(n) for n in args.layers]
    for g in graphs:
        seconds, kernels = time_plan(g, 1 if len(g.ops()) > 3000 else 3)
        ops = len(g.ops())
        print(f"{g.name:<14} {ops:>6} {kernels:>8} {seconds:>9.3f} {seconds / ops * 1e6:>7.0f}", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (times on a busy machine are upper bounds)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
