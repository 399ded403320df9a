"""Triangular masks, recognised in the graph: which parts of a matmul need not be computed.

A causal mask is built from indices, `iota(shape=[S, S]) >= iota(shape=[S, S], axis=1)`, so the
compiler can know exactly which elements it keeps. This module recognises such masks as a `Band`
over the last two axes (row i, column j): the elements with `lo <= i - j <= hi` (either bound may
be open). Two facts about a matmul follow from the graph:

* `needed_band(graph, name)`: the elements of a value that anything reads. A value read only as
  the kept branch of `where(mask, value, -inf)` is needed inside the mask's band and nowhere
  else: the matmul may leave the rest uncomputed (BLAS skips those column blocks).
* `support_band(graph, name)`: the elements that can be nonzero. The softmax of
  `where(mask, x, -inf)` is exactly 0 outside the band (exp(-inf - max) = 0), so `p @ v` need not
  read those columns of p. A row whose max is -inf or NaN is NaN everywhere; reading any one of its
  columns keeps it NaN, so a caller always reads at least one column.

Both answers are None when the graph does not say so; nothing is ever assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fusec.ir.graph import Graph

_EXACT_FLOAT_INDEX = 2**24  # float iotas below this compare exactly (f32 has 24 significand bits)


@dataclass(frozen=True)
class Band:
    """The elements (..., i, j) with lo <= i - j <= hi over the last two axes (None: no bound)."""

    lo: int | None = None
    hi: int | None = None

    def intersect(self, other: Band) -> Band:
        lo = [b for b in (self.lo, other.lo) if b is not None]
        hi = [b for b in (self.hi, other.hi) if b is not None]
        return Band(max(lo) if lo else None, min(hi) if hi else None)

    def hull(self, other: Band) -> Band:
        """The smallest band holding both (a superset of their union)."""
        lo = None if self.lo is None or other.lo is None else min(self.lo, other.lo)
        hi = None if self.hi is None or other.hi is None else max(self.hi, other.hi)
        return Band(lo, hi)

    def complement(self) -> Band | None:
        """The elements outside the band, when that is a band itself (one bound open)."""
        if self.lo is not None and self.hi is None:
            return Band(None, self.lo - 1)
        if self.hi is not None and self.lo is None:
            return Band(self.hi + 1, None)
        return None

    def elements(self, rows: int, cols: int) -> np.ndarray:
        """The band as a rows x cols boolean array: True at (i, j) with lo <= i - j <= hi."""
        d = np.arange(rows)[:, None] - np.arange(cols)[None, :]
        inside = np.ones(d.shape, dtype=bool)
        if self.lo is not None:
            inside &= d >= self.lo
        if self.hi is not None:
            inside &= d <= self.hi
        return inside

    @property
    def everything(self) -> bool:
        return self.lo is None and self.hi is None

    def cols(self, i0: int, i1: int, ncols: int) -> tuple[int, int]:
        """[j0, j1): the columns in the band for some row of [i0, i1) (j0 >= j1: none)."""
        j1 = ncols if self.lo is None else min(ncols, i1 - 1 - self.lo + 1)
        j0 = 0 if self.hi is None else max(0, i0 - self.hi)
        return j0, max(j0, j1)

    def fraction(self, nrows: int, ncols: int, block: int) -> float:
        """Share of an nrows x ncols matrix that blocks of `block` rows cover (column ranges)."""
        covered = 0
        for i0 in range(0, nrows, block):
            j0, j1 = self.cols(i0, min(nrows, i0 + block), ncols)
            covered += (min(nrows, i0 + block) - i0) * (j1 - j0)
        return covered / max(1, nrows * ncols)

    def __str__(self) -> str:
        parts = ([f"{self.lo} <= i - j"] if self.lo is not None else []) + (
            [f"i - j <= {self.hi}"] if self.hi is not None else [])
        return " and ".join(parts) or "everything"


# ------------------------------------------------------------------------------ recognising masks


def _index_form(graph: Graph, name: str) -> tuple[int, int, int] | None:
    """(a, b, c) when the value at (..., i, j) is exactly a*i + b*j + c, from iotas and constants."""
    node = graph.node(name)
    if node.op == "const":
        value = node.attrs["value"]
        if isinstance(value, bool) or not float(value).is_integer() or abs(value) >= _EXACT_FLOAT_INDEX:
            return None
        return 0, 0, int(value)
    if node.op == "iota":
        shape = tuple(node.attrs["shape"])
        dtype = node.attrs["dtype"]
        if not dtype.is_int and not (dtype.is_float and dtype.itemsize >= 4 and max(shape, default=0) < _EXACT_FLOAT_INDEX):
            return None
        if dtype.is_int and max(shape, default=0) >= 2 ** (8 * dtype.itemsize - 1):
            return None
        from_end = len(shape) - (node.attrs["axis"] % len(shape))
        if from_end == 2:
            return 1, 0, 0
        if from_end == 1:
            return 0, 1, 0
        return None  # an iota over a batch axis: not a band of the last two axes
    if node.op in ("add", "sub") and len(node.args) == 2:
        x, y = (_index_form(graph, a) for a in node.args)
        if x is None or y is None:
            return None
        s = 1 if node.op == "add" else -1
        return x[0] + s * y[0], x[1] + s * y[1], x[2] + s * y[2]
    return None


def band_of(graph: Graph, name: str) -> Band | None:
    """The band where a boolean value is true, when it is a comparison of i - j with a constant."""
    node = graph.node(name)
    if node.op == "logical_and":
        parts = [band_of(graph, a) for a in node.args]
        return None if None in parts else parts[0].intersect(parts[1])
    if node.op == "logical_not":
        inner = band_of(graph, node.args[0])
        return inner.complement() if inner is not None else None
    if node.op not in ("ge", "gt", "le", "lt") or len(graph.type_of(name).shape) < 2:
        return None
    x, y = (_index_form(graph, a) for a in node.args)
    if x is None or y is None:
        return None
    a, b, c = x[0] - y[0], x[1] - y[1], x[2] - y[2]  # lhs - rhs = a*i + b*j + c
    if node.op in ("le", "lt"):
        a, b, c = -a, -b, -c  # now: a*i + b*j + c >= 0 (ge, le) or > 0 (gt, lt)
    strict = node.op in ("gt", "lt")
    if (a, b) == (1, -1):  # i - j >= -c (+1 if strict)
        return Band(lo=-c + strict)
    if (a, b) == (-1, 1):  # i - j <= c (-1 if strict)
        return Band(hi=c - strict)
    return None


def _aligned_mask(graph: Graph, mask: str, value: str) -> Band | None:
    """The mask's band, if its last two axes are the value's last two (not broadcast along them)."""
    mshape, vshape = graph.type_of(mask).shape, graph.type_of(value).shape
    if len(mshape) < 2 or len(vshape) < 2 or mshape[-2:] != vshape[-2:]:
        return None
    return band_of(graph, mask)


# --------------------------------------------------------------------------- what a matmul can skip


def needed_band(graph: Graph, name: str, _memo: dict | None = None) -> Band | None:
    """A band outside which no one reads `name` (None: read everywhere, or not known)."""
    memo = {} if _memo is None else _memo
    if name in memo:
        return memo[name]
    memo[name] = None  # the graph is acyclic; this only guards against surprises
    result: Band | None = None
    shape = graph.type_of(name).shape
    if name in graph.outputs or len(shape) < 2:
        return None
    consumers = graph.consumers(name)
    if not consumers:
        return None
    for c in consumers:
        use = _needed_by(graph, name, c, memo)
        if use is None:
            return None
        result = use if result is None else result.hull(use)
    memo[name] = result
    return result


def read_elements(graph: Graph, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """Where anything reads the value `name`, as a boolean array of its shape (None: everywhere). A
    matmul whose result is read only inside a causal mask's band computes only that band; checks of
    one kernel's outputs (the tuner's, bisection's) compare these elements and no others."""
    band = needed_band(graph, name)
    if band is None or band.everything or len(shape) < 2:
        return None
    return np.broadcast_to(band.elements(shape[-2], shape[-1]), shape)


