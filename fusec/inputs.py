"""Seeded random inputs for a graph, and .npz input/output files.

Floats are drawn from the input's declared range (`x: f32[N] in [0, 1]`) or else from a standard
normal; integers from [-10, 10] (or the range); bools are fair coin flips.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from fusec.errors import FusecError, FusecInputError
from fusec.ir.graph import Graph

# Refuse to allocate more than this for inputs before even trying (a typo like N=10000000).
MAX_INPUT_BYTES = 8 * 2**30


def random_inputs(graph: Graph, seed: int = 0) -> list[np.ndarray]:
    total = sum(graph.type_of(n).nbytes for n in graph.inputs)
    if total > MAX_INPUT_BYTES:
        raise FusecInputError(
            f"the inputs of '{graph.name}' would take {total / 2**30:.1f} GiB (limit {MAX_INPUT_BYTES / 2**30:.0f} GiB); use --set to shrink the dimensions"
        )
    rng = np.random.default_rng(seed)
    arrays = []
    for name in graph.inputs:
        t = graph.type_of(name)
        low_high = graph.input_ranges.get(name)
        if t.dtype.is_float:
            if low_high:
                a = rng.uniform(low_high[0], low_high[1], size=t.shape)
            else:
                a = rng.standard_normal(size=t.shape, dtype=np.float32 if t.dtype.name == "f32" else np.float64)
        elif t.dtype.is_int:
            low, high = low_high or (-10, 10)
            a = rng.integers(int(low), int(high), size=t.shape, endpoint=True)
        else:
            a = rng.random(size=t.shape) < 0.5
        # np.require, not np.ascontiguousarray, which turns a 0-d array into shape [1]
        arrays.append(np.require(a, dtype=t.dtype.numpy, requirements="C"))
    return arrays


def load_npz(graph: Graph, path: str | Path) -> list[np.ndarray]:
    """Inputs from an .npz file whose array names are the graph's input names."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [n for n in graph.inputs if n not in data.files]
            if missing:
                raise FusecInputError(f"{path}: no array named {', '.join(missing)} (it holds: {', '.join(data.files) or 'nothing'})")
            return [data[n] for n in graph.inputs]
    except FileNotFoundError:
        raise FusecError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise FusecError(f"{path}: not a readable .npz file ({err})") from None


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically: a temp file then a rename, so a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    try:
        np.savez(tmp, **arrays)
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise FusecError(f"{path}: cannot write: {err.strerror}") from None
