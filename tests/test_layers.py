"""Imports point down the layers of docs/architecture.md, never up. This test reads every module's
imports (including ones inside functions) and fails on any that climbs a layer."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fusec"

# Layer of each part of the package; a module may import its own layer or lower ones.
LAYERS = {
    "fusec.errors": 0,
    "fusec.lazy": 0,
    "fusec.ir": 0,
    "fusec.frontend": 1,
    "fusec.interp": 1,
    "fusec.inputs": 1,
    "fusec.tolerance": 1,
    "fusec.testing": 1,
    "fusec.runtime": 1,
    "fusec.rewrite": 2,
    "fusec.fusion": 3,
    "fusec.loops": 4,
    "fusec.codegen": 5,
    "fusec.tune": 6,
    "fusec.pipeline": 7,
    "fusec.api": 7,
    "fusec.bisect": 7,
    "fusec.bench": 7,
    "fusec.cli": 7,
    "fusec": 7,  # fusec/__init__.py and fusec/__main__.py: the public API
}

# The runtime can be tested with hand-written C, so it may import nothing of the compiler.
RUNTIME_MAY_IMPORT = ("fusec.errors", "fusec.ir", "fusec.runtime")


def layer_of(module: str) -> tuple[str, int]:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return best, LAYERS[best]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return [(m, line) for m, line in found if m == "fusec" or m.startswith("fusec.")]


def test_every_package_part_has_a_layer():
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))  # raises if a new top-level part has no layer


def test_imports_point_down():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = module_name(path)
        my_part, my_layer = layer_of(me)
        for target, line in imports_of(path):
            part, layer = layer_of(target)
            if layer > my_layer:
                violations.append(f"{path.name}:{line}: {me} (layer {my_layer}) imports {target} (layer {layer})")
            elif my_part == "fusec.runtime" and not target.startswith(RUNTIME_MAY_IMPORT):
                violations.append(f"{path.name}:{line}: the runtime imports a compiler stage: {target}")
    assert not violations, "imports that climb the layers:\n" + "\n".join(violations)


def test_the_checker_catches_an_upward_import(tmp_path):
    bad = PACKAGE / "ir" / "_layer_probe_tmp.py"
    bad.write_text("from fusec.fusion.plan import Plan\n")
    try:
        me = module_name(bad)
        (target, _), = imports_of(bad)
        assert layer_of(target)[1] > layer_of(me)[1]
    finally:
        bad.unlink()
