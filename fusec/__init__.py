"""fusec: an operator-fusion compiler for AI compute graphs.

    import fusec
    g = fusec.load("examples/03_softmax.fg", sizes={"N": 64, "D": 64})
    y = fusec.interpret(g, x)
"""

from fusec.api import Compiled, compile
from fusec.errors import FusecError
from fusec.frontend import fn, load, parse, trace
from fusec.interp import interpret
from fusec.ir import Graph

__version__ = "0.1.0"
__all__ = ["Compiled", "FusecError", "Graph", "compile", "fn", "interpret", "load", "parse", "trace", "__version__"]
