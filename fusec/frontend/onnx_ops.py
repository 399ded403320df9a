"""ONNX op -> fusec ops: one small builder function per ONNX op, and the table `CONVERTERS`.

A builder gets a `Node` context (fusec/frontend/onnx_import.py): `c.x(i)` is input i as a graph
value, `c.const(i)` input i as a NumPy constant (an initializer, a Constant, or a value the caller
fixed), `c.attr(name, default)` an attribute, and `c.add(op, *args, **attrs)` adds a fusec node. It
returns the name of its result (or a list, for ops with several outputs). Where ONNX moved an
attribute to an input in a later opset (Clip's bounds, Reduce*'s axes, Slice's starts), the builder
reads whichever the node has. Ops that a row of the op table expresses directly use the row; a few
ONNX ops are a short composition of rows (HardSigmoid, Selu, Gemm, ...), and they prefer a row of
their own once the table has one (softplus, elu, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import reduce as fold

import numpy as np

from fusec.errors import FusecError
from fusec.ir.ops import OPS

DTYPES = {1: "f32", 11: "f64", 6: "i32", 7: "i64", 9: "bool"}  # ONNX TensorProto elem type -> fusec dtype


def _unary(op: str) -> Callable:
    return lambda c: c.add(op, c.x(0))


def _binary(op: str) -> Callable:
    return lambda c: c.add(op, c.x(0), c.x(1))


def _variadic(op: str) -> Callable:
    return lambda c: fold(lambda a, b: c.add(op, a, b), [c.x(i) for i in range(c.n_inputs)])


def _row_or(row: str, compose: Callable) -> Callable:
    """Use the op table's row when it has one, else the composition."""
    return lambda c: c.add(row, c.x(0)) if row in OPS else compose(c)


def _div(c):
    q = c.add("div", c.x(0), c.x(1))
    return q if c.is_float(0) else c.add("cast", q, dtype=c.dtype(0))  # integer division truncates


def _pow(c):
    p = c.add("pow", c.x(0), c.x(1))
    return c.add("cast", p, dtype=c.dtype(0)) if c.type(p).dtype.name != c.dtype(0) else p


def _mean(c):
    return c.add("div", _variadic("add")(c), float(c.n_inputs))


def _logical(kind: str) -> Callable:
    spelled = {"and": "mul", "or": "add", "xor": "ne"}  # bool arithmetic is logic
    return lambda c: c.add(f"logical_{kind}" if f"logical_{kind}" in OPS else spelled[kind], c.x(0), c.x(1))


def _not(c):
    return c.add("logical_not", c.x(0)) if "logical_not" in OPS else c.add("eq", c.x(0), False)


def _leaky_relu(c):
    x = c.x(0)
    if "leaky_relu" in OPS:
        return c.add("leaky_relu", x, alpha=c.attr("alpha", 0.01))
    return c.add("where", c.add("lt", x, 0.0), c.add("mul", x, c.attr("alpha", 0.01)), x)


def _elu(c):
    x = c.x(0)
    if "elu" in OPS:
        return c.add("elu", x, alpha=c.attr("alpha", 1.0))
    neg = c.add("mul", c.add("sub", c.add("exp", x), 1.0), c.attr("alpha", 1.0))
    return c.add("where", c.add("lt", x, 0.0), neg, x)


def _selu(c):
    x = c.x(0)
    alpha, gamma = c.attr("alpha", 1.67326319217681884765625), c.attr("gamma", 1.05070102214813232421875)
    if "selu" in OPS:
        return c.add("selu", x, alpha=alpha, gamma=gamma)
    neg = c.add("mul", c.add("sub", c.add("exp", x), 1.0), alpha * gamma)
    return c.add("where", c.add("le", x, 0.0), neg, c.add("mul", x, gamma))


def _softplus_of(c, x):
    return c.add("softplus", x) if "softplus" in OPS else c.add("log", c.add("add", c.add("exp", x), 1.0))


def _hard_sigmoid_of(c, x, alpha, beta):
    return c.add("maximum", c.add("minimum", c.add("add", c.add("mul", x, alpha), beta), 1.0), 0.0)


def _hard_sigmoid(c):
    if "hardsigmoid" in OPS:
        return c.add("hardsigmoid", c.x(0), alpha=c.attr("alpha", 0.2), beta=c.attr("beta", 0.5))
    return _hard_sigmoid_of(c, c.x(0), c.attr("alpha", 0.2), c.attr("beta", 0.5))


def _hard_swish(c):
    if "hardswish" in OPS:
        return c.add("hardswish", c.x(0))
    return c.add("mul", c.x(0), _hard_sigmoid_of(c, c.x(0), 1 / 6, 0.5))


def _clip(c):
    lo = c.const(1) if c.n_inputs > 1 else c.attr("min", None)
    hi = c.const(2) if c.n_inputs > 2 else c.attr("max", None)
    x = c.x(0)
    if lo is not None:
        x = c.add("maximum", x, c.scalar(lo))
    if hi is not None:
        x = c.add("minimum", x, c.scalar(hi))
    return x


