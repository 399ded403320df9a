"""The public entry point: `fusec.compile(graph_or_path, backend=...) -> Compiled`.

    adam = fusec.compile("examples/07_adam.fg", backend="numpy", sizes={"N": 1000},
                         donate={"p_new": "p", "m_new": "m", "v_new": "v"})
    p, m, v = adam(p, g, m, v)          # p, m and v are updated in place
    print(adam.source())                # the generated code
    print(adam.explain())               # the fusion plan
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusec.errors import FusecError, FusecInputError
from fusec.frontend.jit import jit_with
from fusec.inputs import check_memory
from fusec.interp import bind_inputs, check_inputs
from fusec.ir.graph import Graph
from fusec.pipeline import STAGES, Stages, compile_stages
from fusec.runtime.buffers import BufferPool
from fusec.runtime.executor import Executor, Step, ValueType


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    def __str__(self) -> str:
        return f"{self.name}: {np.dtype(self.dtype).name}[{', '.join(map(str, self.shape))}]"


class Compiled:
    """A compiled graph: call it with the inputs in declared order, or by name (program(x, w=w))."""

    def __init__(self, stages: Stages, donate: dict[str, str] | None = None):
        self.stages = stages
        g = stages.plan.graph
        self.graph = stages.graph
        self.backend = stages.backend
        self.donate = dict(donate or {})
        self.inputs = [TensorSpec(n, g.type_of(n).shape, g.type_of(n).dtype.numpy) for n in g.inputs]
        self.outputs = [TensorSpec(n, g.type_of(n).shape, g.type_of(n).dtype.numpy) for n in g.outputs]
        steps = [Step(k.name, k.run, k.params, k.inputs, k.outputs, dict(k.inplace)) for k in stages.kernels]
        types = {n: ValueType(g.type_of(n).shape, g.type_of(n).dtype.numpy) for n in g.nx.nodes}
        produced = {o for k in stages.kernels for o in k.outputs}
        self._leaf_outputs = [o for o in g.outputs if o not in produced]  # inputs or constants returned as is
        self._plan_graph = g
        # refuse at compile time, not with a MemoryError at call time, buffers that cannot fit
        check_memory(g, list(dict.fromkeys(g.inputs + g.outputs)))
        for value in produced:
            check_memory(g, [value])
        self.pool = BufferPool()
        self._executor = Executor(steps, [o for o in dict.fromkeys(g.outputs) if o in produced], types, self.pool)
        # the lean call path (`_lean_inputs`): what a call needs to check, worked out once
        donated = set(self.donate.values())
        self._input_checks = tuple((n, g.type_of(n).shape, np.dtype(g.type_of(n).dtype.numpy), n in donated) for n in g.inputs)
        self._lean = not self._leaf_outputs and len(set(g.outputs)) == len(g.outputs)

    @property
    def kernels(self) -> int:
        return len(self.stages.kernels)

    def __call__(self, *arrays: Any, out: Any = None, **named: Any):
        if named:  # inputs by name, after any positional ones, as Python binds arguments
            arrays = bind_inputs(self._plan_graph, arrays, named)
        if out is None and self._lean:
            inputs = self._lean_inputs(arrays)
            if inputs is not None:
                produced = self._executor.run(inputs)
                results = [produced[name] for name in self._plan_graph.outputs]
                return results[0] if len(results) == 1 else tuple(results)
        return self._call(arrays, out)

    def _lean_inputs(self, arrays: tuple) -> dict[str, np.ndarray] | None:
        """The inputs by name when every one is already what the kernels take (an ndarray of the exact
        shape and dtype, C-contiguous, writeable if donated); None sends the call the careful way."""
        if len(arrays) != len(self._input_checks):
            return None
        inputs = {}
        for a, (name, shape, dtype, donated) in zip(arrays, self._input_checks):
            if type(a) is not np.ndarray or a.shape != shape or a.dtype != dtype:
                return None
            flags = a.flags
            if not flags.c_contiguous or (donated and not flags.writeable):
                return None
            inputs[name] = a
        return inputs

    def _call(self, arrays: tuple, out: Any):
        """Any call: converts and checks the inputs (with clear errors), handles out= and outputs
        that are inputs, constants or listed twice."""
        g = self._plan_graph
        checked = check_inputs(g, arrays)
        donated_inputs = set(self.donate.values())
        inputs = {}
        for name, arr in zip(g.inputs, checked):
            if name in donated_inputs:
                if not (arr.flags.c_contiguous and arr.flags.writeable):
                    raise FusecInputError(f"input '{name}' is donated (updated in place), so it must be a C-contiguous, writeable array")
            else:
                arr = np.require(arr, requirements="C")  # np.ascontiguousarray would make a 0-d array 1-d
            inputs[name] = arr
        outs = self._out_arrays(out)
        produced = self._executor.run(inputs, outs)
        results = []
        seen: set[str] = set()
        for k, name in enumerate(g.outputs):
            if name in produced and name not in seen:
                value = produced[name]
            else:  # an input or constant returned as is, or an output listed twice: a copy of its own
                source = produced.get(name, inputs.get(name))
                if source is None:
                    node = g.node(name)
                    source = np.full(node.type.shape, node.attrs["value"], node.type.dtype.numpy)
                value = np.array(source, copy=True)
                if out is not None and name in outs and k == g.outputs.index(name):
                    np.copyto(outs[name], value)
                    value = outs[name]
            seen.add(name)
            results.append(value)
        return results[0] if len(results) == 1 else tuple(results)

    def _out_arrays(self, out: Any) -> dict[str, np.ndarray]:
        names = self._plan_graph.outputs
        if out is None:
            return {}
        if isinstance(out, np.ndarray):
            out = (out,)
        if isinstance(out, dict):
            unknown = set(out) - set(names)
            if unknown:
                raise FusecInputError(f"out= names {sorted(unknown)}, which are not outputs (outputs: {', '.join(names)})")
            return dict(out)
        out = tuple(out)
        if len(out) != len(names):
            raise FusecInputError(f"out= needs {len(names)} arrays (for {', '.join(names)}), got {len(out)}")
        if len(set(names)) != len(names):
            raise FusecInputError("out= cannot be used when the graph returns the same value twice")
        return {n: a for n, a in zip(names, out) if a is not None}

    def source(self) -> str:
        """The generated code of every kernel, in execution order."""
        return self.stages.show("source")

    def explain(self) -> str:
        """The fusion plan: groups, what was not fused and why, predicted cost."""
        return self.stages.show("groups")

    def show(self, stage: str) -> str:
        """One stage's result as text: one of ir, rules, groups, loops, source."""
        return self.stages.show(stage)

    def __repr__(self) -> str:
        ins = ", ".join(map(str, self.inputs))
        outs = ", ".join(map(str, self.outputs))
        k = self.kernels
        return f"<fusec.Compiled {self._plan_graph.name}({ins}) -> ({outs}): {k} kernel{'s' * (k != 1)}, backend {self.backend}>"

    def _repr_html_(self) -> str:
        """Jupyter: the signature, the plan drawn with one colour per kernel, and each kernel's source."""
        import html

        from fusec.fusion.dot import plan_svg

        kernels = "".join(
            f"<details><summary><code>{html.escape(k.name)}</code> ({html.escape(k.backend)})</summary>"
            f"<pre>{html.escape(k.source)}</pre></details>"
            for k in self.stages.kernels
        )
        return f"<p><code>{html.escape(repr(self))}</code></p>{plan_svg(self.stages.plan)}{kernels}"


