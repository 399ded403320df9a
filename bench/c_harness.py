"""What the C-backend benches share: compile an example with the C backend, run it with caller-provided
outputs, time things the same way, and compute roofline ratios.

The driver here is deliberately small (plan -> lower -> CBackend.build, buffers allocated once and
pre-touched), so a bench measures the kernels, not allocation: a freshly page-faulted 64 MiB output
costs ~25 ms on this kind of machine, more than the kernel itself.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusec.codegen.c_backend import CBackend
from fusec.frontend import load
from fusec.fusion.planner import plan
from fusec.inputs import random_inputs
from fusec.ir.graph import Graph
from fusec.loops.lower import lower_group

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MEMORY_BOUND = ("01_chain", "02_gelu", "03_softmax", "04_layernorm")


def example(stem: str, sizes: dict[str, int] | None = None) -> Graph:
    return load(EXAMPLES / f"{stem}.fg", sizes=sizes)


@dataclass
class CompiledC:
    """A graph compiled to C kernels, with every buffer preallocated and touched once."""

    graph: Graph
    steps: list[tuple[Callable, list[str]]]  # (kernel, the values bound to its parameters)
    values: dict[str, np.ndarray]
    sources: list[str]
    aliases: dict[str, str]  # an output updated in place -> the input whose memory holds it

    def run(self, inputs: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        for name, arr in zip(self.graph.inputs, inputs):
            self.values[name] = arr
        for kernel, params in self.steps:
            kernel(*[self.values[p] for p in params])
        return tuple(self.values[self.aliases.get(o, o)] for o in self.graph.outputs)


def compile_c(graph: Graph, backend: CBackend | None = None, inplace: dict[str, str] | None = None) -> CompiledC:
    """Compile every group; `inplace` maps an output to the input it overwrites (donation)."""
    backend = backend or CBackend()
    p = plan(graph)
    values: dict[str, np.ndarray] = {}
    steps, sources = [], []
    aliases: dict[str, str] = {}
    for group in p.groups:
        donated = {o: i for o, i in (inplace or {}).items() if o in group.outputs and i in group.inputs}
        nest = lower_group(p.graph, group, inplace=donated)
        kernel = backend.build(p.graph, group, nest, backend.default_schedule(nest))
        sources.append(kernel.source)
        params = []
        for b in nest.buffers:
            params.append(b.value)
            if b.role == "inout":
                aliases[b.written_value] = b.value
            if b.role == "out":
                values[b.value] = np.ones(b.shape, b.dtype.numpy)  # touched now, not in the timed call
        steps.append((kernel, params))
    return CompiledC(graph, steps, values, sources, aliases)


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
