"""Loop nest -> readable C99 source. One function per nest; no compiling here (see c_backend).

The generated code looks like this (chain, 4096x4096):

    /* fusec kernel fused_chain (elementwise)
     *   in  x: f32[4096, 4096]
     *   out y: f32[4096, 4096]
     */
    void fused_chain(const float *restrict x, float *restrict y)
    {
        #pragma omp parallel for schedule(static)
        for (int64_t i0_o = 0; i0_o < 1024; i0_o++) {
            ...
            #pragma omp simd
            for (int64_t i0_i = 0; i0_i < 16384; i0_i++) {
                const float x_0 = x[i0];
                y[i0] = ...;
            }
        }
    }

Semantics follow NumPy, which the interpreter uses (see fusec/loops/ir.py):

* integer add/sub/mul/neg wrap around (computed in unsigned arithmetic: signed overflow is
  undefined in C); integer sums and products accumulate in unsigned types for the same reason;
* maximum/minimum and the max/min reductions propagate NaN (a vectorised reduction keeps a
  separate "saw a NaN" flag, because OpenMP's max reduction does not promise NaN handling);
* float32 exp/log/tanh/erf/sigmoid/gelu use fusec_math.h (vectorizable, accuracy stated there);
  float64 uses the C library;
* a bool buffer is a `uint8_t *` (NumPy's bool is one byte, 0 or 1): gcc does not vectorize loads
  of C's `_Bool` (a masked mean over bool[1e6] took 8.8 ms that way, 0.17 ms as bytes);
* a float sum or product over a long axis arrives in blocks (fusec/loops/blocked.py): an f32 partial
  per block, summed by the vector loop, added to a double total.

In sanitize mode every load and store index goes through FUSEC_AT(index, size), an assertion.
"""

from __future__ import annotations

import math
import re

from fusec.codegen.c_prefetch import BlockPrefetch, plan_prefetches
from fusec.codegen.c_reciprocal import invariant_divisors, is_reciprocal_candidate
from fusec.codegen.c_spelling import C_KEYWORDS, PRELUDE, UNSIGNED, bare_expr, c_literal, c_spelling, fill_c_template
from fusec.codegen.c_width import loop_width_clause, simd_width_clause
from fusec.ir.dtypes import BOOL, DType
from fusec.loops.ir import (
    AccInit,
    AccUpdate,
    Const,
    Div,
    Expr,
    Index,
    IndexValue,
    Let,
    LetIndex,
    Load,
    LocalArray,
    Loop,
    LoopNest,
    Min,
    Mod,
    Op,
    Piecewise,
    Ref,
    Stmt,
    Store,
    walk,
)

INDENT = "    "
LONG_EXPR = 80  # characters: a longer expression is split into named temporaries
# Below this many points a kernel runs on one thread: waking a second one costs microseconds on a
# quiet machine and a whole scheduler time slice (milliseconds) on a busy one.
MIN_PARALLEL_WORK = 32768


