"""`fusec import MODEL.onnx -o MODEL.fg`: read an ONNX model and write it as .fg text.

Tensor initializers (weights) become graph inputs; their values go to an .npz next to the output
(`MODEL.weights.npz`); add the other inputs to it to pass them all to `fusec run MODEL.fg --inputs`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fusec.errors import FusecError
from fusec.frontend.onnx_import import import_onnx


def _sizes(pairs: list[str]) -> dict[str, int]:
    sizes = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not value.strip().lstrip("-").isdigit():
            raise FusecError(f"--set expects NAME=INT, got '{pair}'")
        sizes[name.strip()] = int(value)
    return sizes


def cmd_import(args: argparse.Namespace) -> int:
    imported = import_onnx(args.model, sizes=_sizes(args.set or []))
    text = str(imported.graph)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    out.write_text(text)
    graph = imported.graph
    message = f"wrote {out}: graph {graph.name}, {len(graph.inputs)} inputs, {len(graph.ops())} ops"
    if imported.weights:
        weights = out.with_suffix(".weights.npz")
        np.savez(weights, **imported.weights)
        message += f"; {len(imported.weights)} initializers as inputs, values in {weights}"
    print(message)
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "import",
        help="import an ONNX model as a .fg graph",
        description="Read an ONNX model (needs the onnx extra) and write it as .fg text.",
    )
    p.add_argument("model", help="the .onnx file")
    p.add_argument("-o", "--output", help="the .fg file to write (default: print it)")
    p.add_argument("--set", action="append", metavar="NAME=INT", help="size of a symbolic input dimension")
    p.set_defaults(handler=cmd_import)
