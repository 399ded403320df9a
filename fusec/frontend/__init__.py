"""Layer 1: text, traced Python and ONNX models into Graph."""

from fusec.frontend import numpy_api  # noqa: F401  (registers NumPy's protocols on Tensor)
from fusec.frontend.parser import load, parse
from fusec.frontend.tensor import Tensor
from fusec.frontend.trace import Traced, fn, trace

__all__ = ["Tensor", "Traced", "fn", "load", "parse", "trace"]