def _needed_by(graph: Graph, name: str, consumer: str, memo: dict) -> Band | None:
    node = graph.node(consumer)
    if node.kind != "elementwise" or graph.type_of(consumer).shape != graph.type_of(name).shape:
        return None
    after = needed_band(graph, consumer, memo)
    if node.op == "where" and node.args.count(name) == 1 and node.args[0] != name:
        band = _aligned_mask(graph, node.args[0], consumer)
        if band is not None and node.args[2] == name:
            band = band.complement()
        if band is not None:
            return band if after is None else band.intersect(after)
    return after


def support_band(graph: Graph, name: str) -> Band | None:
    """A band outside which `name` is exactly 0 (or its row is NaN throughout): softmax of a masked row."""
    node = graph.node(name)
    if node.op == "div":
        e, s = node.args
        if _is_row_reduction(graph, s, "sum", e):
            return support_band(graph, e)
        return None
    if node.op != "exp":
        return None
    d = graph.node(node.args[0])
    if d.op != "sub":
        return None
    w, m = d.args
    if not _is_row_reduction(graph, m, "max", w):
        return None
    masked = graph.node(w)
    if masked.op != "where" or graph.type_of(w).shape != graph.type_of(name).shape:
        return None
    cond, x, y = masked.args
    band = _aligned_mask(graph, cond, w)
    if band is None:
        return None
    if _is_neg_inf(graph, y) and not _is_neg_inf(graph, x):
        return band
    if _is_neg_inf(graph, x) and not _is_neg_inf(graph, y):
        return band.complement()
    return None


def _is_row_reduction(graph: Graph, name: str, op: str, of: str) -> bool:
    node = graph.node(name)
    if node.op != op or list(node.args) != [of]:
        return False
    rank = len(graph.type_of(of).shape)
    axis = node.attrs.get("axis")
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return rank >= 2 and [a % rank for a in axes if a is not None] == [rank - 1] and node.attrs.get("keepdims", False)


def _is_neg_inf(graph: Graph, name: str) -> bool:
    node = graph.node(name)
    return node.op == "const" and not isinstance(node.attrs["value"], bool) and node.attrs["value"] == -math.inf


@dataclass(frozen=True)
class MatmulMasks:
    """What the graph says a matmul may skip, over its result (i, j) and its left operand (i, k)."""

    needed: Band | None = None  # the result is read only inside this band
    support: Band | None = None  # the left operand is zero outside this band

    def __bool__(self) -> bool:
        return self.needed is not None or self.support is not None


def matmul_masks(graph: Graph, matmul: str) -> MatmulMasks:
    """The bands of a matmul node of the graph (both None when nothing may be skipped)."""
    node = graph.node(matmul)
    a, b = node.args
    if len(graph.type_of(a).shape) < 2 or len(graph.type_of(b).shape) < 2:
        return MatmulMasks()
    needed = needed_band(graph, matmul)
    support = support_band(graph, a)
    return MatmulMasks(None if needed is None or needed.everything else needed,
                       None if support is None or support.everything else support)
