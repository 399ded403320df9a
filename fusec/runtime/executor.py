"""Running a compiled graph: kernels in order, with the arrays they read and write.

The executor knows nothing about code generation: each step is a callable over arrays (see
fusec.codegen.base for the calling convention). It decides where every output lives:

* a donated input (`inplace`): the output overwrites the input's array;
* a graph output the caller passed in (`out=`): the caller's array;
* another graph output: a new array, which the caller keeps; from 128 KiB up, one from the
  OutputRecycler (an array the caller dropped after an earlier call, else a new one);
* an intermediate: an array from the buffer pool, given back once its last reader has run.

Before a kernel large enough to have a parallel region runs, the ThreadBudget (fusec.runtime.threads)
sets how many threads it gets. Everything that depends only on the graph (which array each output
takes, when an intermediate is released, each kernel's size) is worked out once, here, so a call of
a small graph costs little more than its kernel calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fusec.errors import FusecInputError
from fusec.runtime import loader
from fusec.runtime.buffers import BufferPool, OutputRecycler

# the C emitter keeps nests with fewer points than this on one thread (fusec.codegen.c_emit.MIN_PARALLEL_WORK)
MIN_PARALLEL_POINTS = 32768

# below this, malloc serves a new array from memory it already touched: recycling would cost more
RECYCLE_MIN_BYTES = 128 * 1024

_DONATED, _CALLER_OR_FRESH, _CALLER_OR_RECYCLED, _POOLED = 0, 1, 2, 3


@dataclass
class Step:
    name: str
    run: Callable[..., None]
    params: tuple[str, ...]  # values bound to the kernel's parameters, in call order
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    inplace: dict[str, str] = field(default_factory=dict)  # output value -> input value it overwrites


@dataclass(frozen=True)
class ValueType:
    shape: tuple[int, ...]
    dtype: np.dtype


class Executor:
    def __init__(self, steps: list[Step], outputs: list[str], types: dict[str, ValueType], pool: BufferPool | None = None):
        self.steps = steps
        self.outputs = list(outputs)
        self.types = types
        self.pool = pool or BufferPool()
        self.recycler = OutputRecycler(keep=2 * max(len(self.outputs), 1))
        # the last step that reads each value: after it, an intermediate's array goes back to the pool
        self.last_read: dict[str, int] = {}
        for k, s in enumerate(steps):
            for v in s.inputs:
                self.last_read[v] = k
        wanted = set(self.outputs)
        self._plan = []  # per step: (kernel, params, [(output, how, shape, dtype, donor)], released values, points)
        for k, s in enumerate(steps):
            allocs = []
            for o in s.outputs:
                t = types[o]
                if o in s.inplace:
                    how = _DONATED
                elif o not in wanted:
                    how = _POOLED
                elif math.prod(t.shape) * np.dtype(t.dtype).itemsize >= RECYCLE_MIN_BYTES:
                    how = _CALLER_OR_RECYCLED
                else:
                    how = _CALLER_OR_FRESH
                allocs.append((o, how, tuple(t.shape), np.dtype(t.dtype), s.inplace.get(o)))
            released = tuple(v for v in s.inputs if self.last_read.get(v) == k and v not in wanted)
            points = max((math.prod(types[p].shape) for p in s.params if p in types), default=0)
            self._plan.append((s.run, s.params, allocs, released, points))

    def _check_out(self, name: str, arr: np.ndarray) -> np.ndarray:
        t = self.types[name]
        if not isinstance(arr, np.ndarray):
            raise FusecInputError(f"out array for '{name}' must be a NumPy array, got {type(arr).__name__}")
        if arr.shape != t.shape or arr.dtype != t.dtype:
            raise FusecInputError(
                f"out array for '{name}' must have shape {list(t.shape)} and dtype {t.dtype}, got {list(arr.shape)} {arr.dtype}"
            )
        if not arr.flags.c_contiguous or not arr.flags.writeable:
            raise FusecInputError(f"out array for '{name}' must be C-contiguous and writeable")
        return arr

    def run(self, inputs: dict[str, np.ndarray], out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Run every step; returns the graph outputs by name."""
        out = {k: self._check_out(k, v) for k, v in out.items()} if out else {}
        values: dict[str, np.ndarray] = dict(inputs)
        pooled: set[str] = set()
        fresh: list[np.ndarray] = []
        threads = loader.thread_budget()
        try:
            for run, params, allocs, released, points in self._plan:
                for o, how, shape, dtype, donor in allocs:
                    if how == _DONATED:
                        values[o] = values[donor]
                    elif how == _POOLED:
                        values[o] = self.pool.take(shape, dtype)
                        pooled.add(o)
                    elif o in out:
                        values[o] = out[o]
                    elif how == _CALLER_OR_FRESH:
                        values[o] = np.empty(shape, dtype)
                    else:
                        values[o] = arr = self.recycler.take(shape, dtype)
                        fresh.append(arr)
                if threads is not None and points >= MIN_PARALLEL_POINTS:
                    threads.set_for(points)
                run(*[values[p] for p in params])
                for v in released:
                    if v in pooled:
                        pooled.discard(v)
                        self.pool.give(values.pop(v))
        finally:
            for v in pooled:  # an exception mid-way: the pool keeps its arrays
                self.pool.give(values[v])
        for arr in fresh:
            self.recycler.hand_out(arr)
        return {o: values[o] for o in self.outputs if o in values}
