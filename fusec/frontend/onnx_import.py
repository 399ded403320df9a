"""Read an ONNX model into a fusec Graph: `fusec.from_onnx(path_or_ModelProto) -> Graph`.

Needs the optional `onnx` package (`pip install 'fusec[onnx]'`). Each ONNX node is built by its
function in `onnx_ops.CONVERTERS`. Before building anything the reader checks the whole model and
raises ONE FusecError listing every unsupported op (with its node name) and every unsupported dtype.

Constants. ONNX passes some parameters as tensors: Reshape's shape, Slice's starts, Clip's bounds,
Reduce*'s axes. These must be known when importing (an initializer, a Constant node, Shape of a
value, or a graph input whose value the caller fixes with `constants=`) and become attributes or
scalar constants. A tensor-valued constant used as data (a weight matrix, say) becomes a graph input
named after it, and its value is kept in `Imported.weights` (fusec's IR has scalar constants only);
a constant whose elements are all equal becomes a broadcast scalar instead. `fusec import` writes the
weights next to the `.fg` file as an `.npz`.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusec.errors import FusecError
from fusec.frontend.onnx_ops import CONVERTERS, DTYPES, supported
from fusec.ir.dtypes import dtype_named, dtype_of_numpy
from fusec.ir.graph import Graph
from fusec.ir.ops import OPS

_REQUIRED = object()
_RESERVED = {"graph", "return", "assert", "kernels", "input", "const"}


@dataclass
class Imported:
    """An imported model: the graph, and how its inputs relate to the model's."""

    graph: Graph
    inputs: dict[str, str] = field(default_factory=dict)  # graph input -> the ONNX input it stands for
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # graph input -> its value (initializers)
    outputs: list[str] = field(default_factory=list)  # the ONNX output names, in the graph's output order


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise FusecError("importing ONNX needs the onnx package: pip install 'fusec[onnx]'") from None
    return onnx, numpy_helper


def from_onnx(model: Any, sizes: dict[str, int] | None = None, constants: dict[str, Any] | None = None) -> Graph:
    """The Graph of an ONNX model (a path or a ModelProto). `sizes` gives symbolic dimensions."""
    return import_onnx(model, sizes, constants).graph


def import_onnx(model: Any, sizes: dict[str, int] | None = None, constants: dict[str, Any] | None = None) -> Imported:
    onnx, numpy_helper = _onnx()
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise FusecError(f"{path}: no such ONNX file")
        try:
            model = onnx.load(str(path))
        except Exception as e:  # a protobuf decode error: the file is not a model
            raise FusecError(f"{path}: not a readable ONNX model ({e})") from None
    return _Reader(model, numpy_helper, sizes or {}, constants or {}).read()


