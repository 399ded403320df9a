"""Rows of the op table: reductions, and the composite ops that expand into reductions and elementwise ops.

A reduction's NumPy spelling reduces a block over `{axis}` into `{out}` with keepdims; the C backend
writes reductions as accumulator loops (fusec/codegen/c_emit.py). Composites have their own NumPy
reference and an expansion into primitives, written against the Graph builder API
(g.add(op, *args, **attrs)), which the fusion planner uses.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fusec.ir.ops_registry import AttrSpec, OpDef
from fusec.ir.ops_rules import infer_logsumexp, last_axis_norm_rule, reduce_axes, reduce_rule, softmax_rule


def _np_reduce(fn: Callable) -> Callable:
    def run(a: list[np.ndarray], attrs: dict) -> np.ndarray:
        x = a[0]
        return fn(x, axis=reduce_axes(attrs["axis"], x.ndim), keepdims=attrs["keepdims"])

    return run


def reference_sum(x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """np.sum, but float32 accumulates in float64 and rounds once: np.sum along an axis that is not
    the innermost adds rows one by one in float32 (off by 4.6e-4 over 1e6 rows), and the ground
    truth must be at least as accurate as NumPy's pairwise sum."""
    axes = reduce_axes(axis, x.ndim)
    if x.dtype == np.float32:
        return np.sum(x, axis=axes, dtype=np.float64, keepdims=keepdims).astype(np.float32)
    return np.sum(x, axis=axes, keepdims=keepdims)


def reference_mean(x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """np.mean, with float32 accumulated in float64 as in reference_sum."""
    axes = reduce_axes(axis, x.ndim)
    if x.dtype == np.float32:
        return np.mean(x, axis=axes, dtype=np.float64, keepdims=keepdims).astype(np.float32)
    return np.mean(x, axis=axes, keepdims=keepdims)


def _np_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _np_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    d = x - np.max(x, axis=axis, keepdims=True)
    return d - np.log(np.sum(np.exp(d), axis=axis, keepdims=True))


def _np_logsumexp(x: np.ndarray, attrs: dict) -> np.ndarray:
    axes = reduce_axes(attrs["axis"], x.ndim)
    m = np.max(x, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype)  # an all -inf row gives -inf, not nan
    r = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return r if attrs["keepdims"] else np.squeeze(r, axis=axes)


def _np_layernorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = np.mean(x, axis=-1, keepdims=True)
    d = x - mean
    var = np.mean(d * d, axis=-1, keepdims=True)
    return d * (x.dtype.type(1) / np.sqrt(var + x.dtype.type(eps))) * gamma + beta


def _np_rmsnorm(x: np.ndarray, gamma: np.ndarray, eps: float) -> np.ndarray:
    ms = np.mean(x * x, axis=-1, keepdims=True)
    return x * (x.dtype.type(1) / np.sqrt(ms + x.dtype.type(eps))) * gamma


def _expand_softmax(g, args, attrs):
    (x,) = args
    axis = attrs["axis"]
    m = g.add("max", x, axis=axis, keepdims=True)
    e = g.add("exp", g.add("sub", x, m))
    return g.add("div", e, g.add("sum", e, axis=axis, keepdims=True))


def _expand_log_softmax(g, args, attrs):
    (x,) = args
    axis = attrs["axis"]
    d = g.add("sub", x, g.add("max", x, axis=axis, keepdims=True))
    lse = g.add("log", g.add("sum", g.add("exp", d), axis=axis, keepdims=True))
    return g.add("sub", d, lse)


def _expand_logsumexp(g, args, attrs):
    (x,) = args
    axis, keepdims = attrs["axis"], attrs["keepdims"]
    m = g.add("max", x, axis=axis, keepdims=True)
    # a finite max stays; an infinite or nan max becomes 0, so an all -inf row gives -inf, not nan
    safe = g.add("where", g.add("lt", g.add("abs", m), float("inf")), m, 0.0)
    r = g.add("add", g.add("log", g.add("sum", g.add("exp", g.add("sub", x, safe)), axis=axis, keepdims=True)), safe)
    if not keepdims:
        r = g.add("squeeze", r, axis=axis)
    return r


def _expand_layernorm(g, args, attrs):
    x, gamma, beta = args
    mean = g.add("mean", x, axis=-1, keepdims=True)
    d = g.add("sub", x, mean)
    var = g.add("mean", g.add("mul", d, d), axis=-1, keepdims=True)
    inv = g.add("rsqrt", g.add("add", var, attrs["eps"]))
    return g.add("add", g.add("mul", g.add("mul", d, inv), gamma), beta)


def _expand_rmsnorm(g, args, attrs):
    x, gamma = args
    ms = g.add("mean", g.add("mul", x, x), axis=-1, keepdims=True)
    inv = g.add("rsqrt", g.add("add", ms, attrs["eps"]))
    return g.add("mul", g.add("mul", x, inv), gamma)


_AXIS_KEEP = (AttrSpec("axis", "axes", None), AttrSpec("keepdims", "bool", False))


def _reduction(name: str, fn, numpy_name: str | None, reference: Callable | None = None) -> OpDef:
    code = None if numpy_name is None else f"np.{numpy_name}({{0}}, axis={{axis}}, keepdims=True, out={{out}})"
    run = _np_reduce(fn) if reference is None else (lambda a, attrs: reference(a[0], attrs["axis"], attrs["keepdims"]))
    return OpDef(name, "reduce", 1, reduce_rule(name), run, attrs=_AXIS_KEEP, numpy_code=code)


ROWS = (
    _reduction("sum", np.sum, "sum", reference_sum),
    _reduction("mean", np.mean, None, reference_mean),  # lowered to a sum and a division
    _reduction("max", np.max, "max"),
    _reduction("min", np.min, "min"),
    _reduction("prod", np.prod, "prod"),
    OpDef("softmax", "reduce", 1, softmax_rule("softmax"), lambda a, attrs: _np_softmax(a[0], attrs["axis"]),
          attrs=(AttrSpec("axis", "int", -1),), expand=_expand_softmax, flops=14),
    OpDef("log_softmax", "reduce", 1, softmax_rule("log_softmax"),
          lambda a, attrs: _np_log_softmax(a[0], attrs["axis"]),
          attrs=(AttrSpec("axis", "int", -1),), expand=_expand_log_softmax, flops=14),
    OpDef("logsumexp", "reduce", 1, infer_logsumexp, lambda a, attrs: _np_logsumexp(a[0], attrs),
          attrs=_AXIS_KEEP, expand=_expand_logsumexp, flops=14),
    OpDef("layernorm", "reduce", 3, last_axis_norm_rule("layernorm", 2),
          lambda a, attrs: _np_layernorm(a[0], a[1], a[2], attrs["eps"]),
          attrs=(AttrSpec("eps", "float", 1e-5),), expand=_expand_layernorm, flops=10),
    OpDef("rmsnorm", "reduce", 2, last_axis_norm_rule("rmsnorm", 1), lambda a, attrs: _np_rmsnorm(a[0], a[1], attrs["eps"]),
          attrs=(AttrSpec("eps", "float", 1e-6),), expand=_expand_rmsnorm, flops=8),
)  # fmt: skip
