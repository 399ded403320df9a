"""Arguments and helpers shared by several commands.

NumPy, the frontend and the compiler are imported by the helpers that use them, not here: every
command imports this module, and `fusec fmt` or `fusec check` should not pay for what they never run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from fusec.errors import FusecError
from fusec.frontend.sizes import CommandLineSizes
from fusec.runtime.files import new_file_mode

if TYPE_CHECKING:
    import numpy as np

    from fusec.ir.graph import Graph
    from fusec.pipeline import Stages


def parse_sizes(items: list[str] | None) -> CommandLineSizes:
    """The `--set NAME=VALUE` words as sizes that report their mistakes as `--set ...`."""
    sizes = CommandLineSizes()
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise FusecError(f"--set expects NAME=VALUE, got '{item}'")
        name = name.strip()
        try:
            number = int(value)
        except ValueError:
            raise FusecError(f"--set {item}: '{value}' is not an integer") from None
        if name in sizes:
            raise FusecError(f"--set {name} is given twice ({sizes[name]} and {number})")
        sizes[name] = number
    return sizes


def add_file_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a .fg source file")
    add_sizes_arg(p)


def add_sizes_arg(p: argparse.ArgumentParser) -> None:
    """`--set NAME=VALUE` (repeatable); parse_sizes turns the list into a dict."""
    p.add_argument(
        "--set",
        dest="sizes",
        action="append",
        metavar="NAME=VALUE",
        help="override a named dimension, e.g. --set N=64 (repeatable)",
    )


def add_strict_arg(p: argparse.ArgumentParser) -> None:
    """`--strict`: the backend asked for, or an error; never the NumPy fallback."""
    p.add_argument(
        "--strict",
        action="store_true",
        help="with --backend c: exit 2 when there is no usable C compiler, instead of warning and using the NumPy backend",
    )


def require_backend(args: argparse.Namespace) -> None:
    """With --strict and --backend c, a missing or broken C compiler is an error, not a fallback."""
    if getattr(args, "strict", False) and getattr(args, "backend", None) == "c":
        from fusec.runtime.build import NoCompilerError, find_compiler

        try:
            find_compiler()
        except NoCompilerError as err:
            raise FusecError(f"{err.message} (--strict: not falling back to the NumPy backend)") from None


def load_graph(args: argparse.Namespace) -> Graph:
    from fusec.frontend import load

    return load(args.file, sizes=parse_sizes(args.sizes))


def run_pipeline(args: argparse.Namespace, stop_after: str, **options) -> Stages:
    """The compiler's one pipeline (fusec.pipeline.compile_stages) on the command's FILE and --set
    sizes, up to `stop_after`: every command reports on the program that is built."""
    from fusec.pipeline import compile_stages

    return compile_stages(args.file, sizes=parse_sizes(args.sizes), stop_after=stop_after, **options)


def summarize(name: str, a: np.ndarray) -> str:
    """One line per array: shape, dtype and summary statistics."""
    import numpy as np

    from fusec.ir.dtypes import dtype_of_numpy

    shape = "[" + ", ".join(map(str, a.shape)) + "]"
    head = f"{name}: {dtype_of_numpy(a.dtype).name}{shape}"
    if a.size == 0:
        return f"{head}  (empty)"
    if a.dtype == np.bool_:
        return f"{head}  true={int(a.sum())} false={int(a.size - a.sum())}"
    f = a.astype(np.float64)
    finite = np.isfinite(f)
    stats = f[finite]
    extra = ""
    if not finite.all():
        extra = f" nan={int(np.isnan(f).sum())} inf={int(np.isinf(f).sum())}"
    if stats.size == 0:
        return f"{head}  (no finite values){extra}"
    return (
        f"{head}  min={stats.min():.6g} max={stats.max():.6g} mean={stats.mean():.6g} "
        f"std={stats.std():.6g}{extra}"
    )


def write_atomic(path: str | Path, text: str) -> None:
    """Write an output file through a temporary file in the same directory and a rename: a reader
    sees the old file or the new one, never half of one. mkstemp makes its file 0600; the result gets
    the mode any other new file gets (0666 less the umask)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or Path("."))
    except OSError as err:
        raise FusecError(f"{path}: cannot write: {err.strerror}") from None
    try:
        os.fchmod(fd, new_file_mode())
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise FusecError(f"{path}: cannot write: {err.strerror}") from None
