"""No import circles inside fusec: every module can be read (and imported) after the ones it uses.

The test builds the graph of fusec's own imports and asserts it is acyclic. It counts every import
that runs, at module level or inside a function (a lazy import hides a circle from Python, not from
a reader), and skips only `if TYPE_CHECKING:` blocks, which never run. `from fusec.ir import dot`
counts as an import of the module fusec.ir.dot; the implicit import of a package's __init__ when
one of its submodules is imported is not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "fusec"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST):
    """Import statements that can run: everywhere except under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path = PACKAGE) -> nx.DiGraph:
    """module -> module it imports, for the modules under `root` (a package directory)."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for me, path in modules.items():
        for node in _runtime_imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif node.level == 0 and node.module:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names]
            else:
                continue
            for target in targets:
                if target in modules and target != me:
                    graph.add_edge(me, target, line=node.lineno)
    return graph


def describe_cycles(graph: nx.DiGraph) -> list[str]:
    out = []
    for cycle in nx.simple_cycles(graph):
        steps = [f"{a} (line {graph.edges[a, b]['line']})" for a, b in zip(cycle, cycle[1:] + cycle[:1])]
        out.append(" -> ".join(steps) + f" -> {cycle[0]}")
    return out


def test_fusec_has_no_import_cycles():
    cycles = describe_cycles(import_graph())
    assert not cycles, "import circles inside fusec:\n" + "\n".join(cycles)


def test_the_checker_finds_a_lazy_circle_and_ignores_type_checking(tmp_path):
    pkg = tmp_path / "fusec"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from fusec.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from fusec import a\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fusec.a import f\n")
    graph = import_graph(pkg)
    assert set(graph.edges) == {("fusec.a", "fusec.b"), ("fusec.b", "fusec.a")}
    (cycle,) = describe_cycles(graph)
    assert "fusec.a" in cycle and "fusec.b" in cycle
