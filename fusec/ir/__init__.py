"""Layer 0: the op-graph IR (dtypes, the op table, Graph, printer). Imports no other fusec stage."""

from fusec.ir.dtypes import ALL_DTYPES, BOOL, DTYPES, F32, F64, I32, I64, DType, TensorType, broadcast_shapes
from fusec.ir.graph import Expectation, Graph, Node
from fusec.ir.ops import KINDS, OPS, OpDef, op_named
from fusec.ir.printer import print_graph

__all__ = [
    "ALL_DTYPES", "DTYPES", "BOOL", "F32", "F64", "I32", "I64", "DType", "TensorType", "broadcast_shapes",
    "Expectation", "Graph", "Node", "KINDS", "OPS", "OpDef", "op_named", "print_graph",
]
