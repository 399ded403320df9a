"""Size overrides: `--set N=64` on the command line, `sizes={"N": 64}` from Python.

Both reach the parser as a mapping from dimension name to value. A mistake in one is reported in
the words the user wrote it in: the command line builds a `CommandLineSizes` (a dict that knows it
came from `--set`), every other caller passes a plain dict and reads about `sizes=`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fusec.errors import FusecError


class CommandLineSizes(dict):
    """Sizes given as `--set NAME=VALUE` words: errors about them quote the command line."""

    spelling = "--set"


def spell(sizes: Mapping[str, Any], key: str, value: Any) -> str:
    """One override as the user wrote it: `--set N=64`, or `sizes={'N': 64}`."""
    if getattr(sizes, "spelling", None) == "--set":
        return f"--set {key}={value}"
    return f"sizes={{{key!r}: {value!r}}}"


def override_dims(graph: str, declared: Mapping[str, int], sizes: Mapping[str, Any], max_dim: int) -> dict[str, int]:
    """The declared dimensions with the overrides applied; an unknown name or a value that is not a
    non-negative integer up to `max_dim` is a FusecError in the overrides' own spelling."""
    dims = dict(declared)
    for key, value in sizes.items():
        if key not in declared:
            known = ", ".join(declared) or "none"
            raise FusecError(f"{spell(sizes, key, value)}: graph '{graph}' has no dimension '{key}' (dimensions: {known})")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FusecError(f"{spell(sizes, key, value)}: a dimension must be a non-negative integer")
        if value > max_dim:
            raise FusecError(f"{spell(sizes, key, value)}: too large (a dimension is at most 2**48)")
        dims[key] = value
    return dims
