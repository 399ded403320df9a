"""`@fusec.jit`: trace a NumPy-style function on its first call, compile it, cache it per signature.

    @fusec.jit
    def gelu_mlp(x, w, b):
        return fusec.ops.gelu(x @ w + b)

    y = gelu_mlp(x, w, b)            # traced and compiled for these shapes and dtypes; a NumPy array
    y = gelu_mlp(x, w, b)            # the cached program runs again
    print(gelu_mlp.graph(x, w, b))   # the traced graph as .fg text

Arguments may be NumPy arrays, NumPy scalars, Python numbers, and tuples, lists and dicts of those.
Each array becomes a graph input. A Python number is traced as a zero-dimensional input of a weak
type, as jax does: a float becomes f32, an int i32 and a bool bool, so changing its value does not
retrace, and `x * lr` keeps an f64 `x` in f64 (the ordinary promotion). Arguments named in
`static_argnames` / `static_argnums` (and any argument that is not a number, an array or a container
of them, such as a string or None) are static: their value is baked into the graph as a literal and
is part of the cache key. NumPy arrays the function captures from outside become extra inputs
(`c0`, `c1`, ...) whose values are passed on each call. The result keeps the function's structure:
one array, or a tuple, list or dict of arrays.

This module is in the frontend layer, so it does not import the compiler: `fusec.jit` is
`jit_with(fusec.compile)` (fusec/__init__.py).
"""

from __future__ import annotations

import functools
import inspect
import keyword
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fusec.errors import FusecError
from fusec.frontend.tensor import ACTIVE, Tensor, Tracer, to_dtype
from fusec.frontend.trace import refuse_literal_name
from fusec.ir.graph import Graph
from fusec.ir.ops import OPS

RESERVED = {"graph", "return", "assert", "kernels", "input", "const"}
WEAK = {bool: "bool", int: "i32", float: "f32"}  # the dtype of a Python number traced as an input


@dataclass
class Leaf:
    """One array-valued piece of the arguments: where it is, and the graph input it became."""

    path: tuple
    dtype: str
    shape: tuple[int, ...]


@dataclass
class Entry:
    """What one call signature traced to: the graph, its compiled program, and how to call it."""

    graph: Graph
    leaves: list[Leaf]
    captured: list[np.ndarray]
    outputs: Any  # the result's structure, with output positions where the arrays go
    program: Any = field(default=None)


def _flatten(value: Any, path: tuple, leaves: list, static: list) -> None:
    if isinstance(value, (tuple, list)):
        static.append((path, type(value).__name__, len(value)))
        for i, v in enumerate(value):
            _flatten(v, path + (i,), leaves, static)
    elif isinstance(value, dict):
        static.append((path, "dict", tuple(value)))
        for k, v in value.items():
            _flatten(v, path + (k,), leaves, static)
    elif isinstance(value, (np.ndarray, np.generic, bool, int, float)):
        leaves.append((path, value))
    else:
        try:
            hash(value)
        except TypeError:
            raise FusecError(f"argument {_path_text(path)} is a {type(value).__name__}, which fusec.jit can neither "
                             "trace (arrays and numbers) nor use as a static (hashable) value") from None
        static.append((path, "static", value))


def _path_text(path: tuple) -> str:
    return path[0] + "".join(f"[{p!r}]" for p in path[1:])


def _leaf_type(path: tuple, value: Any) -> tuple[str, tuple[int, ...]]:
    if type(value) in WEAK:
        return WEAK[type(value)], ()
    arr = np.asarray(value)
    try:
        return to_dtype(arr.dtype).name, arr.shape
    except FusecError:
        raise FusecError(f"argument {_path_text(path)} has dtype {arr.dtype}, which fusec does not have "
                         "(dtypes: f32, f64, i32, i64, bool)") from None


def _input_name(path: tuple, taken: set[str]) -> str:
    text = "_".join(str(p) for p in path)
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in text)
    if not name or name[0].isdigit():
        name = "a_" + name
    while name in OPS or name in RESERVED or keyword.iskeyword(name) or name in taken:
        name += "_"
    taken.add(name)
    return name