def _cast(c):
    to = c.attr("to")
    if to not in DTYPES:
        raise FusecError(f"Cast node '{c.name}' casts to ONNX dtype {to}, which fusec does not have")
    return c.add("cast", c.x(0), dtype=DTYPES[to])


def _axes(c, input_index: int, opset_moved: int | None):
    """Reduce*/Squeeze/Unsqueeze axes: an attribute before `opset_moved`, an optional input from it."""
    if opset_moved is not None and c.opset >= opset_moved:
        axes = c.const(input_index) if c.n_inputs > input_index else None
        return None if axes is None else [int(a) for a in np.ravel(axes)]
    axes = c.attr("axes", None)
    return None if axes is None else list(axes)


def _reduction(op: str, moved: int = 18, pre: Callable | None = None, post: Callable | None = None) -> Callable:
    def build(c):
        axes = _axes(c, 1, moved)
        x = c.x(0)
        if not axes:
            if c.attr("noop_with_empty_axes", 0):
                return c.add("reshape", x, shape=list(c.type(x).shape))  # the input, unchanged
            axes = None
        x = pre(c, x) if pre else x
        r = c.add(op, x, axis=axes, keepdims=bool(c.attr("keepdims", 1)))
        return post(c, r) if post else r

    return build


def _softmax(op: str) -> Callable:
    def build(c):
        x = c.x(0)
        shape = c.type(x).shape
        if c.opset >= 13:
            return c.add(op, x, axis=c.attr("axis", -1))
        axis = c.attr("axis", 1) % max(len(shape), 1)  # before opset 13: over the flattened trailing axes
        flat = c.add("reshape", x, shape=[math.prod(shape[:axis]), math.prod(shape[axis:])])
        return c.add("reshape", c.add(op, flat, axis=-1), shape=list(shape))

    return build


def _layer_norm(c):
    x = c.x(0)
    shape = c.type(x).shape
    axis = c.attr("axis", -1) % len(shape)
    eps = c.attr("epsilon", 1e-5)
    scale = c.x(1)
    bias = c.x(2) if c.n_inputs > 2 and c.has(2) else None
    if axis == len(shape) - 1 and c.n_outputs == 1 and bias is not None and c.type(scale).shape == shape[-1:] \
            and c.type(bias).shape == shape[-1:]:
        return c.add("layernorm", x, scale, bias, eps=eps)
    axes = list(range(axis, len(shape)))
    mean = c.add("mean", x, axis=axes, keepdims=True)
    d = c.add("sub", x, mean)
    inv = c.add("rsqrt", c.add("add", c.add("mean", c.add("mul", d, d), axis=axes, keepdims=True), eps))
    y = c.add("mul", c.add("mul", d, inv), scale)
    y = c.add("add", y, bias) if bias is not None else y
    return [y, mean, inv][: c.n_outputs]


def _gemm(c):
    a, b = c.x(0), c.x(1)
    a = c.add("transpose", a) if c.attr("transA", 0) else a
    b = c.add("transpose", b) if c.attr("transB", 0) else b
    y = c.add("matmul", a, b)
    alpha, beta = c.attr("alpha", 1.0), c.attr("beta", 1.0)
    y = c.add("mul", y, alpha) if alpha != 1.0 else y
    if c.n_inputs > 2 and c.has(2):
        cc = c.x(2)
        y = c.add("add", y, c.add("mul", cc, beta) if beta != 1.0 else cc)
    return y


