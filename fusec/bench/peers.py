"""The peers fusec is compared with: numexpr, torch.compile and jax.jit, each in a process of its own.

A fusec Graph is translated mechanically: each peer has one table from op name to the peer's
function (`numexpr_ops`, `torch_ops`, `jax_ops`), and `evaluate` walks the graph in topological
order calling them. A graph holding an op missing from a peer's table is "unsupported" for that
peer; a peer whose package is not installed is "skipped: not installed".

Each peer runs in a fresh Python process (`python -m fusec.bench.peers`, JSON on stdin and stdout),
so its thread pool (OpenMP, Eigen, XLA) and fusec's do not compete or share state. The worker draws
the same seeded inputs, checks the peer's outputs against the interpreter with the tolerance policy,
and only then times it with the same protocol as fusec's own paths (fusec.bench.timing).
"""

from __future__ import annotations

import importlib.util
import json
import operator
import subprocess
import sys
from collections.abc import Callable

from fusec.bench.system import PEER_PACKAGES, package_version
from fusec.errors import FusecError
from fusec.ir.ops import reduce_axes, slice_bounds, transpose_perm

PEERS = tuple(PEER_PACKAGES)
TIMEOUT_SECONDS = 900  # torch.compile's first call compiles C++ and can take a minute on a busy machine


class Unsupported(Exception):
    """The peer has no translation for an op of the graph."""


def evaluate(graph, table: dict[str, Callable], arrays, literal: Callable, view: Callable = lambda node: node) -> tuple:
    """Walk `graph` calling `table[op](args, attrs, view(node))`; constants become `literal(value, node)`."""
    values = dict(zip(graph.inputs, arrays))
    for node in graph.nodes():
        if node.op == "input":
            continue
        if node.op == "const":
            values[node.name] = literal(node.attrs["value"], node)
            continue
        values[node.name] = table[node.op]([values[a] for a in node.args], node.attrs, view(node))
    return tuple(values[o] for o in graph.outputs)


def missing_ops(graph, table: dict) -> list[str]:
    return sorted({n.op for n in graph.ops() if n.op not in table and n.op not in ("input", "const")})


# ------------------------------------------------------------------------------------- numexpr


