"""Edge families for the differential fuzzer (issue 10): graphs at the edges of the language, written
as .fg source so they go through the whole frontend (with its locations) like a user's file.

- "empty":  a zero-size axis under every op kind: elementwise, broadcasting, `where`, reductions,
            the composites (softmax, log_softmax, logsumexp, layernorm, rmsnorm), layout ops and
            matmul (an empty inner dimension sums nothing). An op that takes a max over an empty
            axis (max, min, softmax, log_softmax, logsumexp) must be refused with a located error;
            every other case must compute what the interpreter computes.
- "names":  inputs, values and outputs named like keywords, literals (`inf`, `nan`, `true`), op
            names (`exp`, `sum`) and C identifiers and keywords (`int`, `float`, `restrict`,
            `main`). A reserved name must be refused with a located error; any other must keep its
            meaning (no literal substituted), round-trip through the printer and compile.
- "dtypes": inputs of every dtype (bool, i32, i64, f32, f64) feeding `where` and the reductions.

`edge_case(family, seed)` makes one case; `check_case(case, backends, check)` says how it went.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fusec.errors import FusecError
from fusec.frontend import parse
from fusec.interp import evaluate
from fusec.ir.printer import print_graph
from fusec.testing.arrays import random_arrays

DTYPE_NAMES = ("bool", "i32", "i64", "f32", "f64")
FLOATS = ("f32", "f64")
# names the language reserves: a graph using one must be told so, at the name
RESERVED_NAMES = ("inf", "nan", "true", "false")
# words of the statement syntax: the language may take them as names (then they must work) or refuse them
KEYWORD_NAMES = ("graph", "return", "assert", "kernels", "let", "in")
# names that mean something elsewhere (an op, a C keyword or library name) but are ordinary here
ORDINARY_NAMES = ("exp", "sum", "max", "where", "int", "float", "double", "restrict", "main", "static", "void",
                  "for", "if", "while", "const", "char", "long", "signed", "inline", "sizeof", "NULL", "i", "n",
                  "out", "in0", "x")


@dataclass(frozen=True)
class EdgeCase:
    family: str
    seed: int
    source: str
    refuse: bool | None  # True: must be refused (located); False: must compile; None: either (if located)
    out_shapes: tuple[tuple[int, ...], ...] | None = None  # what the outputs must be, when known


def _empty_case(seed: int) -> EdgeCase:
    r = random.Random(seed)
    n, d = r.choice([(0, 4), (3, 0), (0, 0), (2, 0), (0, 1)])
    dt = r.choice(FLOATS)
    head = f"graph e<N={n}, D={d}>(x: {dt}[N, D]"
    kind = r.choice(["unary", "binary", "where", "reduce", "composite", "norm", "layout", "matmul"])
    extra, refuse = "", False
    if kind == "unary":
        body = f"return {r.choice(['exp', 'neg', 'abs', 'sqrt', 'tanh', 'sigmoid'])}(x) * 2.0"
    elif kind == "binary":
        extra = f", y: {dt}[D]"
        body = f"return {r.choice(['x + y', 'x * y', 'maximum(x, y)', 'x / (y * y + 1.0)'])}"
    elif kind == "where":
        body = "return where(x > 0.0, x, 0.0 - x)"
    elif kind == "reduce":
        op = r.choice(["sum", "mean", "max", "min", "prod"])
        axis = r.choice([0, 1, -1, "[0, 1]"])
        keep = r.choice(["true", "false"])
        axes = (0, 1) if axis == "[0, 1]" else ((axis % 2),)
        refuse = op in ("max", "min") and any((n, d)[a] == 0 for a in axes)
        body = f"return {op}(x, axis={axis}, keepdims={keep})"
    elif kind == "composite":
        op = r.choice(["softmax", "log_softmax", "logsumexp"])
        axis = r.choice([0, 1, -1])
        refuse = (n, d)[axis % 2] == 0
        keep = f", keepdims={r.choice(['true', 'false'])}" if op == "logsumexp" else ""
        body = f"return {op}(x, axis={axis}{keep})"
    elif kind == "norm":
        op = r.choice(["layernorm", "rmsnorm"])
        extra = f", gamma: {dt}[D]" + (f", beta: {dt}[D]" if op == "layernorm" else "")
        body = f"return {op}(x, gamma{', beta' if op == 'layernorm' else ''})"
    elif kind == "layout":
        body = "return " + r.choice([
            "transpose(x) + 1.0", "reshape(x, shape=[-1]) * 3.0", "slice(x, axis=1, start=0, stop=2)",
            "concat(x, x, axis=0)", "expand_dims(x, axis=0)", "broadcast_to(x, shape=[2, N, D])",
            "exp(slice(x, axis=0, step=-1))", "slice(x, axis=1, step=-2) * 2.0",
        ])
    else:  # matmul: an empty inner dimension gives zeros, an empty outer one an empty result
        m = r.choice([0, 3])
        extra = f", w: {dt}[D, {m}]"
        body = "return x @ w"
    return EdgeCase("empty", seed, f"{head}{extra}) {{\n  {body}\n}}\n", refuse)


def _names_case(seed: int) -> EdgeCase:
    r = random.Random(seed)
    kind = r.choice(["reserved", "keyword", "ordinary", "ordinary"])
    name = r.choice({"reserved": RESERVED_NAMES, "keyword": KEYWORD_NAMES, "ordinary": ORDINARY_NAMES}[kind])
    n = r.choice([1, 3, 5])
    # where the name goes: the input, an intermediate value, the returned value, or a dimension
    place = r.choice(["input", "value", "output", "dim"])
    inp, val, out, dim = "a", "t", "r", "N"
    if place == "input":
        inp = name
    elif place == "value":
        val = name
    elif place == "output":
        out = name
    else:
        dim = name
    if len({inp, val, out, dim}) < 4:  # the chosen name is one of the defaults: keep them distinct
        inp, val, out, dim = (x if x == name else x + "_" for x in (inp, val, out, dim))
    source = (f"graph names<{dim}={n}>({inp}: f32[{dim}], b: f32[{dim}]) {{\n"
              f"  {val} = exp({inp}) * 2.0 + b\n"
              f"  return {out} = sum({val}, axis=0, keepdims=true) * {val}\n"
              "}\n")
    refuse = {"reserved": True, "keyword": None, "ordinary": False}[kind]
    return EdgeCase("names", seed, source, refuse, ((n,),))


def _dtypes_case(seed: int) -> EdgeCase:
    r = random.Random(seed)
    n = r.choice([1, 3, 5, 8])
    ta, tb = r.choice(DTYPE_NAMES), r.choice(DTYPE_NAMES)
    cond = r.choice(["c", "a > b", "a == b", "c and (a < b)"])
    op = r.choice(["sum", "mean", "max", "min", "prod"])
    axis = r.choice(["", ", axis=0", ", axis=-1, keepdims=true"])
    direct = r.choice(["a", "b", "c"])
    source = (f"graph dt<N={n}>(c: bool[N], a: {ta}[N], b: {tb}[N]) {{\n"
              f"  w = where({cond}, a, b)\n"
              f"  return w, {op}(w{axis}), {r.choice(['sum', 'mean', 'max', 'min'])}({direct})\n"
              "}\n")
    # a type rule may refuse a combination (a bool `and` of non-bools, say), but only with a location
    return EdgeCase("dtypes", seed, source, None)


FAMILIES = {"empty": _empty_case, "names": _names_case, "dtypes": _dtypes_case}


def edge_case(family: str, seed: int) -> EdgeCase:
    return FAMILIES[family](seed)


def check_case(case: EdgeCase, backends: list[str], check: Callable) -> tuple[str, str | None]:
    """("ok" | "refused", None) when the case behaves as the language promises; (status, what went
    wrong) when it does not. `check(graph, arrays, backend, expected)` compiles and compares
    (fusec.bisect.check: a layer above this one, so the caller passes it)."""
    filename = f"{case.family}_{case.seed}.fg"
    try:
        g = parse(case.source, filename=filename)
    except FusecError as err:
        if err.location is None:
            return "refused", f"refused without a location: {err}"
        if case.refuse is False:
            return "refused", f"refused, but it is legal: {err}"
        return "refused", None
    if case.refuse is True:
        return "ok", "accepted, but it must be refused with a located error"
    text = print_graph(g)
    if print_graph(parse(text)) != text:
        return "ok", f"does not round-trip through the printer:\n{text}"
    if case.out_shapes is not None:
        shapes = tuple(g.type_of(o).shape for o in g.outputs)
        if shapes != case.out_shapes:
            return "ok", f"outputs have shapes {shapes}, not {case.out_shapes}: a name changed meaning"
    arrays = random_arrays(g, np.random.default_rng(case.seed))
    expected = evaluate(g, arrays)
    for b in backends:
        f = check(g, arrays, b, expected)
        if f is not None:
            return "ok", f"{b}: {f}"
    return "ok", None


__all__ = ["FAMILIES", "EdgeCase", "check_case", "edge_case"]
