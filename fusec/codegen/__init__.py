"""Layer 5: code generation. A backend turns a LoopNest (plus a Schedule) into a callable Kernel.

    base.py           the Backend interface and the Kernel record
    numpy_backend.py  readable tiled NumPy source (works everywhere): the tile loops and the function,
                      over numpy_blocks.py (a block's statements), numpy_exprs.py (expressions on a
                      tile) and numpy_spelling.py (ops, literals, constants as NumPy text)
    c_backend.py      C99 + OpenMP, compiled with the system compiler and loaded with ctypes, over
                      c_emit.py (a nest's statements and loops as C), c_spelling.py (literals, op
                      templates, the prelude) and the passes c_passes.py, c_prefetch.py,
                      c_reciprocal.py, c_width.py
"""

from __future__ import annotations

import importlib

from fusec.codegen.base import Backend, Kernel

BACKENDS = ("numpy", "c")


def get_backend(name: str, **options) -> Backend:
    """The backend called `name`. Options go to its constructor (e.g. the C backend's flags)."""
    if name == "numpy":
        from fusec.codegen.numpy_backend import NumpyBackend

        return NumpyBackend(**options)
    if name == "c":
        module = importlib.import_module("fusec.codegen.c_backend")
        return module.CBackend(**options)
    raise ValueError(f"unknown backend {name!r} (expected one of {', '.join(BACKENDS)})")


__all__ = ["BACKENDS", "Backend", "Kernel", "get_backend"]
