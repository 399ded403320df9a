"""How C spells fusec's values and ops: literals, the op table's C templates filled with operands,
the names C reserves, and the prelude every kernel source starts with (fusec_math.h and helpers).

Separate from c_emit.py, which walks a loop nest and writes statements and loops: this module knows
nothing of nests, only of one value or one op at a time (as numpy_spelling.py does for the NumPy
backend).
"""

from __future__ import annotations

import math
import re

import numpy as np

from fusec.ir.dtypes import BOOL, F32, I32, I64, DType
from fusec.ir.ops import OPS, default_attrs, select_spelling
from fusec.loops.ir import Op

C_KEYWORDS = set(
    """auto break case char const continue default do double else enum extern float for goto if inline int
    long register restrict return short signed sizeof static struct switch typedef union unsigned void
    volatile while bool true false main min max exp log sqrt tanh erf pow fabs abs expf logf sqrtf tanhf
    erff powf fabsf fmaf copysignf trunc NAN INFINITY assert int32_t int64_t uint32_t uint64_t
    omp_get_wtime""".split()  # keywords, and library names a parameter must not shadow
)
UNSIGNED = {I32.name: "uint32_t", I64.name: "uint64_t"}
PRELUDE = """\
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include "fusec_math.h"

#ifdef FUSEC_BOUNDS_CHECK
#include <assert.h>
/* sanitize mode: every element index is checked against its buffer's size */
#define FUSEC_AT(i, n) (assert((i) >= 0 && (i) < (n)), (i))
#else
#define FUSEC_AT(i, n) (i)
#endif

/* NaN-propagating maximum and minimum, as NumPy's np.maximum / np.minimum */
static inline float fusec_maxf(float a, float b) { return (a > b || a != a) ? a : b; }
static inline float fusec_minf(float a, float b) { return (a < b || a != a) ? a : b; }
static inline double fusec_max(double a, double b) { return (a > b || a != a) ? a : b; }
static inline double fusec_min(double a, double b) { return (a < b || a != a) ? a : b; }
static inline int64_t fusec_min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

/* where(c, a, b) with both a and b evaluated, as NumPy evaluates them. Written as c ? a[i] : b[i],
 * the load of a[i] is conditional, and gcc 12.2 at -O3 -march=native vectorizes it as a masked load
 * that it gets wrong for a uint8 condition under an outer loop (tests/regressions/011). */
static inline float fusec_wheref(bool c, float a, float b) { return c ? a : b; }
static inline double fusec_where(bool c, double a, double b) { return c ? a : b; }
static inline int32_t fusec_where_i32(bool c, int32_t a, int32_t b) { return c ? a : b; }
static inline int64_t fusec_where_i64(bool c, int64_t a, int64_t b) { return c ? a : b; }
static inline bool fusec_where_bool(bool c, bool a, bool b) { return c ? a : b; }

/* float -> integer, truncating toward zero, as NumPy does on x86-64: NaN, inf and out-of-range values
 * give the minimum integer. Done with integer operations on the bits instead of C's (int)x: C leaves
 * out-of-range conversions undefined, and gcc (with -fno-trapping-math) folds (float)(int)x into
 * truncf(x), which gives -0.0 for x in (-1, 0) where NumPy gives +0.0. */
static inline int64_t fusec_truncate_bits(double x, int64_t max_exponent, int64_t minimum)
{
    union { double d; uint64_t u; } v;
    v.d = x;
    int64_t e = (int64_t)((v.u >> 52) & 0x7ff) - 1023;                     /* unbiased exponent */
    uint64_t m = (v.u & 0x000fffffffffffffULL) | 0x0010000000000000ULL;  /* 53-bit significand */
    int64_t down = 52 - e, up = e - 52;
    uint64_t magnitude = e >= 52 ? m << (up < 11 ? up : 11) : m >> (down < 63 ? down : 63);
    int64_t value = (v.u >> 63) ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
    return e > max_exponent ? minimum : value;
}
static inline int32_t fusec_f2i32(double x) { return (int32_t)fusec_truncate_bits(x, 30, INT32_MIN); }
static inline int64_t fusec_f2i64(double x) { return fusec_truncate_bits(x, 62, INT64_MIN); }
"""


def c_literal(value, dtype: DType) -> str:
    """A C literal of exactly this value and type (floats round-trip through repr)."""
    if dtype == BOOL:
        return "true" if value else "false"
    if dtype.is_int:
        v = int(value)
        if dtype == I32:
            return "(-2147483647 - 1)" if v == -(2**31) else str(v)
        if -(2**31) < v < 2**31:
            return str(v)
        return "INT64_MIN" if v == -(2**63) else f"INT64_C({v})"
    v = float(value)
    suffix = "f" if dtype == F32 else ""
    if math.isnan(v):
        return "NAN" if dtype == F32 else "(double)NAN"
    if math.isinf(v):
        inf = "INFINITY" if dtype == F32 else "(double)INFINITY"
        return inf if v > 0 else f"-{inf}"
    # the shortest decimal that reads back as exactly this float32 / float64
    text = str(np.float32(v)) if dtype == F32 else repr(v)
    if "e" not in text and "." not in text and "inf" not in text:
        text += ".0"
    return text + suffix


def bare_expr(text: str) -> str:
    """text without one pair of enclosing parentheses, when they enclose all of it."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for pos, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and pos < len(text) - 1:
            return text
    return text[1:-1]


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def c_spelling(e: Op) -> str | None:
    """The C template of an op at its dtype: float32 uses the row's fast vector function if it has one."""
    op = OPS.get(e.op)
    if op is None:
        return None
    if op.c_vector is not None and e.dtype == F32:
        return f"{op.c_vector}({', '.join(f'{{{k}}}' for k in range(len(e.args)))})"
    attrs = default_attrs(op) | dict(e.attrs)
    return select_spelling(op.c_code, e.dtype, e.args[0].dtype if e.args else None, attrs)


def _whole_call_argument(template: str, start: int, end: int) -> bool:
    """Whether template[start:end] is a whole argument of a function call, as in `f({0}, {1})`."""
    before, after = template[:start], template[end:]
    opens_call = before.endswith("(") and len(before) > 1 and (before[-2].isalnum() or before[-2] == "_")
    return (opens_call or before.endswith(", ")) and after[:1] in (")", ",")


_ATOMIC = re.compile(r"[A-Za-z_]\w*(\[[^\[\]]*\])?|[0-9][0-9.e+]*f?")


def fill_c_template(template: str, args: list[str], dtype: DType) -> str:
    """Substitute operands and type names into a C template. An operand that is a whole argument of a
    call needs no parentheses of its own: `expf(x + y)`, not `expf((x + y))`; nor does a name, an
    element or a number after a cast: `(double)acc`, not `(double)(acc)`."""
    template = re.sub(r"\)\(\{(\d+)\}\)",
                      lambda m: ")" + m.group(0)[2:-1] if _ATOMIC.fullmatch(args[int(m.group(1))]) else m.group(0), template)
    names = {
        "ctype": dtype.c_type,
        "utype": UNSIGNED.get(dtype.name, ""),
        "one": c_literal(1.0, dtype),
        "zero": c_literal(0, dtype),
    }

    def fill(m: re.Match) -> str:
        key = m.group(1)
        if not key.isdigit():
            return names[key]
        text = args[int(key)]
        if _whole_call_argument(template, m.start(), m.end()):
            return bare_expr(text)
        return f"({text})" if text.startswith("-") else text  # `-(-INFINITY)`, never `--INFINITY`

    return _PLACEHOLDER.sub(fill, template)
