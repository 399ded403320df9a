"""What the random-graph generator may produce (GenConfig) and the sizes it draws from.

Separate from the generator so a test can name a configuration, or the odd sizes, without reading
how graphs are built.
"""

from __future__ import annotations

from dataclasses import dataclass

from fusec.ir.dtypes import DType

# sizes: 1 (broadcasts), small primes and sizes that are not a multiple of 4, 8 or 16, plus a few
# that are, so tiled code sees both full and ragged tiles
ODD_SIZES = (1, 2, 3, 5, 7, 8, 11, 13, 16, 17, 31, 33)


@dataclass(frozen=True)
class GenConfig:
    """What the generator may produce. The defaults exercise everything at small sizes."""

    max_ops: int = 8
    max_inputs: int = 3
    max_rank: int = 3
    max_elements: int = 2048  # per tensor, so interpreting a graph takes milliseconds
    sizes: tuple[int, ...] = ODD_SIZES
    dtypes: tuple[str, ...] = ("f32", "f64", "i32", "i64", "bool")
    float_weight: int = 4  # floats are where fusion bugs live: draw them this many times as often
    matmul: bool = True
    composites: bool = True
    layout: bool = True
    reductions: bool = True
    allow_empty: bool = False  # zero-size dimensions
    named_dims: bool = True  # some inputs written with dimension names (N, D)
    user_names: bool = True  # some values get user names, the rest compiler temporaries
    max_outputs: int = 3

    def allowed(self, dtype: DType) -> bool:
        return dtype.name in self.dtypes