def compile(
    graph_or_path: Graph | str | Path,
    backend: str = "c",
    sizes: dict[str, int] | None = None,
    policy: str = "auto",
    rewrite: tuple[str, ...] | None = ("exact", "approx"),
    donate: dict[str, str] | None = None,
    tune_db: str | Path | bool | None = None,
    *,
    rules=None,
    force_fuse=(),
    forbid=(),
) -> Compiled:
    """Compile a graph (or a .fg file) into a callable.

    backend: "c" (generated C, compiled with the system compiler; falls back to "numpy" with a
             warning when there is none) or "numpy" (tiled NumPy source).
    sizes:   values for the named dimensions of a .fg file, e.g. {"N": 1024}.
    policy:  the fusion policy ("auto" tries them all and keeps the cheapest predicted plan).
    rewrite: the rewrite rule classes to apply (None or () for none).
    donate:  output -> input: the output is written over the input's array (an update in place).
    tune_db: the tuning database whose best schedules to use (default $FUSEC_TUNE_DB, else
             tune.jsonl in the cache dir; False: default schedules only). See docs/tuning.md.
    rules:   the rewrite rules to draw the classes from (default: the standard library).
    force_fuse, forbid: op pairs ("a,b") that must / must not share a kernel, as `fusec explain` takes them.

    It runs the same pipeline (fusec.pipeline.compile_stages) as every fusec command, so
    `fusec explain` with the same options describes the plan this builds.
    """
    if callable(graph_or_path) and not isinstance(graph_or_path, Graph):
        name = getattr(graph_or_path, "__name__", "the function")
        raise FusecError(f"fusec.compile takes a Graph or a .fg file, not a Python function ({name}); use "
                         f"fusec.jit({name}) (or @fusec.jit), which traces it on its first call with example arrays")
    key = None if rules is not None else _memo_key(graph_or_path, backend, sizes, policy, rewrite, donate, tune_db, force_fuse, forbid)
    stages = _MEMO.get(key) if key is not None else None
    if stages is None:
        stages = compile_stages(graph_or_path, backend=backend, sizes=sizes, policy=policy, rewrite_classes=rewrite,
                                donate=donate, tune_db=tune_db, rules=rules, force_fuse=force_fuse, forbid=forbid)
        if key is not None:
            _MEMO[key] = stages
            while len(_MEMO) > MEMO_SIZE:
                del _MEMO[next(iter(_MEMO))]
    else:
        _MEMO[key] = _MEMO.pop(key)  # most recently used last
    return Compiled(stages, donate)


