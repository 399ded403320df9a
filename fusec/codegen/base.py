"""The interface every backend implements: turn one lowered group into a callable kernel.

    kernel = backend.build(graph, group, nest, schedule)
    kernel(*arrays)           # arrays in the order of nest.buffers (kernel.params)

Calling convention (the executor guarantees it, so kernels do not re-check):

* one array per `nest.buffers` entry, in that order; each is C-contiguous with exactly the buffer's
  shape and dtype;
* `out` buffers are preallocated by the caller (their old contents are garbage) and fully written;
* an `inout` buffer is a donated input: the kernel reads it and overwrites it in place;
* a kernel returns nothing; it never allocates its outputs.

`schedule` is a `fusec.loops.schedule.Schedule`; `backend.default_schedule(nest)` gives a good one
for this backend. A kernel carries its generated source (`kernel.source`) so users can read it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from fusec.fusion.plan import Group
from fusec.ir.graph import Graph
from fusec.loops.defaults import default_schedule
from fusec.loops.ir import LoopNest
from fusec.loops.schedule import Schedule


@dataclass
class Kernel:
    """One compiled group: call it with arrays in `params` order.

    name:     identifier of the kernel
    backend:  "numpy" or "c"
    params:   graph values bound to the parameters, in call order (nest.buffers[k].value)
    inputs:   graph values it reads (an inout value appears in both lists)
    outputs:  graph values it writes
    inplace:  output value -> input value whose memory it overwrites (donation)
    source:   the generated code, for a human to read
    run:      the callable that does the work
    """

    name: str
    backend: str
    params: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    source: str
    run: Callable[..., None]
    inplace: dict[str, str] = field(default_factory=dict)
    nest: LoopNest | None = None

    def __call__(self, *arrays) -> None:
        self.run(*arrays)


def kernel_signature(nest: LoopNest) -> dict:
    """The Kernel fields that follow from the nest alone (name, params, inputs, outputs, inplace)."""
    return dict(
        name=nest.name,
        params=tuple(b.value for b in nest.buffers),
        inputs=tuple(b.value for b in nest.inputs),
        outputs=tuple(b.written_value for b in nest.outputs),
        inplace={b.out_value: b.value for b in nest.buffers if b.role == "inout"},
        nest=nest,
    )


class Backend(ABC):
    """A code generator: LoopNest (+ Schedule) -> Kernel."""

    name: str = "?"

    def default_schedule(self, nest: LoopNest) -> Schedule:
        return default_schedule(nest, backend=self.name)

    @abstractmethod
    def build(self, graph: Graph, group: Group, nest: LoopNest, schedule: Schedule) -> Kernel:
        """Generate, compile if needed, and load one kernel."""

    def build_all(self, graph: Graph, items: list[tuple[Group, LoopNest, Schedule]]) -> list[Kernel]:
        """Build several kernels of one graph; a backend may share work between them (one compiler run)."""
        return [self.build(graph, group, nest, schedule) for group, nest, schedule in items]
