"""How close a compiled result must be to the interpreter's, and how far off it is.

The policy (docs/tolerances.md explains the numbers):

* integers and bools must match exactly;
* NaN must appear exactly where the reference has NaN, and +-inf exactly where it has the same inf;
* finite floats must satisfy |actual - expected| <= atol + rtol * |expected|, with rtol and atol per
  dtype. f32's rtol of 1e-4 covers what a fused kernel legitimately changes: reductions summed in
  another order (error grows with sqrt(n) * eps) and the C backend's polynomial exp/tanh/erf (a few
  ulps). Approx-class rewrites (reassociation) are held to the same bound;
* a graph output is judged by the precision it was *computed* in (`output_tolerance`): an f64
  output that went through an f32 computation (where(c, exp(x_f32), y_f64)) can only be as exact as
  f32, so it gets f32's rtol and atol.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RTOL = {"f32": 1e-4, "f64": 1e-9}
ATOL = {"f32": 1e-5, "f64": 1e-12}


def working_precision(graph, name: str) -> str | None:
    """The narrowest float precision ("f32" or "f64") any op rounded in on the way to `name`.

    Only ops that round count: inputs and constants are exact, and so are layout ops (they move
    values) and widening an f32 to f64. None if no float arithmetic feeds `name`.
    """
    import networkx as nx

    found = None
    for n in nx.ancestors(graph.nx, name) | {name}:
        node = graph.node(n)
        if node.kind in ("leaf", "layout", "broadcast") or not node.type.dtype.is_float:
            continue
        prec = node.type.dtype.name
        if prec == "f32":
            return "f32"
        found = prec
    return found


def output_tolerance(graph, name: str) -> tuple[float | None, float | None]:
    """(rtol, atol) for comparing graph value `name`: its dtype's, or f32's if it went through f32."""
    if not graph.type_of(name).dtype.is_float:
        return None, None
    prec = working_precision(graph, name) or graph.type_of(name).dtype.name
    return RTOL[prec], ATOL[prec]


def compare_output(graph, name: str, actual: np.ndarray, expected: np.ndarray) -> Mismatch | None:
    """compare() with the tolerance of the precision `name` was computed in."""
    rtol, atol = output_tolerance(graph, name)
    return compare(actual, expected, rtol=rtol, atol=atol)


@dataclass(frozen=True)
class Mismatch:
    """Why two arrays differ beyond the tolerance: the worst element and how far it is off."""

    reason: str
    index: tuple[int, ...] | None = None
    actual: float | None = None
    expected: float | None = None
    max_abs_error: float = float("nan")
    max_ulp_error: float = float("nan")

    def __str__(self) -> str:
        where = f" at index {list(self.index)}" if self.index is not None else ""
        vals = f": got {self.actual!r}, expected {self.expected!r}" if self.actual is not None else ""
        return f"{self.reason}{where}{vals} (max abs error {self.max_abs_error:.3g}, {self.max_ulp_error:.3g} ulps)"


def ulp_distance(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Distance in units in the last place, by ordering the floats' bit patterns as integers."""
    if actual.dtype == np.float32:
        ints, signed = np.int32, np.int64
    else:
        ints, signed = np.int64, np.float64

    def ordered(x: np.ndarray) -> np.ndarray:
        i = x.view(ints).astype(signed)
        return np.where(i < 0, np.iinfo(ints).min - i, i)

    # np.require keeps 0-d arrays 0-d (np.ascontiguousarray would make them shape [1])
    return np.abs(ordered(np.require(actual, requirements="C")) - ordered(np.require(expected, requirements="C"))).astype(np.float64)


def compare(actual: np.ndarray, expected: np.ndarray, rtol: float | None = None, atol: float | None = None) -> Mismatch | None:
    """None if `actual` matches `expected` under the policy, else the worst mismatch."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        return Mismatch(f"shape {list(actual.shape)} differs from the expected {list(expected.shape)}")
    if actual.dtype != expected.dtype:
        return Mismatch(f"dtype {actual.dtype} differs from the expected {expected.dtype}")
    if actual.size == 0:
        return None
    if expected.dtype.kind != "f":
        bad = actual != expected
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return Mismatch("values differ", idx, actual[idx].item(), expected[idx].item(), float("nan"), float("nan"))
        return None
    name = "f32" if expected.dtype == np.float32 else "f64"
    rtol = RTOL[name] if rtol is None else rtol
    atol = ATOL[name] if atol is None else atol
    a64 = actual.astype(np.float64)
    e64 = expected.astype(np.float64)
    nan_a, nan_e = np.isnan(a64), np.isnan(e64)
    inf_e = np.isinf(e64)
    special_bad = (nan_a != nan_e) | (inf_e & (a64 != e64)) | (np.isinf(a64) & ~inf_e & ~nan_e)
    finite = np.isfinite(e64) & np.isfinite(a64)
    with np.errstate(all="ignore"):
        err = np.where(finite, np.abs(a64 - e64), 0.0)
        bad = special_bad | (err > atol + rtol * np.abs(e64))
        ulps = np.where(finite, ulp_distance(actual, expected), 0.0)
    if not bad.any():
        return None
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.where(bad, np.where(special_bad, np.inf, err), -1.0))), bad.shape))
    return Mismatch(
        "values differ beyond the tolerance" if not special_bad[idx] else "NaN or inf in a different place",
        idx,
        actual[idx].item(),
        expected[idx].item(),
        float(err.max()),
        float(ulps.max()),
    )
