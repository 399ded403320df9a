"""Layer 1: text (and, later, traced Python) into Graph."""

from fusec.frontend.parser import load, parse

__all__ = ["load", "parse"]
