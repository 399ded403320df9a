"""`fusec fmt` keeps what the user wrote: names, nested expressions and comments; it is a fixpoint,
and every shipped example is already in its canonical form."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import EXAMPLES

import fusec
from fusec.errors import FusecError
from fusec.ir.printer import print_graph


def fusec_cli(*args):
    return subprocess.run([sys.executable, "-m", "fusec", *map(str, args)], capture_output=True, text=True)


COMMENTED = """\
# header comment
graph g<N=4>(x: f32[N], w: f32[N]) {  # on the header line
  # above m
  m = max(x, axis=-1, keepdims=true)  # after m
  e = exp(x - m)
  # above the assertion
  assert kernels <= 2  # after the assertion
  # above the return
  return y = e / sum(e, axis=-1, keepdims=true) * w  # after the return
  # at the end
}
"""


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_is_in_canonical_form(path):
    text = path.read_text()
    assert print_graph(fusec.parse(text, filename=str(path))) == text
    assert fusec_cli("fmt", "--check", path).returncode == 0


def test_comments_names_and_expressions_survive_and_fmt_is_a_fixpoint():
    once = print_graph(fusec.parse(COMMENTED))
    assert once == COMMENTED  # already canonical: nothing moved, nothing renamed, nothing lost
    assert print_graph(fusec.parse(once)) == once


def test_a_comment_survives_fmt_in_place(tmp_path):
    f = tmp_path / "g.fg"
    f.write_text("# keep me\ngraph g(x: f32[3]) {   y=exp(x*2)   # and me\n  # me too\n return y }")
    assert fusec_cli("fmt", "-i", f).returncode == 0
    assert f.read_text() == "# keep me\ngraph g(x: f32[3]) {\n  y = exp(x * 2)  # and me\n  # me too\n  return y\n}\n"
    assert fusec_cli("fmt", "--check", f).returncode == 0


def test_commented_parameters_get_lines_of_their_own():
    src = "graph g(\n    # the data\n    x: f32[3],  # after x\n    w: f32[3]) {\n  return x * w\n}\n"
    assert print_graph(fusec.parse(src)) == src


def test_graph_equality_ignores_comments():
    assert fusec.parse(COMMENTED) == fusec.parse(COMMENTED.replace("# above m", "# something else"))


def test_a_named_return_is_a_named_output_printed_back_in_the_return_line():
    g = fusec.parse("graph g(x: f32[3]) { e = exp(x)\n return y = e / 2, e }")
    assert g.outputs == ["y", "e"] and g.node("y").op == "div"
    assert print_graph(g).splitlines()[-2] == "  return y = e / 2, e"
    with pytest.raises(FusecError, match="must name a computed value"):
        fusec.parse("graph g(x: f32[3]) { return y = x }")
    with pytest.raises(FusecError, match="'x' is already defined"):
        fusec.parse("graph g(x: f32[3]) { return x = exp(x) }")


@pytest.mark.parametrize(
    "expr",
    ["(x + w) * w", "x - (w - x)", "-(x + w)", "(-x) ** 2", "x ** -w", "(x ** w) ** 2", "x / (w * x)", "-x * w",
     "(x < w) == (w < x)", "x - -1", "abs(x) @ transpose(w)"],
)
def test_nested_expressions_print_with_only_the_parentheses_they_need(expr):
    src = f"graph g(x: f32[3, 3], w: f32[3, 3]) {{\n  return {expr}\n}}\n"
    g = fusec.parse(src)
    text = print_graph(g)
    assert fusec.parse(text) == g and print_graph(fusec.parse(text)) == text
    assert text == src or expr.startswith("(-x)")  # (-x) ** 2 is printed the same way, -x needs them


def test_a_long_chain_of_unnamed_values_is_split_rather_than_nested_without_bound():
    src = "graph g(x: f32[3]) {\n  return " + "exp(" * 30 + "x" + ")" * 30 + "\n}\n"
    text = print_graph(fusec.parse(src))
    assert max(line.count("exp(") for line in text.splitlines()) <= 9
    assert print_graph(fusec.parse(text)) == text


def test_fmt_check_takes_every_example_at_once():
    r = fusec_cli("fmt", "--check", *EXAMPLES)
    assert r.returncode == 0, r.stderr


def test_fmt_check_names_every_file_out_of_form_and_in_place_rewrites_each(tmp_path):
    messy = "graph g(x: f32[4]) {\n  # kept\n  y = exp(x)   # also kept\n  return y*2\n}\n"
    paths = [tmp_path / "a.fg", tmp_path / "b.fg", tmp_path / "c.fg"]
    for p in paths[:2]:
        p.write_text(messy)
    paths[2].write_text(print_graph(fusec.parse(messy)))
    r = fusec_cli("fmt", "--check", *paths)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"{paths[0]}: not in canonical form", f"{paths[1]}: not in canonical form"]
    r = fusec_cli("fmt", "-i", *paths)
    assert r.returncode == 0, r.stderr
    for p in paths:
        assert p.read_text() == "graph g(x: f32[4]) {\n  # kept\n  y = exp(x)  # also kept\n  return y * 2\n}\n"
    assert fusec_cli("fmt", "--check", *paths).returncode == 0


def test_fmt_in_place_changes_no_file_when_one_has_a_mistake(tmp_path):
    good, bad = tmp_path / "good.fg", tmp_path / "bad.fg"
    good.write_text("graph g(x: f32[4]) { return x*2 }\n")
    bad.write_text("graph g(x: f32[4]) { return frob(x) }\n")
    r = fusec_cli("fmt", "-i", good, bad)
    assert r.returncode == 2 and "unknown op 'frob'" in r.stderr
    assert good.read_text() == "graph g(x: f32[4]) { return x*2 }\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.fg", "good.fg"]


def test_fmt_prints_one_file_only():
    r = fusec_cli("fmt", *EXAMPLES[:2])
    assert r.returncode == 2 and "use --check or -i" in r.stderr