def _rebuild(value: Any, path: tuple, make: Callable[[tuple, Any], Any]) -> Any:
    """The argument with each array leaf replaced by make(path, leaf)."""
    if isinstance(value, (tuple, list)):
        return type(value)(_rebuild(v, path + (i,), make) for i, v in enumerate(value))
    if isinstance(value, dict):
        return {k: _rebuild(v, path + (k,), make) for k, v in value.items()}
    if isinstance(value, (np.ndarray, np.generic, bool, int, float)):
        return make(path, value)
    return value


class Jitted:
    """A function traced and compiled per call signature; call it like the function."""

    def __init__(self, function: Callable, compiler: Callable, backend: str = "c", tune: Any = None,
                 policy: str = "auto", static_argnames: tuple[str, ...] = (), static_argnums: tuple[int, ...] = ()):
        functools.update_wrapper(self, function)
        self.function = function
        self.compiler = compiler
        self.options = {"backend": backend, "policy": policy, "tune_db": tune}
        self.signature = inspect.signature(function)
        params = list(self.signature.parameters)
        self.static = set(static_argnames) | {params[i] for i in static_argnums if i < len(params)}
        unknown = set(static_argnames) - set(params)
        if unknown:
            raise FusecError(f"static_argnames names {sorted(unknown)}, which {function.__name__} does not take")
        self.cache: dict[Any, Entry] = {}
        self.traces = 0  # how many times the function has been traced (a cache miss traces once)

    # -- the public face
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        entry, leaves = self._entry(args, kwargs, compile=True)
        arrays = [np.asarray(v, dtype=to_dtype(leaf.dtype).numpy) for leaf, (_, v) in zip(entry.leaves, leaves)]
        result = entry.program(*arrays, *entry.captured)
        results = result if len(entry.graph.outputs) > 1 else (result,)
        return _rebuild_outputs(entry.outputs, results)

    def graph(self, *args: Any, **kwargs: Any) -> Graph:
        """The graph traced for these arguments (print it for its .fg text)."""
        return self._entry(args, kwargs, compile=False)[0].graph.copy()

    def explain(self, *args: Any, **kwargs: Any) -> str:
        """The fusion plan of the program compiled for these arguments."""
        return self._entry(args, kwargs, compile=True)[0].program.explain()

    def source(self, *args: Any, **kwargs: Any) -> str:
        """The generated code of the program compiled for these arguments."""
        return self._entry(args, kwargs, compile=True)[0].program.source()

    def __repr__(self) -> str:
        return f"<fusec.jit {self.__name__}: {len(self.cache)} compiled signature{'s' * (len(self.cache) != 1)}>"

    # -- tracing and the cache
    def _bind(self, args: tuple, kwargs: dict) -> inspect.BoundArguments:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise FusecError(f"{self.__name__}: {e}") from None
        bound.apply_defaults()
        return bound

    def _entry(self, args: tuple, kwargs: dict, compile: bool) -> tuple[Entry, list]:
        bound = self._bind(args, kwargs)
        leaves: list = []
        static: list = []
        for name, value in bound.arguments.items():
            if name in self.static:
                try:
                    hash(value)
                except TypeError:
                    raise FusecError(f"static argument '{name}' must be hashable, got {type(value).__name__}") from None
                static.append(((name,), "static", value))
            else:
                _flatten(value, (name,), leaves, static)
        types = tuple(_leaf_type(path, v) for path, v in leaves)
        key = (tuple(static), tuple(path for path, _ in leaves), types)
        entry = self.cache.get(key)
        if entry is None:
            entry = self.cache[key] = self._trace(bound, leaves, types)
        if compile and entry.program is None:
            entry.program = self.compiler(entry.graph.copy(), **self.options)
        return entry, leaves

    def _trace(self, bound: inspect.BoundArguments, leaves: list, types: tuple) -> Entry:
        self.traces += 1
        name = self.__name__ if self.__name__.isidentifier() else "traced"
        tracer = Tracer(Graph(name))
        taken: set[str] = set()
        made = {}
        records = []
        for (path, _), (dtype, shape) in zip(leaves, types):
            if len(path) == 1:  # a parameter that is an array itself: its name becomes the input's
                refuse_literal_name(self.function, str(path[0]), f"an input of {self.__name__}")
            input_name = tracer.graph.add_input(_input_name(path, taken), to_dtype(dtype), shape)
            made[path] = Tensor(tracer, input_name)
            records.append(Leaf(path, dtype, shape))
        call_args = {n: v if n in self.static else _rebuild(v, (n,), lambda p, _: made[p])
                     for n, v in bound.arguments.items()}
        ACTIVE.append(tracer)
        try:
            rebound = inspect.BoundArguments(self.signature, call_args)
            result = self.function(*rebound.args, **rebound.kwargs)
        finally:
            ACTIVE.pop()
        outputs: list[str] = []
        structure = _output_structure(result, tracer, outputs, self.__name__)
        graph = tracer.graph
        graph.set_outputs(outputs)
        _name_outputs(graph, structure, self.function)
        graph.dead_code_elimination()
        graph.name_temporaries()
        graph.verify()
        return Entry(graph, records, list(tracer.captured.values()), structure)