class _Reader:
    def __init__(self, model, numpy_helper, sizes: dict[str, int], constants: dict[str, Any]):
        self.model = model
        self.to_array = numpy_helper.to_array
        self.sizes = sizes
        self.constants = {k: np.asarray(v) for k, v in constants.items()}
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.graph = Graph(_identifier(model.graph.name or "model"))
        self.env: dict[str, str | np.ndarray] = {}
        self.materialized: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.imported = Imported(self.graph)

    # -- checking first: one error for everything unsupported
    def check(self) -> None:
        g = self.model.graph
        problems = []
        for i, node in enumerate(g.node):
            if node.domain not in ("", "ai.onnx") or not supported(node.op_type):
                domain = f"{node.domain}." if node.domain not in ("", "ai.onnx") else ""
                problems.append(f"op {domain}{node.op_type} (node '{node.name or f'#{i}'}')")
        for kind, values in (("input", g.input), ("output", g.output)):
            for v in values:
                elem = v.type.tensor_type.elem_type
                if elem not in DTYPES:
                    problems.append(f"dtype {_dtype_name(elem)} of {kind} '{v.name}'")
        for t in g.initializer:
            if t.data_type not in DTYPES:
                problems.append(f"dtype {_dtype_name(t.data_type)} of initializer '{t.name}'")
        if problems:
            raise FusecError("the ONNX model uses what fusec does not support:\n  " + "\n  ".join(problems))

    def read(self) -> Imported:
        self.check()
        g = self.model.graph
        for t in g.initializer:
            self.env[t.name] = self.to_array(t)
        for v in g.input:
            if v.name in self.env:  # an initializer also listed as an input (older exporters)
                continue
            if v.name in self.constants:
                self.env[v.name] = self.constants[v.name]
                continue
            dims = []
            for d in v.type.tensor_type.shape.dim:
                if d.HasField("dim_value"):
                    dims.append(d.dim_value)
                elif d.dim_param in self.sizes:
                    dims.append(self.sizes[d.dim_param])
                else:
                    raise FusecError(f"input '{v.name}' has the symbolic dimension '{d.dim_param or '?'}': give its "
                                     f"size (from_onnx(..., sizes={{'{d.dim_param or 'N'}': ...}}), fusec import --set)")
            name = self.fresh(v.name)
            self.graph.add_input(name, dtype_named(DTYPES[v.type.tensor_type.elem_type]), tuple(dims))
            self.env[v.name] = name
            self.imported.inputs[name] = v.name
        for i, node in enumerate(g.node):
            self.convert(node, i)
        outputs = []
        for v in g.output:
            outputs.append(self.value(v.name))
            self.imported.outputs.append(v.name)
        self.graph.set_outputs(outputs)
        self.graph.dead_code_elimination()
        self.graph.verify()
        return self.imported

    def convert(self, node, index: int) -> None:
        ctx = NodeContext(self, node, index)
        try:
            result = CONVERTERS[node.op_type](ctx)
        except FusecError as e:
            raise FusecError(f"{node.op_type} node '{ctx.name}': {e.message}") from None
        results = result if isinstance(result, list) else [result]
        for out, value in zip([o for o in node.output if o], results):
            if isinstance(value, str) and value.startswith("%"):
                wanted = self.fresh(out)
                self.graph.rename(value, wanted)
                value = wanted
            self.env[out] = value

    # -- values
    def fresh(self, onnx_name: str) -> str:
        base = _identifier(onnx_name)
        name, k = base, 2
        while name in self.graph or name in OPS or name in _RESERVED or keyword.iskeyword(name):
            name, k = f"{base}_{k}", k + 1
        return name

    def value(self, onnx_name: str) -> str:
        """The graph value of an ONNX value; a constant becomes a scalar, a broadcast scalar or an input."""
        if onnx_name not in self.env:
            raise FusecError(f"the value '{onnx_name}' is used before it is defined")
        v = self.env[onnx_name]
        if isinstance(v, str):
            return v
        if onnx_name not in self.materialized:
            self.materialized[onnx_name] = self.constant_value(onnx_name, v)
        return self.materialized[onnx_name]

    def constant_value(self, onnx_name: str, arr: np.ndarray) -> str:
        dtype = dtype_of_numpy(arr.dtype)
        if arr.size and np.all((arr == arr.flat[0]) | (np.isnan(arr) & np.isnan(arr.flat[0])) if dtype.is_float
                               else arr == arr.flat[0]):
            scalar = self.graph.const(arr.flat[0].item(), dtype)
            return scalar if arr.ndim == 0 else self.graph.add("broadcast_to", scalar, shape=list(arr.shape))
        name = self.fresh(onnx_name)
        self.graph.add_input(name, dtype, arr.shape)
        self.imported.weights[name] = arr
        return name

    def constant(self, onnx_name: str, node_name: str) -> np.ndarray:
        v = self.env.get(onnx_name)
        if isinstance(v, np.ndarray):
            return v
        raise FusecError(f"the input '{onnx_name}' must be a constant (an initializer or a Constant), because fusec "
                         f"needs its value when compiling; if it is a graph input, fix it with constants=")


class NodeContext:
    """What a builder in onnx_ops.py sees of one ONNX node."""

    def __init__(self, reader: _Reader, node, index: int):
        self.reader = reader
        self.node = node
        self.name = node.name or f"#{index}"
        self.op_type = node.op_type
        self.opset = reader.opset
        inputs = list(node.input)
        while inputs and not inputs[-1]:
            inputs.pop()
        self.inputs = inputs
        self.n_inputs = len(inputs)
        self.n_outputs = len([o for o in node.output if o])
        self.attrs = {a.name: a for a in node.attribute}

    def has(self, i: int) -> bool:
        return i < self.n_inputs and self.inputs[i] != ""

    def x(self, i: int) -> str:
        return self.reader.value(self.inputs[i])

    def const(self, i: int) -> np.ndarray | None:
        if not self.has(i):
            return None
        return self.reader.constant(self.inputs[i], self.name)

    def passthrough(self, i: int) -> str | np.ndarray:
        return self.reader.env[self.inputs[i]]

    def attr(self, name: str, default: Any = _REQUIRED) -> Any:
        a = self.attrs.get(name)
        if a is None:
            if default is _REQUIRED:
                raise FusecError(f"needs the attribute '{name}'")
            return default
        import onnx

        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, bytes):
            return value.decode()
        if a.type == onnx.AttributeProto.TENSOR:
            return self.reader.to_array(value)
        return list(value) if isinstance(value, (list, tuple)) else value

    def constant_attr(self) -> np.ndarray:
        for key, dtype in (("value", None), ("value_float", np.float32), ("value_floats", np.float32),
                           ("value_int", np.int64), ("value_ints", np.int64)):
            if key in self.attrs:
                value = self.attr(key)
                return value if dtype is None else np.array(value, dtype=dtype)
        raise FusecError(f"Constant node '{self.name}': only tensor, float(s) and int(s) values are supported")

    def add(self, op: str, *args: Any, **attrs: Any) -> str:
        return self.reader.graph.add(op, *args, **attrs)

    def type(self, name: str):
        return self.reader.graph.type_of(name)

    def dtype(self, i: int) -> str:
        return self.type(self.x(i)).dtype.name

    def is_float(self, i: int) -> bool:
        return self.type(self.x(i)).dtype.is_float

    @staticmethod
    def scalar(arr: Any) -> bool | int | float:
        return np.asarray(arr).reshape(-1)[0].item()


def _identifier(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    return ident if ident and not ident[0].isdigit() else f"v_{ident}"


def _dtype_name(elem: int) -> str:
    try:
        import onnx

        return onnx.TensorProto.DataType.Name(elem).lower()
    except Exception:
        return str(elem)