def _reshape(c):
    x = c.x(0)
    shape = [int(d) for d in c.const(1)] if c.opset >= 5 else list(c.attr("shape"))
    if not c.attr("allowzero", 0):
        shape = [c.type(x).shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return c.add("reshape", x, shape=shape)


def _flatten(c):
    shape = c.type(c.x(0)).shape
    axis = c.attr("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    return c.add("reshape", c.x(0), shape=[math.prod(shape[:axis]), math.prod(shape[axis:])])


def _squeeze(c):
    axes = _axes(c, 1, 13)
    return c.add("squeeze", c.x(0), axis=axes)


def _unsqueeze(c):
    x = c.x(0)
    rank = len(c.type(x).shape) + len(_axes(c, 1, 13))
    for a in sorted(a % rank for a in _axes(c, 1, 13)):
        x = c.add("expand_dims", x, axis=a)
    return x


def _expand(c):
    x = c.x(0)
    target = np.broadcast_shapes(c.type(x).shape, tuple(int(d) for d in c.const(1)))
    return c.add("broadcast_to", x, shape=list(target))


def _slice(c):
    x = c.x(0)
    if c.opset >= 10:
        starts, ends = c.const(1), c.const(2)
        axes = c.const(3) if c.n_inputs > 3 and c.has(3) else range(len(starts))
        steps = c.const(4) if c.n_inputs > 4 and c.has(4) else [1] * len(starts)
    else:
        starts, ends = c.attr("starts"), c.attr("ends")
        axes, steps = c.attr("axes", list(range(len(starts)))), [1] * len(starts)
    rank = len(c.type(x).shape)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        n = c.type(x).shape[int(axis) % rank]
        start, stop, step = slice(int(start), int(end), int(step)).indices(n)
        x = c.add("slice", x, axis=int(axis) % rank, start=start, stop=stop if stop >= 0 else -n - 1, step=step)
    return x


def _arg(op: str) -> Callable:
    def build(c):
        if op not in OPS:
            raise FusecError(f"{c.op_type} node '{c.name}' needs the op '{op}'")
        last = bool(c.attr("select_last_index", 0))
        r = c.add(op, c.x(0), axis=c.attr("axis", 0), keepdims=bool(c.attr("keepdims", 1)), last=last)
        return c.add("cast", r, dtype="i64") if c.type(r).dtype.name != "i64" else r

    return build


def _constant(c):
    return c.constant_attr()


def _shape(c):
    shape = np.array(c.type(c.x(0)).shape, dtype=np.int64)
    return shape[c.attr("start", 0) : c.attr("end", None)]


CONVERTERS: dict[str, Callable] = {
    "Add": _binary("add"), "Sub": _binary("sub"), "Mul": _binary("mul"), "Div": _div, "Pow": _pow,
    "Neg": _unary("neg"), "Abs": _unary("abs"), "Exp": _unary("exp"), "Log": _unary("log"), "Sqrt": _unary("sqrt"),
    "Reciprocal": _unary("reciprocal"), "Tanh": _unary("tanh"), "Sigmoid": _unary("sigmoid"), "Relu": _unary("relu"),
    "Erf": _unary("erf"), "Identity": lambda c: c.passthrough(0),
    "LeakyRelu": _leaky_relu, "Elu": _elu, "Selu": _selu,
    "Gelu": lambda c: c.add("gelu", c.x(0), approximate=c.attr("approximate", "none")),
    "Softplus": lambda c: _softplus_of(c, c.x(0)),
    "Softsign": _row_or("softsign", lambda c: c.add("div", c.x(0), c.add("add", c.add("abs", c.x(0)), 1.0))),
    "Mish": _row_or("mish", lambda c: c.add("mul", c.x(0), c.add("tanh", _softplus_of(c, c.x(0))))),
    "HardSigmoid": _hard_sigmoid, "HardSwish": _hard_swish, "Clip": _clip,
    "Max": _variadic("maximum"), "Min": _variadic("minimum"), "Sum": _variadic("add"), "Mean": _mean,
    "Where": lambda c: c.add("where", c.x(0), c.x(1), c.x(2)),
    "Equal": _binary("eq"), "Greater": _binary("gt"), "Less": _binary("lt"),
    "GreaterOrEqual": _binary("ge"), "LessOrEqual": _binary("le"),
    "And": _logical("and"), "Or": _logical("or"), "Xor": _logical("xor"), "Not": _not,
    "Cast": _cast,
    "ReduceSum": _reduction("sum", moved=13), "ReduceMean": _reduction("mean"), "ReduceMax": _reduction("max"),
    "ReduceMin": _reduction("min"), "ReduceProd": _reduction("prod"),
    "ReduceL2": _reduction("sum", pre=lambda c, x: c.add("mul", x, x), post=lambda c, r: c.add("sqrt", r)),
    "ReduceL1": _reduction("sum", pre=lambda c, x: c.add("abs", x)),
    "ReduceSumSquare": _reduction("sum", pre=lambda c, x: c.add("mul", x, x)),
    "ReduceLogSum": _reduction("sum", post=lambda c, r: c.add("log", r)),
    "ReduceLogSumExp": _reduction("logsumexp"),
    "Softmax": _softmax("softmax"), "LogSoftmax": _softmax("log_softmax"), "LayerNormalization": _layer_norm,
    "MatMul": _binary("matmul"), "Gemm": _gemm,
    "Transpose": lambda c: c.add("transpose", c.x(0), perm=c.attr("perm", None)),
    "Reshape": _reshape, "Flatten": _flatten, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Expand": _expand,
    "Concat": lambda c: c.add("concat", *[c.x(i) for i in range(c.n_inputs)], axis=c.attr("axis")),
    "Slice": _slice, "Constant": _constant, "Shape": _shape,
    "ArgMax": _arg("argmax"), "ArgMin": _arg("argmin"),
}  # fmt: skip

# ONNX ops that are exactly one row of the op table once the row exists
for _onnx, _row in {"Sin": "sin", "Cos": "cos", "Floor": "floor", "Ceil": "ceil", "Round": "round",
                    "Sign": "sign", "IsNaN": "isnan"}.items():  # fmt: skip
    CONVERTERS.setdefault(_onnx, _unary(_row))


def supported(op_type: str) -> bool:
    """Whether an ONNX op can be imported with the op table as it is now."""
    needs = {"Sin": "sin", "Cos": "cos", "Floor": "floor", "Ceil": "ceil", "Round": "round", "Sign": "sign",
             "IsNaN": "isnan", "ArgMax": "argmax", "ArgMin": "argmin"}  # fmt: skip
    return op_type in CONVERTERS and needs.get(op_type, "add") in OPS
