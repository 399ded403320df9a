"""The reference interpreter: the ground truth every compiled path is checked against.

It evaluates a graph node by node in topological order, one NumPy call per node (the op table's
reference implementation), and casts each result to the node's declared dtype. It is deliberately
unfused and unoptimised: every intermediate is a full array in memory.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from fusec.errors import FusecInputError
from fusec.inputs import check_memory
from fusec.ir.dtypes import dtype_of_numpy, promote
from fusec.ir.graph import Graph


def bind_inputs(graph: Graph, arrays: tuple[Any, ...], named: dict[str, Any]) -> tuple[Any, ...]:
    """The inputs in declared order, from positional values then keyword values by input name, as
    Python binds a call's arguments: unknown, missing and twice-given names are errors naming them."""
    names = graph.inputs
    if len(arrays) > len(names):
        raise FusecInputError(f"graph '{graph.name}' takes {len(names)} inputs ({', '.join(names)}), got {len(arrays)} positional")
    unknown = [k for k in named if k not in names]
    if unknown:
        listed = ", ".join(f"'{k}'" for k in unknown)
        raise FusecInputError(f"graph '{graph.name}' has no input {listed} (inputs: {', '.join(names) or 'none'})")
    twice = [k for k in names[: len(arrays)] if k in named]
    if twice:
        listed = ", ".join(f"'{k}'" for k in twice)
        raise FusecInputError(f"input {listed} is given both by position and by name")
    missing = [k for k in names[len(arrays) :] if k not in named]
    if missing:
        listed = ", ".join(f"'{k}'" for k in missing)
        raise FusecInputError(f"graph '{graph.name}' is missing input {listed} (inputs: {', '.join(names)})")
    return tuple(arrays) + tuple(named[k] for k in names[len(arrays) :])


def check_inputs(graph: Graph, arrays: tuple[Any, ...]) -> list[np.ndarray]:
    """Match arrays to the graph's inputs by position; return them as NumPy arrays."""
    if len(arrays) != len(graph.inputs):
        names = ", ".join(graph.inputs)
        raise FusecInputError(f"graph '{graph.name}' takes {len(graph.inputs)} inputs ({names}), got {len(arrays)}")
    out = []
    for name, value in zip(graph.inputs, arrays):
        want = graph.type_of(name)
        arr = np.asarray(value)
        if arr.dtype != want.dtype.numpy:
            try:
                got = dtype_of_numpy(arr.dtype).name
            except Exception:
                got = str(arr.dtype)
            raise FusecInputError(f"input '{name}' must be {want}, got an array of dtype {got}")
        if arr.shape != want.shape:
            raise FusecInputError(f"input '{name}' must be {want}, got shape [{', '.join(map(str, arr.shape))}]")
        out.append(arr)
    return out


def operands_in_compute_dtype(graph: Graph, node, args: list[np.ndarray]) -> list[np.ndarray]:
    """The operands converted to the dtype the op computes in, as a compiled kernel converts them.

    Ops of the family "computes_in_result_dtype" compute in their result dtype: fusec promotes int
    with float to that float (f32 @ i32 is f32); left alone, NumPy would compute f32 @ i32 in float64
    and round once more at the end. Comparisons compare in their operands' promoted dtype.
    """
    families = node.opdef.families
    if "computes_in_result_dtype" in families:
        want = node.type.dtype.numpy
        return [a.astype(want, copy=False) for a in args]
    if "comparison" in families:
        a, b = (graph.type_of(x).dtype for x in node.args)
        want = promote(a, b).numpy
        return [x.astype(want, copy=False) for x in args]
    if node.op == "where":
        want = node.type.dtype.numpy
        return [args[0]] + [x.astype(want, copy=False) for x in args[1:]]
    return args


def evaluate(graph: Graph, arrays: list[np.ndarray] | tuple, keep_all: bool = False) -> dict[str, np.ndarray]:
    """Evaluate every node; returns a name -> value map (of the outputs only, unless keep_all)."""
    check_memory(graph)  # refuse a value that cannot fit in memory before allocating anything
    values: dict[str, np.ndarray] = dict(zip(graph.inputs, check_inputs(graph, tuple(arrays))))
    remaining_uses = {n: len(graph.consumers(n)) for n in graph.nx.nodes}
    keep = set(graph.outputs)
    # NaN and inf are computed, not reported (errstate); nor is the NaN of a mean over an empty axis
    # (NumPy reports that one through the warnings module)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for node in graph.nodes():
            if node.op == "input":
                continue
            args = operands_in_compute_dtype(graph, node, [values[a] for a in node.args])
            result = node.opdef.numpy(args, node.attrs)
            values[node.name] = np.asarray(result).astype(node.type.dtype.numpy, copy=False)
            if not keep_all:  # free intermediates as soon as nothing needs them
                for a in set(node.args):
                    remaining_uses[a] -= 1
                    if remaining_uses[a] == 0 and a not in keep and a not in graph.inputs:
                        del values[a]
    if keep_all:
        return values
    return {o: values[o] for o in graph.outputs}


def interpret(graph: Graph, /, *arrays: Any, **named: Any) -> np.ndarray | tuple[np.ndarray, ...]:
    """Run the graph on arrays given in the order of its inputs, or by input name.

    Returns one array for a single output, or a tuple in the order of the outputs.
    """
    if named:
        arrays = bind_inputs(graph, arrays, named)
    values = evaluate(graph, arrays)
    # np.require, not np.ascontiguousarray, which turns a 0-d array into shape [1]
    results = tuple(np.require(values[o], requirements="C") for o in graph.outputs)
    return results[0] if len(results) == 1 else results
