"""Element types, tensor types and NumPy-style broadcasting.

fusec has five dtypes. Their promotion is NumPy's with one ML-friendly change: an integer mixed
with a float gives that float (NumPy would widen i32 * f32 to f64, which no ML framework does).
A scalar *literal* in source (`x * 2`) is "weak": it takes the dtype of the tensor it meets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusec.errors import FusecTypeError


@dataclass(frozen=True)
class DType:
    name: str  # as written in .fg source: f32
    numpy: np.dtype  # the NumPy dtype used by the interpreter
    c_type: str  # the C99 spelling used by the C backend
    is_float: bool
    is_int: bool
    rank: int  # position in the promotion order

    @property
    def itemsize(self) -> int:
        return self.numpy.itemsize

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name


BOOL = DType("bool", np.dtype(np.bool_), "bool", False, False, 0)
I32 = DType("i32", np.dtype(np.int32), "int32_t", False, True, 1)
I64 = DType("i64", np.dtype(np.int64), "int64_t", False, True, 2)
F32 = DType("f32", np.dtype(np.float32), "float", True, False, 3)
F64 = DType("f64", np.dtype(np.float64), "double", True, False, 4)

ALL_DTYPES = (F32, F64, I32, I64, BOOL)
DTYPES = {d.name: d for d in ALL_DTYPES}


def dtype_named(name: str) -> DType:
    try:
        return DTYPES[name]
    except KeyError:
        raise FusecTypeError(f"unknown dtype '{name}' (expected one of {', '.join(DTYPES)})") from None


def dtype_of_numpy(dt: np.dtype) -> DType:
    for d in ALL_DTYPES:
        if d.numpy == np.dtype(dt):
            return d
    raise FusecTypeError(f"unsupported NumPy dtype {np.dtype(dt)} (fusec supports {', '.join(DTYPES)})")


def promote(a: DType, b: DType) -> DType:
    """The result dtype of a binary arithmetic op: the higher of the two in bool < i32 < i64 < f32 < f64."""
    return a if a.rank >= b.rank else b


def literal_dtype(value: float | int | bool, context: DType | None) -> DType:
    """The dtype a weak scalar literal takes next to a tensor of dtype `context`.

    Ints adopt the context; floats adopt a float context and become f32 next to integers or bools;
    with no context, ints are i32, floats f32 and true/false bool.
    """
    if isinstance(value, bool):
        return context if context is not None else BOOL
    if isinstance(value, int):
        if context is None or context == BOOL:
            return I32 if context is None else I32
        return context
    if context is not None and context.is_float:
        return context
    return F32


Shape = tuple[int, ...]


@dataclass(frozen=True)
class TensorType:
    dtype: DType
    shape: Shape

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __str__(self) -> str:
        return f"{self.dtype.name}[{', '.join(str(d) for d in self.shape)}]"


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting: align on the right; each dimension must match or be 1."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        dim = 1
        for s in shapes:
            k = i - (rank - len(s))
            if k < 0:
                continue
            d = s[k]
            if d == 1 or d == dim:
                continue
            if dim != 1:
                listed = " and ".join(f"[{', '.join(map(str, s))}]" for s in shapes)
                raise FusecTypeError(f"shapes {listed} do not broadcast (dimension {i}: {dim} vs {d})")
            dim = d
        out.append(dim)
    return tuple(out)


def normalize_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:  # a scalar (rank 0) has no axes at all, as in NumPy
        raise FusecTypeError(f"axis {axis} is out of range for a tensor of rank {rank}")
    return axis % rank