# Compiling a .fg file a second time in the same process reuses the first result (its kernels; each
# Compiled still has buffers of its own). The key holds everything the result depends on: the file's
# path and text, every option, the tuning database's and machine model's file stamps, and the
# environment variables that choose the compiler, the cache and sanitize mode.
MEMO_SIZE = 32
_MEMO: dict[tuple, Stages] = {}
_MEMO_ENV = ("CC", "FUSEC_CACHE_DIR", "XDG_CACHE_HOME", "FUSEC_SANITIZE", "FUSEC_TUNE_DB")


def _stamp(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), st.st_mtime_ns, st.st_size)


def _memo_key(graph_or_path, backend, sizes, policy, rewrite, donate, tune_db, force_fuse, forbid) -> tuple | None:
    """The memo key of a compile of a .fg file, or None (a Graph object, or an unreadable file)."""
    if not isinstance(graph_or_path, (str, Path)):
        return None
    path = Path(graph_or_path)
    try:
        text = path.read_text()
        resolved = str(path.resolve())
    except (OSError, ValueError):
        return None  # compile_stages reports it
    from fusec.fusion.machine import model_path
    from fusec.tune.db import default_db_path

    db = None if tune_db is False else _stamp(default_db_path() if tune_db in (None, True) else Path(tune_db))
    options = (backend, tuple(sorted((sizes or {}).items())), policy, None if rewrite is None else tuple(rewrite),
               tuple(sorted((donate or {}).items())), repr(tuple(force_fuse)), repr(tuple(forbid)))
    return (str(graph_or_path), resolved, text, options, db, _stamp(model_path()), tuple(os.environ.get(v) for v in _MEMO_ENV))


jit = jit_with(compile)  # @fusec.jit: trace on the first call, compile, cache per signature (fusec/frontend/jit.py)

__all__ = ["STAGES", "Compiled", "TensorSpec", "compile", "jit"]
