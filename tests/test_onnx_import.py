"""fusec import / fusec.from_onnx on models built with onnx.helper."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from fusec.errors import FusecError  # noqa: E402
from fusec.frontend.onnx_import import from_onnx  # noqa: E402


def mlp_block(d=16, h=32):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((d, h)).astype(np.float32) * 0.2, "w1"),
             numpy_helper.from_array(rng.standard_normal(h).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.standard_normal(d).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.standard_normal(d).astype(np.float32), "beta")]
    nodes = [helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["ln"], epsilon=1e-5, name="ln"),
             helper.make_node("MatMul", ["ln", "w1"], ["h"], name="mm"),
             helper.make_node("Add", ["h", "b1"], ["hb"], name="bias"),
             helper.make_node("Gelu", ["hb"], ["y"], name="gelu")]
    graph = helper.make_graph(nodes, "mlp_block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, d])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, h])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def test_import_then_run_verify(tmp_path):
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_block(), str(path))
    fg = tmp_path / "mlp.fg"
    fusec = [sys.executable, "-m", "fusec"]
    done = subprocess.run(fusec + ["import", str(path), "-o", str(fg)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "layernorm(" in fg.read_text() and (tmp_path / "mlp.weights.npz").is_file()
    done = subprocess.run(fusec + ["run", str(fg), "--verify", "--backend", "c"], capture_output=True, text=True)
    assert done.returncode == 0 and "verify: ok" in done.stdout, done.stdout + done.stderr


def test_unsupported_ops_and_dtypes_in_one_error():
    nodes = [helper.make_node("Atan", ["x"], ["a"], name="first"), helper.make_node("Einsum", ["a"], ["y"], name="second",
                                                                                      equation="ij->ji")]
    graph = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])])
    with pytest.raises(FusecError) as info:
        from_onnx(helper.make_model(graph))
    text = str(info.value)
    assert "Atan (node 'first')" in text and "Einsum (node 'second')" in text and "float16 of input 'x'" in text