class CEmitter:
    """Emits one LoopNest as a C function. Names from the nest are made valid, unique C identifiers."""

    def __init__(self, nest: LoopNest, bounds_check: bool = False):
        self.nest = nest
        self.bounds_check = bounds_check
        self.names: dict[str, str] = {}
        self.taken: set[str] = set()
        self.acc_types: dict[str, tuple[str, DType]] = {}  # accumulator -> (its op, its dtype)
        self.vector_depth = 0  # > 0 inside an `omp simd` loop
        self.temp_count = 0
        self.row_arrays: dict[str, int] = {}  # local arrays (LocalArray) and their sizes
        # float max/min accumulators updated inside a vector loop keep a separate NaN flag
        # (only those declared outside that loop: the loop's reduction clause combines the lanes)
        self.flagged = {
            u.name
            for lp in walk(nest.body)
            if isinstance(lp, Loop) and lp.kind == "vector"
            for u in walk(lp.body)
            if isinstance(u, AccUpdate)
            and u.op in ("max", "min")
            and u.name not in {i.name for i in walk(lp.body) if isinstance(i, AccInit)}
        }
        self.acc_depth: dict[str, int] = {}  # vector-loop depth at each accumulator's declaration
        self.lines: list[str] = []
        self.work = math.prod(d.extent for d in nest.dims)  # points in the iteration space
        self.prefetches = plan_prefetches(nest)  # id(a blocked pass of a row) -> its prefetches
        self.reciprocals: dict[str, tuple[str, str]] = {}  # divisor -> (its reciprocal, "it is usable")
        # a tuned simdlen, else 512-bit vectors for kernels of transcendentals (fusec/codegen/c_width.py)
        tuned = nest.meta.get("simdlen")
        self.width_clause = f"simdlen({tuned})" if tuned else simd_width_clause(nest)

    # ------------------------------------------------------------------------------- names

    def cname(self, name: str) -> str:
        found = self.names.get(name)
        if found is not None:
            return found
        base = re.sub(r"\W", "_", name) or "v"
        if base[0].isdigit():
            base = "v" + base
        if base in C_KEYWORDS or base.startswith("fusec_"):
            base += "_"
        candidate, k = base, 1
        while candidate in self.taken:
            candidate, k = f"{base}_{k}", k + 1
        self.taken.add(candidate)
        self.names[name] = candidate
        return candidate

    def fresh_temp(self) -> str:
        """A new temporary: its key ('%t3') cannot clash with a nest name; its C name is t3 or similar."""
        while True:
            candidate = f"t{self.temp_count}"
            self.temp_count += 1
            if candidate not in self.taken:
                self.taken.add(candidate)
                self.names[f"%{candidate}"] = candidate
                return f"%{candidate}"

    # ----------------------------------------------------------------------------- indices

    def index(self, x: Index) -> str:
        parts: list[str] = []
        for atom, coef in x.terms:
            if isinstance(atom, str):
                text = self.cname(atom)
            elif isinstance(atom, Div):
                text = f"({self.index(atom.arg)}) / {atom.divisor}"
            elif isinstance(atom, Mod):
                text = f"({self.index(atom.arg)}) % {atom.divisor}"
            else:
                assert isinstance(atom, Min)
                text = f"fusec_min_i64({self.index(atom.a)}, {self.index(atom.b)})"
            if abs(coef) != 1:
                text = f"({text}) * {abs(coef)}" if isinstance(atom, (Div, Mod)) else f"{text} * {abs(coef)}"
            parts.append(f"-{text}" if coef < 0 else text)
        if x.const or not parts:
            parts.append(str(x.const))
        text = parts[0]
        for part in parts[1:]:  # a - b, not a + -b
            text += f" - {part[1:]}" if part.startswith("-") else f" + {part}"
        return text

    def element(self, buffer: str, idx: Index) -> str:
        text = self.index(idx)
        if self.bounds_check:
            size = self.row_arrays[buffer] if buffer in self.row_arrays else self.nest.buffer(buffer).size
            text = f"FUSEC_AT({text}, {size})"
        return f"{self.cname(buffer)}[{text}]"

    # --------------------------------------------------------------------------- expressions

    def expr(self, e: Expr) -> str:
        if isinstance(e, Const):
            return c_literal(e.value, e.dtype)
        if isinstance(e, Load):
            return self.element(e.buffer, e.index)
        if isinstance(e, Ref):
            acc = self.acc_types.get(e.name)
            name = self.cname(e.name)
            if acc is not None and acc[1].is_int and acc[0] in ("sum", "prod"):
                return f"({acc[1].c_type}){name}"  # unsigned accumulator, read as signed
            return name
        if isinstance(e, IndexValue):
            return f"({e.dtype.c_type})({self.index(e.index)})"
        if isinstance(e, Piecewise):
            # nested conditionals: only the chosen piece is evaluated (others may be out of bounds)
            idx = self.index(e.index)
            text = self.expr(e.pieces[-1])
            for bound, piece in zip(reversed(e.bounds[1:-1]), reversed(e.pieces[:-1])):
                text = f"(({idx}) < {bound} ? {self.expr(piece)} : {text})"
            return text
        assert isinstance(e, Op), e
        return self.op(e)

    def op(self, e: Op) -> str:
        """C for one op, from the template its row gives for this dtype (see fusec/ir/ops_registry.py)."""
        if is_reciprocal_candidate(e) and e.args[1].name in self.reciprocals:
            inv, ok = self.reciprocals[e.args[1].name]
            num, den = self.expr(e.args[0]), self.expr(e.args[1])
            return f"({ok} ? {num} * {inv} : {num} / {den})"  # fusec/codegen/c_reciprocal.py
        second = e.args[1] if len(e.args) == 2 else None
        if e.op == "add" and e.dtype.is_float and isinstance(second, Const) and second.value < 0:
            # x + -3.0f reads as x - 3.0f, and is the same IEEE operation (x - c is x + (-c)), bit for bit
            e = Op("sub", (e.args[0], Const(-second.value, second.dtype)), e.dtype)
        template = c_spelling(e)
        if template is None:
            raise NotImplementedError(f"the C backend has no spelling for op '{e.op}' ({e.dtype})")
        return fill_c_template(template, [self.expr(a) for a in e.args], e.dtype)

    # ---------------------------------------------------------------------------- statements

    def emit(self, line: str, depth: int) -> None:
        self.lines.append(INDENT * depth + line)

    def stmts(self, body: tuple[Stmt, ...], depth: int) -> None:
        for s in body:
            self.stmt(s, depth)

    def stmt(self, s: Stmt, depth: int) -> None:
        if isinstance(s, Loop):
            self.loop(s, depth)
        elif isinstance(s, LetIndex):
            self.emit(f"const int64_t {self.cname(s.var)} = {self.index(s.value)};", depth)
        elif isinstance(s, Let):
            value = self.readable_expr(s.value, depth)
            self.emit(f"const {s.value.dtype.c_type} {self.cname(s.name)} = {value};", depth)
        elif isinstance(s, Store):
            value = self.readable_expr(s.value, depth)
            self.emit(f"{self.element(s.buffer, s.index)} = {value};", depth)
        elif isinstance(s, AccInit):
            self.acc_types[s.name] = (s.op, s.dtype)
            self.acc_depth[s.name] = self.vector_depth
            ctype = UNSIGNED[s.dtype.name] if s.dtype.is_int and s.op in ("sum", "prod") else s.dtype.c_type
            self.emit(f"{ctype} {self.cname(s.name)} = {c_literal(s.identity, s.dtype)};", depth)
            if s.dtype.is_float and s.name in self.flagged:
                self.emit(f"int {self.cname(s.name)}_nan = 0;", depth)  # int: a bool reduction does not vectorize
        elif isinstance(s, AccUpdate):
            self.acc_update(s, depth)
        elif isinstance(s, LocalArray):
            self.row_arrays[s.name] = s.size
            ctype = "uint8_t" if s.dtype == BOOL else s.dtype.c_type  # as bool buffers: see the module docstring
            comment = f"  /* {s.comment} */" if s.comment else ""
            self.emit(f"{ctype} {self.cname(s.name)}[{s.size}];{comment}", depth)
        else:  # pragma: no cover - every statement type is listed above
            raise AssertionError(type(s))

    def readable_expr(self, e: Expr, depth: int) -> str:
        """C for e; a long expression is first broken into named temporaries (t0, t1, ...)."""
        text = bare_expr(self.expr(e))
        if len(text) <= LONG_EXPR or not isinstance(e, Op):
            return text
        args = []
        for a in e.args:
            if isinstance(a, Op) and len(self.expr(a)) > 24:
                key = self.fresh_temp()
                self.emit(f"const {a.dtype.c_type} {self.cname(key)} = {self.readable_expr(a, depth)};", depth)
                args.append(Ref(key, a.dtype))
            else:
                args.append(a)
        return bare_expr(self.expr(Op(e.op, tuple(args), e.dtype, e.attrs)))

    def acc_update(self, s: AccUpdate, depth: int) -> None:
        name = self.cname(s.name)
        op, dt = self.acc_types[s.name]
        value = self.expr(s.value)
        if dt == BOOL:
            sym = "|" if op in ("sum", "max") else "&"
            self.emit(f"{name} = {name} {sym} {value};", depth)
        elif op in ("sum", "prod"):
            sym = "+" if op == "sum" else "*"
            cast = f"({UNSIGNED[dt.name]})" if dt.is_int else ""
            self.emit(f"{name} = {name} {sym} {cast}{value};", depth)
        elif dt.is_float and self.vector_depth == self.acc_depth.get(s.name, 0):
            # no vector loop between declaration and update: max/min with NaN propagation, as
            # NumPy: a NaN value is taken, and once NaN, the accumulator stays NaN
            cmp = ">" if op == "max" else "<"
            tmp = self.cname(f"{s.name}_v")
            self.emit(f"const {dt.c_type} {tmp} = {value};", depth)
            self.emit(f"{name} = ({tmp} {cmp} {name} || {tmp} != {tmp}) ? {tmp} : {name};", depth)
            self.taken.discard(tmp)  # block-local: the name may be reused
            self.names.pop(f"{s.name}_v", None)
        elif dt.is_float:
            # in a vector loop: the OpenMP-friendly form plus a sticky NaN flag, applied after the loop
            tmp = self.cname(f"{s.name}_v")
            self.emit(f"const {dt.c_type} {tmp} = {value};", depth)
            cmp = ">" if op == "max" else "<"
            self.emit(f"{name} = {tmp} {cmp} {name} ? {tmp} : {name};", depth)
            self.emit(f"{name}_nan = {name}_nan | ({tmp} != {tmp});", depth)
            self.taken.discard(tmp)  # the temporary is block-local: its name may be reused
            self.names.pop(f"{s.name}_v", None)
        else:
            cmp = ">" if op == "max" else "<"
            self.emit(f"{name} = {value} {cmp} {name} ? {value} : {name};", depth)

    def _reduction_clause(self, loop: Loop) -> str:
        """OpenMP reduction clauses for accumulators updated in this loop but declared outside it."""
        inner_inits = {s.name for s in walk(loop.body) if isinstance(s, AccInit)}
        clauses: dict[str, list[str]] = {}
        for s in walk(loop.body):
            if isinstance(s, AccUpdate) and s.name not in inner_inits:
                op, dt = self.acc_types[s.name]
                name = self.cname(s.name)
                if dt == BOOL:
                    sym = "|" if op in ("sum", "max") else "&"
                else:
                    sym = {"sum": "+", "prod": "*", "max": "max", "min": "min"}[op]
                clauses.setdefault(sym, [])
                if name not in clauses[sym]:
                    clauses[sym].append(name)
                if dt.is_float and s.name in self.flagged:
                    clauses.setdefault("|", [])
                    if f"{name}_nan" not in clauses["|"]:
                        clauses["|"].append(f"{name}_nan")
        return "".join(f" reduction({sym}:{', '.join(names)})" for sym, names in clauses.items())

    def _hint_clauses(self, lp: Loop) -> str:
        """The schedule's code-generation hints (Schedule.threads/simdlen/stream, in the nest's meta)
        as clauses of this loop's pragma: num_threads(T) on a parallel loop; simdlen(W) and
        nontemporal(outputs stored in the loop) on a vector loop."""
        meta = self.nest.meta
        if lp.kind == "parallel":
            return f" num_threads({meta['threads']})" if meta.get("threads") else ""
        clause = self.width_clause if meta.get("simdlen") else loop_width_clause(self.width_clause, lp)
        text = f" {clause}" if clause else ""
        if meta.get("stream"):
            outputs = {b.name for b in self.nest.buffers if b.role in ("out", "inout")}
            stored = dict.fromkeys(self.cname(s.buffer) for s in walk(lp.body) if isinstance(s, Store) and s.buffer in outputs)
            text += f" nontemporal({', '.join(stored)})" if stored else ""
        return text

    def loop(self, lp: Loop, depth: int) -> None:
        var = self.cname(lp.var)
        extent = self.index(lp.extent)
        if lp.kind == "parallel" and self.work < MIN_PARALLEL_WORK:
            self.emit(f"/* serial: {self.work} points are too few to be worth waking a second thread */", depth)
        elif lp.kind == "parallel":
            self.emit(f"#pragma omp parallel for schedule(static){self._hint_clauses(lp)}", depth)
        elif lp.kind == "vector":
            added = self.reciprocal_lets(lp, depth) if self.vector_depth == 0 else []
            self.emit(f"#pragma omp simd{self._reduction_clause(lp)}{self._hint_clauses(lp)}", depth)
        elif lp.kind == "unrolled":
            self.emit("#pragma GCC unroll 8", depth)
        start = self.index(lp.start)
        self.emit(f"for (int64_t {var} = {start}; {var} < {extent}; {var}++) {{", depth)
        if id(lp) in self.prefetches:
            self.prefetch_loop(self.prefetches[id(lp)], depth + 1)
        self.vector_depth += lp.kind == "vector"
        self.stmts(lp.body, depth + 1)
        self.vector_depth -= lp.kind == "vector"
        self.emit("}", depth)
        if lp.kind == "vector" and self.vector_depth == 0:
            self._apply_nan_flags(lp, depth)
            for name in added:
                del self.reciprocals[name]

    def reciprocal_lets(self, lp: Loop, depth: int) -> list[str]:
        """Before a vector loop: the reciprocal of each float32 divisor it does not change, and
        whether multiplying by it is within 1.5 ulp of dividing (fusec/codegen/c_reciprocal.py)."""
        added = []
        for name in invariant_divisors(lp):
            den = self.cname(name)
            inv, ok = self._block_local(f"{den}_inv"), self._block_local(f"{den}_inv_ok")
            self.emit(f"const float {inv} = 1.0f / {den};", depth)
            self.emit(f"const int {ok} = fabsf({den}) >= 0x1p-126f && fabsf({den}) <= 0x1p126f;", depth)
            self.reciprocals[name] = (inv, ok)
            added.append(name)
        return added

    def _block_local(self, base: str) -> str:
        """A C name not used yet in this function."""
        candidate, k = base, 1
        while candidate in self.taken:
            candidate, k = f"{base}_{k}", k + 1
        self.taken.add(candidate)
        return candidate

    def prefetch_loop(self, plan: BlockPrefetch, depth: int) -> None:
        """One prefetch per cache line of this block: the next row's inputs, this row's outputs
        (fusec/codegen/c_prefetch.py)."""
        reads = ", ".join(dict.fromkeys(self.cname(p.buffer) for p in plan.items if not p.write))
        writes = ", ".join(dict.fromkeys(self.cname(p.buffer) for p in plan.items if p.write))
        what = " and ".join(part for part in (reads and f"the next row of {reads}", writes and f"this row of {writes}") if part)
        self.emit(f"/* prefetch this block of {what} */", depth)
        var, start, end = self.cname(plan.vector.var), self.index(plan.vector.start), self.index(plan.vector.extent)
        self.emit(f"for (int64_t {var} = {start}; {var} < {end}; {var} += {plan.step}) {{", depth)
        for p in plan.items:
            self.emit(f"__builtin_prefetch(&{self.element(p.buffer, p.index)}, {int(p.write)}, 2);", depth + 1)
        self.emit("}", depth)

    def _apply_nan_flags(self, lp: Loop, depth: int) -> None:
        """After a vector loop, a float max/min accumulator that saw a NaN becomes NaN (as in NumPy)."""
        inner_inits = {s.name for s in walk(lp.body) if isinstance(s, AccInit)}
        done: list[str] = []
        for s in walk(lp.body):
            flagged = s.name in self.flagged and self.acc_types[s.name][1].is_float if isinstance(s, AccUpdate) else False
            if flagged and s.name not in inner_inits and s.name not in done:
                name = self.cname(s.name)
                self.emit(f"if ({name}_nan) {name} = {c_literal(float('nan'), self.acc_types[s.name][1])};", depth)
                done.append(s.name)

    # --------------------------------------------------------------------------------- whole

    def signature(self) -> str:
        params = []
        for b in self.nest.buffers:
            const = "const " if b.role == "in" else ""
            ctype = "uint8_t" if b.dtype == BOOL else b.dtype.c_type  # see the module docstring
            params.append(f"{const}{ctype} *restrict {self.cname(b.name)}")
        return f"void {self.cname(self.nest.name)}({', '.join(params)})"

    def header_comment(self) -> list[str]:
        lines = [f"/* fusec kernel {self.nest.name} ({self.nest.kind}), generated by fusec.codegen.c_emit"]
        for text in self.nest.comment.splitlines():
            lines.append(f" * {text}".rstrip())
        for b in self.nest.buffers:
            shape = ", ".join(map(str, b.shape))
            note = f" (graph value {b.value})" if b.value != b.name else ""
            lines.append(f" *   {b.role:<5} {b.name}: {b.dtype.name}[{shape}]{note}")
        lines.append(" */")
        return lines

    def function(self) -> str:
        for b in self.nest.buffers:  # parameters claim their names first
            self.cname(b.name)
        self.cname(self.nest.name)
        self.lines = []
        self.stmts(self.nest.body, 1)
        body = self.lines
        return "\n".join(self.header_comment() + [self.signature(), "{"] + body + ["}"]) + "\n"


def generate_c(nest: LoopNest, bounds_check: bool = False) -> str:
    """The complete C translation unit for one loop nest."""
    return PRELUDE + "\n" + CEmitter(nest, bounds_check).function()
