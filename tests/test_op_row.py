"""The op row is the single source of an op.

A test registers a new elementwise op, `elliott(x) = x / (1 + |x|)`, with one row and nothing else;
the op then parses, interprets, passes `rules verify`, fuses with its neighbours, compiles and
verifies on both backends, and appears in random graphs. The rest checks that the consumers of the
op table read it instead of keeping lists of their own.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import fusec
from fusec.errors import FusecError
from fusec.fusion.planner import plan
from fusec.interp import evaluate
from fusec.ir.ops import KINDS, OPS, OpDef, ops_in_family, register_op, unregister_op
from fusec.ir.ops_rules import unary_float_rule
from fusec.rewrite.parse import parse_rules
from fusec.rewrite.verify import verify_rule
from fusec.testing.graphgen import GenConfig, random_graph
from fusec.tolerance import compare_output

ROOT = Path(__file__).resolve().parent.parent

# The one change docs/howto/add_an_op.md shows: a row.
ELLIOTT = OpDef(
    "elliott", "elementwise", 1, unary_float_rule("elliott"),
    numpy=lambda a, attrs: a[0] / (a[0].dtype.type(1) + np.abs(a[0])),
    flops=3, families=("float_math",),
    numpy_code=("np.absolute({0}, out={out})", "np.add({one}, {out}, out={out})", "np.true_divide({0}, {out}, out={out})"),
    c_code={"f32": "({0} / ({one} + fabsf({0})))", "f64": "({0} / ({one} + fabs({0})))"},
)  # fmt: skip

# the graph docs/howto/add_an_op.md starts from (before the row, `fusec check` says: unknown op)
SOURCE = (ROOT / "docs" / "snippets" / "elliott.fg").read_text()


@pytest.fixture
def elliott():
    register_op(ELLIOTT)
    try:
        yield ELLIOTT
    finally:
        unregister_op("elliott")


def _inputs(g, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(g.type_of(n).shape) * 3).astype(g.type_of(n).dtype.numpy) for n in g.inputs]


def test_a_new_op_parses_and_interprets(elliott):
    g = fusec.parse(SOURCE)
    assert g.node("s").op == "elliott"
    x, b = _inputs(g)
    h = x * np.float32(2.0) + b
    np.testing.assert_array_equal(fusec.interpret(g, x, b), np.exp(h / (np.float32(1) + np.abs(h))) - np.float32(1))


def test_a_new_op_is_type_checked_by_its_row(elliott):
    with pytest.raises(FusecError, match="elliott needs a float tensor"):
        fusec.parse("graph g(x: i32[4]) { return elliott(x) }")


def test_a_rule_using_the_new_op_verifies(elliott):
    (rule,) = parse_rules('rule elliott exact "x / (1 + |x|) is elliott"\n  x / (1 + abs(x)) -> elliott(x)\n')
    result = verify_rule(rule, cases=60)
    assert result.passed, str(result)
    assert result.elements > 0
    (wrong,) = parse_rules('rule wrong exact "not elliott"\n  x / (2 + abs(x)) -> elliott(x)\n')
    assert not verify_rule(wrong, cases=60).passed


def test_the_new_op_fuses_with_its_neighbours(elliott):
    p = plan(fusec.parse(SOURCE))
    assert len(p.groups) == 1
    assert {"h", "s", "y"} <= set(p.groups[0].nodes)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_the_new_op_compiles_and_verifies_on_both_backends(elliott, backend):
    g = fusec.parse(SOURCE)
    program = fusec.compile(g, backend=backend, tune_db=False)
    assert program.kernels == 1
    assert ("fabsf(" if backend == "c" else "np.absolute(") in program.source()  # the row's template
    x, b = _inputs(g, seed=3)
    x[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    got = program(x, b)
    expected = evaluate(g, [x, b])["y"]
    assert compare_output(g, "y", got, expected) is None


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_recognised_new_op_compiles_from_the_written_out_formula(elliott, backend):
    rules = parse_rules('rule elliott exact "x / (1 + |x|) is elliott"\n  x / (1 + abs(x)) -> elliott(x)\n')
    g = fusec.parse("graph g(x: f64[7, 33]) {\n  y = x / (1 + abs(x))\n  return y\n}\n")
    program = fusec.compile(g, backend=backend, rules=rules, rewrite=("exact",), tune_db=False)
    assert "elliott" in program.show("rules")
    (x,) = _inputs(g, seed=5)
    assert compare_output(g, "y", program(x), evaluate(g, [x])["y"]) is None


def test_the_new_op_appears_in_random_graphs(elliott):
    cfg = GenConfig(dtypes=("f32", "f64"), max_ops=8)
    seen = 0
    for seed in range(1000):
        g, _ = random_graph(seed, cfg)
        seen += any(n.op == "elliott" for n in g.nodes())
    assert seen > 5


def test_unregistering_removes_the_op():
    register_op(ELLIOTT)
    unregister_op("elliott")
    assert "elliott" not in OPS
    with pytest.raises(FusecError, match="unknown op 'elliott'"):
        fusec.parse("graph g(x: f32[4]) { return elliott(x) }")


def test_register_refuses_a_duplicate_and_an_unknown_family():
    with pytest.raises(FusecError, match="already registered"):
        register_op(OPS["exp"])
    with pytest.raises(FusecError, match="unknown families"):
        register_op(OpDef("bogus", "elementwise", 1, unary_float_rule("bogus"), None, families=("trig",)))
    assert "bogus" not in OPS


# ------------------------------------------------------------------------------ the table is read


def test_every_elementwise_op_has_a_spelling_for_both_backends():
    for name, op in OPS.items():
        if op.kind == "elementwise" and not op.is_composite:  # a composite is spelled by its expansion
            assert op.numpy_code is not None, name
            assert op.c_code is not None or op.c_vector is not None, name


def test_comparisons_are_one_family():
    assert ops_in_family("comparison") == ("eq", "ne", "lt", "le", "gt", "ge")
    for name in ops_in_family("comparison"):
        assert OPS[name].infix is not None


def test_no_module_keeps_its_own_comparison_list():
    # the modules this change owns ask the table (ops_in_family("comparison")) instead
    owned = ["fusec/codegen/c_emit.py", "fusec/codegen/c_passes.py",
             "fusec/tune/model.py", "fusec/fusion/cost.py", "fusec/interp.py"]  # fmt: skip
    owned += [str(p.relative_to(ROOT)) for p in sorted((ROOT / "fusec" / "testing").glob("graphgen*.py"))]
    owned += [str(p.relative_to(ROOT)) for p in sorted((ROOT / "fusec" / "codegen").glob("numpy_*.py"))]
    for path in owned:
        text = (ROOT / path).read_text()
        assert not re.search(r'"eq"\s*[,:][^\n]*"ne"', text), path  # a list or a dict of comparisons
        assert "OP_FLOPS" not in text and "EXPENSIVE = " not in text, path


def test_the_docs_op_table_lists_exactly_the_ops_of_the_table():
    text = (ROOT / "docs" / "language.md").read_text()
    documented: dict[str, set[str]] = {}
    for kind, cell in re.findall(r"^\| (\w+) \| (.+) \|$", text, flags=re.M):
        if kind in KINDS:
            words = re.sub(r"\([^)]*\)", " ", cell.replace("\\|", "|")).replace(";", " ").split()
            documented[kind] = {w for w in words if w != "composites"}
    table = {kind: {n for n, op in OPS.items() if op.kind == kind} for kind in KINDS}
    assert documented == table