def _output_structure(result: Any, tracer: Tracer, outputs: list[str], fname: str) -> Any:
    """The result with each tensor replaced by its output position (appending its name to outputs)."""
    if isinstance(result, (tuple, list)):
        return type(result)(_output_structure(r, tracer, outputs, fname) for r in result)
    if isinstance(result, dict):
        return {k: _output_structure(v, tracer, outputs, fname) for k, v in result.items()}
    if isinstance(result, Tensor) or isinstance(result, (np.ndarray, np.generic, bool, int, float)):
        name = result.name if isinstance(result, Tensor) else tracer.operand(result)
        if not isinstance(name, str):  # a Python number returned as is: a constant output
            name = tracer.graph.const(name, to_dtype(WEAK[type(name)]))
        outputs.append(name)
        return _Out(len(outputs) - 1)
    raise FusecError(f"{fname} returned a {type(result).__name__}; a jitted function returns arrays, or tuples, "
                     "lists and dicts of them")


@dataclass(frozen=True)
class _Out:
    """Where an output array goes in the result: its position among the graph's outputs."""

    position: int


def _name_outputs(graph: Graph, structure: Any, function: Callable) -> None:
    """Outputs take readable names: a dict's keys (never a literal's name), else out (or out0, ...)."""
    named: list[tuple[int, str]] = []

    def walk(s: Any, label: str | None) -> None:
        if isinstance(s, _Out):
            named.append((s.position, label))
        elif isinstance(s, dict):
            for k, v in s.items():
                refuse_literal_name(function, str(k), f"an output of {function.__name__}")
                walk(v, str(k))
        elif isinstance(s, (tuple, list)):
            for v in s:
                walk(v, None)

    walk(structure, None)
    single = len(graph.outputs) == 1
    for position, label in sorted(named):
        current = graph.outputs[position]
        if not current.startswith("%") or graph.outputs.count(current) > 1:
            continue
        wanted = label if label and label.isidentifier() else ("out" if single else f"out{position}")
        for name in (wanted, f"{wanted}_out"):
            if name not in graph and name not in OPS and name not in RESERVED and not keyword.iskeyword(name):
                graph.rename(current, name)
                break


def _rebuild_outputs(structure: Any, results: tuple) -> Any:
    if isinstance(structure, _Out):
        return results[structure.position]
    if isinstance(structure, dict):
        return {k: _rebuild_outputs(v, results) for k, v in structure.items()}
    return type(structure)(_rebuild_outputs(s, results) for s in structure)


def jit_with(compiler: Callable) -> Callable:
    """The `jit` decorator, compiling with `compiler` (fusec.compile)."""

    def jit(function: Callable | None = None, *, backend: str = "c", tune: Any = None, policy: str = "auto",
            static_argnames: tuple[str, ...] | str = (), static_argnums: tuple[int, ...] | int = ()):
        """Trace `function` on its first call with each new argument signature, compile it, and run it.

        backend: "c" or "numpy", as fusec.compile; policy: the fusion policy; tune: the tuning
        database to take schedules from (fusec.compile's tune_db: a path, False for none, None for
        the default); static_argnames / static_argnums: arguments baked in as literals (the cache
        is per value). Use as @fusec.jit or @fusec.jit(backend="numpy").
        """
        names = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
        nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

        def wrap(f: Callable) -> Jitted:
            if not callable(f):
                raise FusecError(f"fusec.jit needs a function, got {type(f).__name__}")
            return Jitted(f, compiler, backend=backend, tune=tune, policy=policy,
                          static_argnames=names, static_argnums=nums)

        return wrap if function is None else wrap(function)

    return jit
