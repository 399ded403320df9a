"""Graph, Plan and Compiled say what they are in a plain repr and draw themselves in Jupyter."""

from __future__ import annotations

from conftest import ROOT

import fusec
from fusec.fusion import plan

SOFTMAX = ROOT / "examples" / "03_softmax.fg"


def test_graph_repr_names_inputs_ops_and_typed_outputs():
    g = fusec.load(SOFTMAX)
    assert repr(g) == "<Graph softmax: 1 input, 5 ops -> y: f32[4096, 4096]>"
    adam = fusec.load(ROOT / "examples" / "07_adam.fg", sizes={"N": 8})
    assert repr(adam) == "<Graph adam: 4 inputs, 14 ops -> p_new: f32[8], m_new: f32[8], v_new: f32[8]>"
    assert g._repr_svg_().lstrip().startswith(("<svg", "<?xml"))


def test_plan_repr_lists_its_kernels():
    p = plan(fusec.load(SOFTMAX, sizes={"N": 8, "D": 8}))
    r = repr(p)
    assert r.startswith("<Plan softmax: 5 ops -> 1 kernel (") and "K0 reduce [" in r and r.endswith("]>")
    assert "<svg" in p._repr_svg_()


def test_compiled_repr_and_html():
    program = fusec.compile(SOFTMAX, backend="numpy", sizes={"N": 8, "D": 8})
    assert repr(program) == "<fusec.Compiled softmax(x: float32[8, 8]) -> (y: float32[8, 8]): 1 kernel, backend numpy>"
    page = program._repr_html_()
    assert "&lt;fusec.Compiled softmax" in page and "<svg" in page
    assert "<details><summary><code>softmax_k0</code> (numpy)</summary>" in page
