"""Run compiled kernels in order, passing arrays between them.

The executor knows nothing about how a kernel was made: a step is any callable that takes its arrays
in `params` order and fills its outputs (see fusec.codegen.base for the calling convention). It
decides where every output lives:

* a donated input (`inplace`): the output overwrites the input's array;
* a graph output the caller passed in (`out=`): the caller's array;
* another graph output: a fresh array, which the caller keeps;
* an intermediate: an array from the buffer pool, given back once its last reader has run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fusec.errors import FusecInputError
from fusec.runtime.buffers import BufferPool


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
        # the last step that reads each value: after it, an intermediate's array goes back to the pool
        self.last_read: dict[str, int] = {}
        for k, s in enumerate(steps):
            for v in s.inputs:
                self.last_read[v] = k

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
        out = {k: self._check_out(k, v) for k, v in (out or {}).items()}
        values: dict[str, np.ndarray] = dict(inputs)
        pooled: set[str] = set()
        wanted = set(self.outputs)
        try:
            for k, step in enumerate(self.steps):
                for o in step.outputs:
                    if o in step.inplace:
                        values[o] = values[step.inplace[o]]
                    elif o in out:
                        values[o] = out[o]
                    elif o in wanted:
                        t = self.types[o]
                        values[o] = np.empty(t.shape, t.dtype)
                    else:
                        t = self.types[o]
                        values[o] = self.pool.take(t.shape, t.dtype)
                        pooled.add(o)
                step.run(*(values[p] for p in step.params))
                for v in step.inputs:
                    if self.last_read.get(v) == k and v in pooled:
                        pooled.discard(v)
                        self.pool.give(values.pop(v))
        finally:
            for v in pooled:  # an exception mid-way: the pool keeps its arrays
                self.pool.give(values[v])
        return {o: values[o] for o in self.outputs if o in values}
