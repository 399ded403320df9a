"""Layer 1: text (and, later, traced Python) into Graph."""

from fusec.frontend.parser import load, parse
from fusec.frontend.trace import Traced, fn, trace

__all__ = ["Traced", "fn", "load", "parse", "trace"]
