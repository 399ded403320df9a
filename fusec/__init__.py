"""fusec: an operator-fusion compiler for AI compute graphs.

    import fusec
    g = fusec.load("examples/03_softmax.fg", sizes={"N": 64, "D": 64})
    y = fusec.interpret(g, x)

The names below are imported on first use (PEP 562), so `import fusec.cli.main` or
`import fusec.errors` does not load the whole compiler, NumPy and networkx: `fusec --help` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from fusec.lazy import lazy_names

__version__ = "0.1.0"
__all__ = [
    "Compiled", "FusecError", "Graph", "Tensor", "compile", "fn", "from_onnx", "interpret", "jit", "load", "ops", "parse", "trace",
    "__version__",
]  # fmt: skip

# public name -> the module that defines it
_LAZY = {
    "Compiled": "fusec.api",
    "compile": "fusec.api",
    "jit": "fusec.api",
    "FusecError": "fusec.errors",
    "Tensor": "fusec.frontend",
    "from_onnx": "fusec.frontend.onnx_import",
    "fn": "fusec.frontend",
    "load": "fusec.frontend",
    "parse": "fusec.frontend",
    "trace": "fusec.frontend",
    "interpret": "fusec.interp",
    "Graph": "fusec.ir",
}


_SUBMODULES = {"ops"}  # fusec.ops: one tracing function per op row


_lazy_getattr, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"fusec.{name}")
    return _lazy_getattr(name)


if TYPE_CHECKING:
    from fusec import ops
    from fusec.api import Compiled, compile, jit
    from fusec.errors import FusecError
    from fusec.frontend import Tensor, fn, load, parse, trace
    from fusec.frontend.onnx_import import from_onnx
    from fusec.interp import interpret
    from fusec.ir import Graph
