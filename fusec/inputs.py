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


def check_memory(graph: Graph, names: list[str] | None = None, limit: int | None = None) -> None:
    """Refuse, before allocating anything, a graph whose buffers cannot fit in memory.

    `names` are the values that will be materialised together (default: every value, as the
    interpreter does, of which the inputs and outputs live at once); no single one, and not all of
    them together, may exceed `limit`.
    """
    limit = MAX_INPUT_BYTES if limit is None else limit
    together = list(dict.fromkeys(graph.inputs + graph.outputs)) if names is None else list(names)
    names = list(graph.nx.nodes) if names is None else names
    for n in names:
        t = graph.type_of(n)
        if t.nbytes > limit:
            node = graph.node(n)
            what = f"input '{n}'" if node.op == "input" else f"the value of {node.op}" + ("" if n.startswith("%") else f" '{n}'")
            raise FusecInputError(
                f"{what} is {t} and would take {_gib(t.nbytes)} (limit {_gib(limit)}); {SHRINK}",
                node.loc,
            )
    total = sum(graph.type_of(n).nbytes for n in together)
    if total > limit:
        raise FusecInputError(
            f"the inputs and outputs of '{graph.name}' together would take {_gib(total)} (limit {_gib(limit)}); {SHRINK}"
        )


# check_memory runs under the CLI and the Python API alike, so the hint names both spellings.
SHRINK = "shrink the dimensions (--set NAME=VALUE on the command line, sizes={...} from Python)"


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.3g} GiB"


def random_inputs(graph: Graph, seed: int = 0) -> list[np.ndarray]:
    check_memory(graph, graph.inputs)  # one input too large: name it and point at its declaration
    total = sum(graph.type_of(n).nbytes for n in graph.inputs)
    if total > MAX_INPUT_BYTES:
        raise FusecInputError(
            f"the inputs of '{graph.name}' would take {total / 2**30:.1f} GiB (limit {MAX_INPUT_BYTES / 2**30:.0f} GiB); {SHRINK}"
        )
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise FusecInputError(f"the seed must be a non-negative integer, got {seed!r}")
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


NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip


def load_npz(graph: Graph, path: str | Path) -> list[np.ndarray]:
    """Inputs from an .npz file whose array names are the graph's input names."""
    not_npz = f"{path}: not a valid .npz file of arrays"
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        # np.load falls back to unpickling whatever is neither a zip nor an .npy, and then blames
        # "pickled (object) data" for what is simply junk: look at the magic bytes first.
        if magic.startswith(NPY_MAGIC):
            raise FusecInputError(f"{path}: a single .npy array; fusec needs an .npz with one array per input name")
        if not magic.startswith(ZIP_MAGIC):
            raise FusecInputError(f"{not_npz} (it is not a zip archive, as np.savez writes)")
        with np.load(path, allow_pickle=False) as data:
            missing = [n for n in graph.inputs if n not in data.files]
            if missing:
                raise FusecInputError(f"{path}: no array named {', '.join(missing)} (it holds: {', '.join(data.files) or 'nothing'})")
            arrays = []
            for n in graph.inputs:
                try:
                    arrays.append(data[n])
                except ValueError:  # allow_pickle=False refuses object arrays
                    raise FusecInputError(f"{path}: array '{n}' holds Python objects; fusec reads numeric and bool arrays only") from None
            return arrays
    except FileNotFoundError:
        raise FusecError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FusecError(f"{path}: is a directory, not an .npz file") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise FusecError(f"{not_npz} ({err})") from None


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
