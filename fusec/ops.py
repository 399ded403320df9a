"""`fusec.ops`: one tracing function per row of the op table, for functions that fusec.jit traces.

    @fusec.jit
    def f(x):
        return fusec.ops.gelu(x, approximate="tanh") + fusec.ops.softmax(x, axis=-1)

Each function adds one node of its op (`help(fusec.ops.softmax)` shows the row's operands, attributes
and doc). The functions are made from the table, so a row added later (`register_op`) is here too.
"""

from __future__ import annotations

from fusec.frontend.trace import op_function
from fusec.ir.ops import OPS


def __getattr__(name: str):
    return op_function(name)


def __dir__() -> list[str]:
    return sorted(n for n, o in OPS.items() if o.kind != "leaf")


globals().update({name: op_function(name) for name in __dir__()})