def numexpr_ops() -> dict[str, Callable]:
    """numexpr evaluates one elementwise expression: each op becomes a piece of its text.

    Constants are passed as typed variables (`node.const(...)`) so f32 stays f32: numexpr would
    widen an f32 expression to f64 on meeting a Python float literal.
    """

    def infix(sym):
        return lambda a, attrs, node: f"({a[0]} {sym} {a[1]})"

    def call(fn):
        return lambda a, attrs, node: f"{fn}({', '.join(a)})"

    def one(node):
        return node.const(1)

    def gelu(a, attrs, node):
        if attrs["approximate"] != "tanh":
            raise Unsupported("gelu without the tanh approximation (numexpr has no erf)")
        c = node.const
        return f"({c(0.5)} * {a[0]} * ({c(1)} + tanh({c(0.7978845608028654)} * ({a[0]} + {c(0.044715)} * {a[0]} * {a[0]} * {a[0]}))))"

    table = {op: infix(sym) for op, sym in [("add", "+"), ("sub", "-"), ("mul", "*"), ("div", "/"), ("pow", "**"),
                                            ("eq", "=="), ("ne", "!="), ("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">=")]}
    table.update({op: call(op) for op in ("maximum", "minimum", "exp", "log", "sqrt", "tanh", "abs", "where")})
    table.update(
        neg=lambda a, attrs, node: f"(-{a[0]})",
        rsqrt=lambda a, attrs, node: f"({one(node)} / sqrt({a[0]}))",
        reciprocal=lambda a, attrs, node: f"({one(node)} / {a[0]})",
        sigmoid=lambda a, attrs, node: f"({one(node)} / ({one(node)} + exp(-{a[0]})))",
        relu=lambda a, attrs, node: f"where({a[0]} > {node.const(0)}, {a[0]}, {node.const(0)})",
        gelu=gelu,
    )
    return table


class _ExprNode:
    """What a numexpr table entry sees: the fusec node, plus `const` to make a typed constant."""

    def __init__(self, node, constants: dict):
        self.node, self.attrs, self._constants = node, node.attrs, constants

    def const(self, value):
        name = f"c{len(self._constants)}"
        self._constants[name] = self.node.type.dtype.numpy.type(value)
        return name


def numexpr_program(graph):
    import numexpr
    import numpy as np

    constants: dict = {}
    names = [f"v{i}" for i in range(len(graph.inputs))]
    exprs = evaluate(graph, numexpr_ops(), names, lambda value, node: _ExprNode(node, constants).const(value),
                     view=lambda node: _ExprNode(node, constants))
    outs = [np.empty(graph.type_of(o).shape, graph.type_of(o).dtype.numpy) for o in graph.outputs]

    def run(*xs):
        local = {**constants, **dict(zip(names, xs))}
        for expr, out in zip(exprs, outs):
            numexpr.evaluate(expr, local_dict=local, out=out, casting="same_kind")
        return tuple(outs)

    return run, "caller", numexpr.__version__


# ------------------------------------------------------------------------------ torch and jax


def _unary(fn):
    return lambda a, attrs, node: fn(a[0])


def _binary(fn):
    return lambda a, attrs, node: fn(a[0], a[1])


def _slice_of(x, attrs, node):
    """x[..., start:stop:step, ...] on the slice's axis, bounds clamped as the op table does."""
    from fusec.ir.dtypes import TensorType

    axis, start, stop, step = slice_bounds(attrs, TensorType(node.type.dtype, tuple(x.shape)))
    if step < 0:
        raise Unsupported("slice with a negative step")
    index = [slice(None)] * len(x.shape)
    index[axis] = slice(start, stop, step)
    return x[tuple(index)]


def _operators() -> dict[str, Callable]:
    """Ops both torch and jax spell as Python operators (a Python scalar operand stays weakly typed,
    so `0.5 * x` keeps x's f32, as a literal does in fusec)."""
    table = {name: _binary(fn) for name, fn in [
        ("add", operator.add), ("sub", operator.sub), ("mul", operator.mul), ("div", operator.truediv),
        ("eq", operator.eq), ("ne", operator.ne), ("lt", operator.lt), ("le", operator.le), ("gt", operator.gt),
        ("ge", operator.ge), ("matmul", operator.matmul)]}
    table["neg"] = _unary(operator.neg)
    return table


def torch_ops(torch) -> dict[str, Callable]:
    F = torch.nn.functional

    def dtype(node):
        import numpy as np

        return torch.from_numpy(np.empty(0, node.type.dtype.numpy)).dtype

    def both(fn):  # torch.maximum and torch.pow want tensors: a Python scalar takes the other side's dtype
        def run(a, attrs, node):
            x, y = a
            x = x if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=y.dtype)
            y = y if isinstance(y, torch.Tensor) else torch.tensor(y, dtype=x.dtype)
            return fn(x, y)

        return run

    def reduce(fn):
        return lambda a, attrs, node: fn(a[0], dim=reduce_axes(attrs["axis"], a[0].dim()), keepdim=attrs["keepdims"])

    def prod(a, attrs, node):  # torch.prod takes one dim at a time
        x = a[0]
        for ax in reversed(reduce_axes(attrs["axis"], x.dim())):
            x = torch.prod(x, dim=ax, keepdim=attrs["keepdims"])
        return x

    def iota(a, attrs, node):
        shape = tuple(node.type.shape)
        axis = attrs["axis"] % len(shape)
        view = [1 if k != axis else n for k, n in enumerate(shape)]
        return torch.arange(shape[axis], dtype=dtype(node)).reshape(view).expand(shape)

    table = _operators()
    table.update(
        pow=both(torch.pow), maximum=both(torch.maximum), minimum=both(torch.minimum),
        exp=_unary(torch.exp), log=_unary(torch.log), sqrt=_unary(torch.sqrt), rsqrt=_unary(torch.rsqrt),
        reciprocal=_unary(torch.reciprocal), tanh=_unary(torch.tanh), sigmoid=_unary(torch.sigmoid),
        erf=_unary(torch.erf), abs=_unary(torch.abs), relu=_unary(torch.relu), sin=_unary(torch.sin), cos=_unary(torch.cos),
        gelu=lambda a, attrs, node: F.gelu(a[0], approximate=attrs["approximate"]),
        where=lambda a, attrs, node: torch.where(a[0], a[1], a[2]),
        cast=lambda a, attrs, node: a[0].to(dtype(node)),
        sum=reduce(torch.sum), mean=reduce(torch.mean), max=reduce(torch.amax), min=reduce(torch.amin), prod=prod,
        logsumexp=reduce(torch.logsumexp),
        softmax=lambda a, attrs, node: torch.softmax(a[0], dim=attrs["axis"]),
        log_softmax=lambda a, attrs, node: torch.log_softmax(a[0], dim=attrs["axis"]),
        layernorm=lambda a, attrs, node: F.layer_norm(a[0], (a[0].shape[-1],), a[1], a[2], attrs["eps"]),
        rmsnorm=lambda a, attrs, node: a[0] * torch.rsqrt((a[0] * a[0]).mean(-1, keepdim=True) + attrs["eps"]) * a[1],
        transpose=lambda a, attrs, node: a[0].permute(transpose_perm(attrs, a[0].dim())),
        reshape=lambda a, attrs, node: a[0].reshape(node.type.shape),
        expand_dims=lambda a, attrs, node: a[0].reshape(node.type.shape),
        squeeze=lambda a, attrs, node: a[0].reshape(node.type.shape),
        broadcast_to=lambda a, attrs, node: a[0].expand(node.type.shape),
        slice=lambda a, attrs, node: _slice_of(a[0], attrs, node),
        concat=lambda a, attrs, node: torch.cat(a, dim=attrs["axis"]),
        iota=iota,
    )
    return table


def jax_ops(jax) -> dict[str, Callable]:
    jnp = jax.numpy
    from jax.scipy.special import erf, logsumexp

    def reduce(fn):
        return lambda a, attrs, node: fn(a[0], axis=reduce_axes(attrs["axis"], a[0].ndim), keepdims=attrs["keepdims"])

    def layernorm(a, attrs, node):
        x, gamma, beta = a
        mean = x.mean(-1, keepdims=True)
        d = x - mean
        return d * jax.lax.rsqrt((d * d).mean(-1, keepdims=True) + attrs["eps"]) * gamma + beta

    def iota(a, attrs, node):
        return jax.lax.broadcasted_iota(node.type.dtype.numpy, tuple(node.type.shape), attrs["axis"] % len(node.type.shape))

    table = _operators()
    table.update(
        pow=_binary(jnp.power), maximum=_binary(jnp.maximum), minimum=_binary(jnp.minimum),
        exp=_unary(jnp.exp), log=_unary(jnp.log), sqrt=_unary(jnp.sqrt), rsqrt=_unary(jax.lax.rsqrt),
        reciprocal=_unary(jnp.reciprocal), tanh=_unary(jnp.tanh), sigmoid=_unary(jax.nn.sigmoid),
        erf=_unary(erf), abs=_unary(jnp.abs), relu=_unary(jax.nn.relu), sin=_unary(jnp.sin), cos=_unary(jnp.cos),
        gelu=lambda a, attrs, node: jax.nn.gelu(a[0], approximate=attrs["approximate"] == "tanh"),
        where=lambda a, attrs, node: jnp.where(a[0], a[1], a[2]),
        cast=lambda a, attrs, node: a[0].astype(node.type.dtype.numpy),
        sum=reduce(jnp.sum), mean=reduce(jnp.mean), max=reduce(jnp.max), min=reduce(jnp.min), prod=reduce(jnp.prod),
        logsumexp=reduce(logsumexp),
        softmax=lambda a, attrs, node: jax.nn.softmax(a[0], axis=attrs["axis"]),
        log_softmax=lambda a, attrs, node: jax.nn.log_softmax(a[0], axis=attrs["axis"]),
        layernorm=layernorm,
        rmsnorm=lambda a, attrs, node: a[0] * jax.lax.rsqrt((a[0] * a[0]).mean(-1, keepdims=True) + attrs["eps"]) * a[1],
        transpose=lambda a, attrs, node: jnp.transpose(a[0], transpose_perm(attrs, a[0].ndim)),
        reshape=lambda a, attrs, node: a[0].reshape(node.type.shape),
        expand_dims=lambda a, attrs, node: a[0].reshape(node.type.shape),
        squeeze=lambda a, attrs, node: a[0].reshape(node.type.shape),
        broadcast_to=lambda a, attrs, node: jnp.broadcast_to(a[0], node.type.shape),
        slice=lambda a, attrs, node: _slice_of(a[0], attrs, node),
        concat=lambda a, attrs, node: jnp.concatenate(a, axis=attrs["axis"]),
        iota=iota,
    )
    return table


def torch_program(graph):
    import torch

    table = torch_ops(torch)
    fn = torch.compile(lambda *xs: evaluate(graph, table, xs, lambda value, node: value))

    def run(*xs):
        with torch.no_grad():
            return tuple(y.numpy() for y in fn(*(torch.from_numpy(x) for x in xs)))

    return run, "fresh", torch.__version__


def jax_program(graph):
    import jax

    jax.config.update("jax_enable_x64", True)  # keep f64 and i64 graphs in their own dtypes
    table = jax_ops(jax)
    fn = jax.jit(lambda *xs: evaluate(graph, table, xs, lambda value, node: value))

    def run(*xs):
        # inputs are copied to the device each call, as NumPy callers would pay; outputs come back as NumPy
        return tuple(jax.device_get(y) for y in jax.block_until_ready(fn(*xs)))

    return run, "fresh", jax.__version__


PROGRAMS = {"numexpr": (numexpr_program, numexpr_ops), "torch": (torch_program, None), "jax": (jax_program, None)}


# ------------------------------------------------------------------------------ the processes


def installed(peer: str) -> bool:
    """Whether the peer's package can be imported (found without importing it)."""
    return importlib.util.find_spec(PEER_PACKAGES[peer]) is not None


def parse_peers(text: str | None) -> list[str]:
    """--peers numexpr,torch,jax (or 'none')."""
    if text is None:
        return list(PEERS)
    names = [p.strip() for p in text.split(",") if p.strip() and p.strip() != "none"]
    unknown = [p for p in names if p not in PEERS]
    if unknown:
        raise FusecError(f"unknown peer '{unknown[0]}' (peers: {', '.join(PEERS)}, or none)")
    return list(dict.fromkeys(names))


def run_peer(peer: str, path: str, sizes: dict[str, int], settings, min_bytes: int):
    """Measure one peer on one file in a process of its own; returns a protocol.PathResult."""
    from fusec.bench.results import PathResult
    from fusec.bench.timing import Timing

    if not installed(peer):
        return PathResult(peer, "skipped: not installed")
    request = {"peer": peer, "path": path, "sizes": sizes, "repeats": settings.repeats, "warmup": settings.warmup,
               "max_seconds": settings.max_seconds, "seed": settings.seed}
    try:
        done = subprocess.run([sys.executable, "-m", "fusec.bench.peers"], input=json.dumps(request),
                              capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return PathResult(peer, f"failed: no result within {TIMEOUT_SECONDS} s", version=package_version(peer))
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        err = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return PathResult(peer, f"failed: {err}", version=package_version(peer))
    reply = json.loads(lines[-1])
    timing = Timing(tuple(reply["samples"])) if reply.get("samples") else None
    return PathResult(peer, reply["status"], reply.get("outputs", "fresh"), timing, None, min_bytes,
                      version=reply.get("version") or package_version(peer))


def worker(request: dict) -> dict:
    """In the peer's own process: translate, check against the interpreter, then time."""
    from fusec.bench.results import check_outputs
    from fusec.bench.timing import time_calls
    from fusec.frontend import load
    from fusec.inputs import random_inputs
    from fusec.interp import interpret

    graph = load(request["path"], sizes=request["sizes"] or None)
    program, table = PROGRAMS[request["peer"]]
    if table is not None and missing_ops(graph, table()):
        return {"status": f"unsupported: {request['peer']} has no {', '.join(missing_ops(graph, table()))}"}
    xs = random_inputs(graph, seed=request["seed"])
    expected = interpret(graph, *xs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    try:
        run, outputs, version = program(graph)
        got = run(*xs)  # the first call compiles (torch.compile, jax.jit)
    except Unsupported as why:
        return {"status": f"unsupported: {why}"}
    problem = check_outputs(graph, got, expected)
    if problem:
        return {"status": problem, "outputs": outputs, "version": version}
    timing = time_calls(lambda: run(*xs), request["repeats"], request["warmup"], request["max_seconds"])
    return {"status": "ok", "outputs": outputs, "version": version, "samples": list(timing.samples)}


if __name__ == "__main__":
    print(json.dumps(worker(json.loads(sys.stdin.read()))))
