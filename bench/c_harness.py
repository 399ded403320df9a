"""What the C-backend benches share: compile an example with the C backend, run it with caller-provided
outputs, time things the same way, and compute roofline ratios.

Graphs compile through the public API (fusec.compile, so rewrites, fusion and the executor are
included) and run with caller-provided, pre-touched outputs (`out=`), so a bench measures the
kernels, not allocation: a freshly page-faulted 64 MiB output costs ~25 ms on this kind of machine,
more than the kernel itself.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import fusec
from fusec.frontend import load
from fusec.inputs import random_inputs
from fusec.ir.graph import Graph

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ALL_EXAMPLES = sorted(p.stem for p in EXAMPLES.glob("*.fg"))
MEMORY_BOUND = ("01_chain", "02_gelu", "03_softmax", "04_layernorm")


def full_sizes() -> bool:
    """Benchmarks run the examples at full size only when asked (FUSEC_BENCH_FULL=1 or --bench-full)."""
    return os.environ.get("FUSEC_BENCH_FULL", "") not in ("", "0")


def bench_sizes(stem: str) -> dict[str, int] | None:
    """The sizes a benchmark uses for an example: its own, or (by default) the reduced sizes of
    `fusec bench --quick` (dimensions halved, where the graph allows, to at most 2^20 elements a value)."""
    if full_sizes():
        return None
    from fusec.bench.protocol import quick_sizes

    return quick_sizes(EXAMPLES / f"{stem}.fg", {}) or None


def example(stem: str, sizes: dict[str, int] | None = None) -> Graph:
    """An example graph: at `sizes` when given, else at the benchmark sizes (bench_sizes)."""
    return load(EXAMPLES / f"{stem}.fg", sizes=sizes if sizes is not None else bench_sizes(stem))


@dataclass
class CompiledC:
    """A graph compiled by fusec.compile(backend="c"), with its outputs preallocated and touched once."""

    graph: Graph
    compiled: fusec.Compiled
    outs: dict[str, np.ndarray]
    sources: list[str]

    def run(self, inputs: list[np.ndarray]):
        return self.compiled(*inputs, out=self.outs or None)


def compile_c(graph: Graph, inplace: dict[str, str] | None = None) -> CompiledC:
    """Compile through the public API; `inplace` maps an output to the input it overwrites (donation)."""
    compiled = fusec.compile(graph, backend="c", donate=inplace)
    donated = set(inplace or {})
    outs = {s.name: np.ones(s.shape, s.dtype) for s in compiled.outputs if s.name not in donated}
    return CompiledC(graph, compiled, outs, [compiled.source()])


def graph_bytes(graph: Graph, inplace: bool = False) -> int:
    """Bytes a perfectly fused kernel must move: every input read once, every output written once.

    In place, an output written over its input adds no new bytes beyond the read and the write.
    """
    read = sum(graph.type_of(n).nbytes for n in graph.inputs)
    written = sum(graph.type_of(o).nbytes for o in graph.outputs)
    return read + written


def time_call(fn: Callable[[], object], repeats: int = 7, warmup: int = 1, max_seconds: float = 20.0) -> dict[str, float]:
    """Median and minimum seconds over `repeats` calls after `warmup` calls (fewer if it is slow)."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < repeats:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        if time.perf_counter() - start > max_seconds and len(samples) >= 2:
            break
    return {"median": statistics.median(samples), "min": min(samples), "n": len(samples)}


def inputs_for(graph: Graph) -> list[np.ndarray]:
    return random_inputs(graph, seed=0)
