"""The op table: one row per op, and the one place the rest of the compiler imports it from.

Each row (`OpDef`) says everything the compiler knows about an op: its kind (elementwise, broadcast,
reduce, layout, opaque; the fusion planner reasons with these), arity and attributes, the
shape/dtype rule, the NumPy reference the interpreter calls, the composite expansion if any, the
cost (flops per element, and whether it is transcendental), its families (comparison, commutative,
...) and how each backend spells it. Graph leaves are the pseudo-ops `input` and `const` (kind `leaf`).

* `ops_registry.py`: the row type, the registry, spellings, attribute and arity checks;
* `ops_rules.py`: the shape/dtype rules;
* `ops_elementwise.py`, `ops_math.py`, `ops_activation.py`, `ops_logical.py`, `ops_reduce.py`,
  `ops_stats.py`, `ops_layout.py`: the rows, by family.

Adding an op is adding a row, or calling `register_op(OpDef(...))` (docs/howto/add_an_op.md).
"""

from __future__ import annotations

from fusec.ir import ops_activation, ops_elementwise, ops_layout, ops_logical, ops_math, ops_reduce, ops_stats
from fusec.ir.ops_registry import (
    BINARY_INFIX,
    FAMILIES,
    KINDS,
    OPS,
    REQUIRED,
    AttrSpec,
    OpDef,
    Spelling,
    check_arity,
    check_attrs,
    default_attrs,
    literal_context_dtype,
    op_named,
    op_of_cost_name,
    ops_in_family,
    ops_where,
    register_all,
    register_op,
    select_spelling,
    split_cost_name,
    unregister_op,
)
from fusec.ir.ops_rules import reduce_axes, resolve_reshape, slice_bounds, squeeze_axes, transpose_perm

register_all(ops_elementwise.ROWS + ops_math.ROWS + ops_activation.ROWS + ops_logical.ROWS + ops_reduce.ROWS
             + ops_stats.ROWS + ops_layout.ROWS)

__all__ = [
    "BINARY_INFIX", "FAMILIES", "KINDS", "OPS", "REQUIRED", "AttrSpec", "OpDef", "Spelling", "check_arity",
    "check_attrs", "default_attrs", "literal_context_dtype", "op_named", "op_of_cost_name", "ops_in_family", "ops_where",
    "reduce_axes", "register_op", "resolve_reshape", "select_spelling", "slice_bounds", "split_cost_name", "squeeze_axes",
    "transpose_perm", "unregister_op",
]  # fmt: skip
