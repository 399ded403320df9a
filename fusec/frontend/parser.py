"""Parse .fg text into a Graph.

Two small steps, so each stays easy to read:

1. lark parses the text with the grammar in `fusec.lark`, and a thin Transformer turns the parse
   tree into a tiny AST (`Lit`, `Ref`, `Call`), each carrying its source location;
2. `_Builder` walks the statements and adds one graph node per call through `Graph.add`, which
   checks arity, attributes, shapes and dtypes. Any error it raises gets the location attached.
"""

from __future__ import annotations

import ast as _pyast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from fusec.errors import FusecError, FusecSyntaxError, SourceLocation
from fusec.frontend import comments
from fusec.ir.dtypes import DTYPES, literal_dtype
from fusec.ir.graph import Expectation, Graph, check_literal_fits
from fusec.ir.ops import BINARY_INFIX, OPS, literal_context_dtype

_GRAMMAR = (Path(__file__).with_name("fusec.lark")).read_text()
_PARSER = Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False, lexer_callbacks={"COMMENT": comments.collect})

_NAMED_LITERALS = {"true": True, "false": False, "inf": float("inf"), "nan": float("nan")}
_CMP_OPS = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_MAX_SOURCE_BYTES = 16 * 1024 * 1024
_MAX_INT_DIGITS = 64  # an integer literal longer than this fits no dtype
_MAX_DIM = 2**48  # larger dimensions are typos; their buffers could never be allocated


# ------------------------------------------------------------------------------------------- AST


@dataclass
class Lit:
    value: bool | int | float
    pos: tuple[int, int]
    dtype: str | None = None  # set for typed literals such as f64(0.5)


@dataclass
class Ref:
    name: str
    pos: tuple[int, int]


@dataclass
class Call:
    op: str
    args: list
    kwargs: dict[str, Any]
    pos: tuple[int, int]
    kwarg_pos: dict[str, tuple[int, int]]
    written: dict[str, str]  # attributes that named a dimension, as written


@dataclass
class DimName:
    """A bare name in an attribute value: a dimension (N) or a dtype (f32)."""

    name: str
    pos: tuple[int, int]


def _end(tok_or_tree) -> int:
    """The last line of a token or a subtree."""
    meta = getattr(tok_or_tree, "meta", None)
    if meta is not None and not meta.empty:
        return meta.end_line
    return getattr(tok_or_tree, "end_line", None) or getattr(tok_or_tree, "line", 0) or 0


def _pos(tok_or_meta) -> tuple[int, int]:
    return (getattr(tok_or_meta, "line", 0) or 0, getattr(tok_or_meta, "column", 0) or 0)


@v_args(inline=True)
class _ToAst(Transformer):
    """The thin layer over lark: parse tree -> AST, nothing else."""

    def integer(self, tok):
        return Lit(_int(tok), _pos(tok))

    def floating(self, tok):
        value = float(tok)
        if value == float("inf"):
            raise _located(f"literal {tok} is too large even for f64 (write inf if you mean it)", _pos(tok))
        return Lit(value, _pos(tok))

    def signed_number(self, *parts):
        if len(parts) == 2:
            return Lit(-parts[1].value, _pos(parts[0]))
        return parts[0]

    def string(self, tok):
        return _pyast.literal_eval(str(tok))

    def attr_name(self, tok):
        if str(tok) in _NAMED_LITERALS:
            return Lit(_NAMED_LITERALS[str(tok)], _pos(tok))
        return DimName(str(tok), _pos(tok))

    def attr_list(self, *items):
        return list(items)

    def ref(self, tok):
        if str(tok) in _NAMED_LITERALS:
            return Lit(_NAMED_LITERALS[str(tok)], _pos(tok))
        return Ref(str(tok), _pos(tok))

    def binary(self, left, op_tok, right):
        op = _CMP_OPS.get(str(op_tok)) or BINARY_INFIX[str(op_tok)]
        return Call(op, [left, right], {}, _pos(op_tok), {}, {})

    def negate(self, op_tok, operand):
        if isinstance(operand, Lit) and operand.dtype is None and not isinstance(operand.value, bool):
            return Lit(-operand.value, _pos(op_tok))  # -2.0 and -inf are literals, not neg nodes
        return Call("neg", [operand], {}, _pos(op_tok), {}, {})

    def keyword(self, name, value):
        return ("kw", str(name), value, _pos(name))

    def call(self, name, *args):
        positional, kwargs, kwarg_pos = [], {}, {}
        for a in args:
            if isinstance(a, tuple) and a and a[0] == "kw":
                _, key, value, pos = a
                if key in kwargs:
                    raise _located(f"attribute '{key}' given twice", pos)
                kwargs[key], kwarg_pos[key] = value, pos
            else:
                if kwargs:
                    raise _located("positional operands must come before attributes", _expr_pos(a))
                positional.append(a)
        if str(name) in DTYPES and not kwargs and len(positional) == 1 and isinstance(positional[0], Lit):
            lit = positional[0]
            return Lit(lit.value, _pos(name), dtype=str(name))  # a typed literal: f64(0.5)
        return Call(str(name), positional, kwargs, _pos(name), kwarg_pos, {})


def _int(tok: Token) -> int:
    """An INT token's value. Python refuses int() past 4300 digits with a ValueError; refuse any
    integer far beyond every dtype's range first, with a located message."""
    if len(tok) > _MAX_INT_DIGITS:
        raise _located(f"integer {str(tok)[:12]}... has {len(tok)} digits, too large for any dtype", _pos(tok))
    return int(tok)


def _dim(value: int, what: str, pos: tuple[int, int]) -> int:
    if value > _MAX_DIM:
        raise _located(f"{what} {value} is too large (a dimension is at most 2**48)", pos)
    return value


def _expr_pos(e) -> tuple[int, int]:
    return getattr(e, "pos", (0, 0))


class _Located(Exception):
    """An error raised inside the transformer, carrying (message, position)."""

    def __init__(self, message: str, pos: tuple[int, int]):
        super().__init__(message)
        self.message, self.pos = message, pos


def _located(message: str, pos: tuple[int, int]) -> _Located:
    return _Located(message, pos)


# ------------------------------------------------------------------------------------------- building


class _Builder:
    def __init__(self, source: str, filename: str, sizes: dict[str, int] | None):
        self.lines = source.splitlines()
        self.filename = filename
        self.sizes = dict(sizes or {})
        self.graph: Graph | None = None
        self.scope: dict[str, str] = {}  # source name -> graph node name
        self.spans: list[comments.Span] = []  # where each statement is, for its comments

    def loc(self, pos: tuple[int, int]) -> SourceLocation:
        line, col = pos
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return SourceLocation(self.filename, line, col, text)

    def fail(self, message: str, pos: tuple[int, int]) -> FusecError:
        return FusecError(message, self.loc(pos))

    def located(self, err: FusecError, pos: tuple[int, int]) -> FusecError:
        if err.location is None:
            return type(err)(err.message, self.loc(pos))
        return err

    # -- the graph header

    def build(self, tree) -> Graph:
        g_tree = tree.children[0]
        children = list(g_tree.children)
        name_tok = children.pop(0)
        self.graph = g = Graph(str(name_tok))
        dims_tree = None
        if children and getattr(children[0], "data", None) == "dim_decls":
            dims_tree = children.pop(0)
        self._dims(dims_tree)
        while children and getattr(children[0], "data", None) == "param":
            self._param(children.pop(0))
        return_types = None
        if children and getattr(children[0], "data", None) == "return_types":
            return_types = children.pop(0)
        returned = False
        for stmt in children:
            self.spans.append(comments.Span(self._statement_key(stmt), stmt.meta.line, stmt.meta.end_line))
            if returned:
                raise self.fail("nothing may follow the return statement", _pos(stmt.meta))
            kind = stmt.data
            if kind == "let_stmt":
                self._let(stmt)
            elif kind == "assert_stmt":
                self._assert(stmt)
            elif kind == "return_stmt":
                self._return(stmt)
                returned = True
        if not returned:
            raise self.fail(f"graph '{g.name}' has no return statement", _pos(g_tree.meta))
        if return_types is not None:
            self._check_return_types(return_types)
        header_end = max([_end(t) for t in g_tree.children[: len(g_tree.children) - len(children)]] + [name_tok.line])
        self.spans.insert(0, comments.Span("graph", g_tree.meta.line, header_end))
        g.dead_code_elimination()
        return g

    def _dims(self, tree) -> None:
        g = self.graph
        declared = {}
        for d in tree.children if tree is not None else []:
            name, value = d.children
            if str(name) in declared:
                raise self.fail(f"dimension '{name}' is declared twice", _pos(name))
            declared[str(name)] = _dim(_int(value), f"dimension {name} =", _pos(value))
        for key, value in self.sizes.items():
            if key not in declared:
                known = ", ".join(declared) or "none"
                raise FusecError(f"--set {key}={value}: graph '{g.name}' has no dimension '{key}' (dimensions: {known})")
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise FusecError(f"--set {key}={value}: a dimension must be a non-negative integer")
            if value > _MAX_DIM:
                raise FusecError(f"--set {key}={value}: too large (a dimension is at most 2**48)")
            declared[key] = value
        g.dims = declared

    def _dim_value(self, ref) -> int:
        if isinstance(ref, Token) and ref.type == "INT":
            return _dim(_int(ref), "dimension", _pos(ref))
        if str(ref) not in self.graph.dims:
            raise self.fail(f"unknown dimension '{ref}' (declare it as graph name<{ref}=...>)", _pos(ref))
        return self.graph.dims[str(ref)]

    def _tensor_type(self, tree):
        dtype_tok, *dim_refs = tree.children
        if str(dtype_tok) not in DTYPES:
            raise self.fail(f"unknown dtype '{dtype_tok}' (expected one of {', '.join(DTYPES)})", _pos(dtype_tok))
        shape = tuple(self._dim_value(r) for r in dim_refs)
        written = tuple(int(r) if r.type == "INT" else str(r) for r in dim_refs)
        return DTYPES[str(dtype_tok)], shape, written

    def _param(self, tree) -> None:
        name_tok, ttree, *value_range = tree.children
        name = str(name_tok)
        if name in self.scope:
            raise self.fail(f"'{name}' is already defined", _pos(name_tok))
        dtype, shape, written = self._tensor_type(ttree)
        self.graph.add_input(name, dtype, shape, written=written, loc=self.loc(_pos(name_tok)))
        if value_range:
            low, high = (lit.value for lit in value_range[0].children)
            if not low < high:
                raise self.fail(f"the range of '{name}' is empty: [{low}, {high}]", _pos(name_tok))
            self.graph.input_ranges[name] = (low, high)
        self.scope[name] = name
        self.spans.append(comments.Span(name, tree.meta.line, tree.meta.end_line, parameter=True))

    def _statement_key(self, stmt) -> str:
        """The key of a statement's comments on the Graph (see Graph.comments)."""
        if stmt.data == "let_stmt":
            return str(stmt.children[0])
        if stmt.data == "assert_stmt":
            return f"assert {len(self.graph.expectations)}"
        return "return"

    # -- statements

    def _let(self, tree) -> None:
        name_tok, expr = tree.children
        name = str(name_tok)
        if name in self.scope or name in _NAMED_LITERALS:
            raise self.fail(f"'{name}' is already defined", _pos(name_tok))
        self.scope[name] = self.emit(expr, target=name)

    def _assert(self, tree) -> None:
        what, cmp, value = tree.children
        if str(what) != "kernels":
            raise self.fail(f"unknown assertion '{what}' (only 'kernels' can be asserted)", _pos(what))
        self.graph.expectations.append(Expectation(str(what), str(cmp), _int(value), self.loc(_pos(what))))

    def _return(self, tree) -> None:
        outs = []
        for expr in tree.children:
            if getattr(expr, "data", None) == "named_return":  # return y = e / s
                name_tok, expr = expr.children
                name = str(name_tok)
                if name in self.scope or name in _NAMED_LITERALS:
                    raise self.fail(f"'{name}' is already defined", _pos(name_tok))
                if not isinstance(expr, Call):
                    raise self.fail(f"'{name} = ...' in the return line must name a computed value, not a name or a literal", _pos(name_tok))
                self.scope[name] = self.emit(expr, target=name)
                self.graph.return_names.add(name)
                outs.append(name)
            else:
                outs.append(self.emit(expr, target=None))
        self.graph.set_outputs(outs)

    def _check_return_types(self, tree) -> None:
        g = self.graph
        declared = [self._tensor_type(t) for t in tree.children]
        if len(declared) != len(g.outputs):
            raise self.fail(f"the signature declares {len(declared)} outputs but {len(g.outputs)} are returned", _pos(tree.meta))
        for (dtype, shape, _), out, t in zip(declared, g.outputs, tree.children):
            actual = g.type_of(out)
            if actual.dtype != dtype or actual.shape != shape:
                raise self.fail(f"output '{out}' is {actual}, but the signature says {dtype}[{', '.join(map(str, shape))}]", _pos(t.meta))

    # -- expressions

    def emit(self, expr, target: str | None) -> str:
        """Add the nodes for `expr`; the root gets the name `target` if one is given."""
        g = self.graph
        if isinstance(expr, Ref):
            if expr.name not in self.scope:
                raise self.fail(f"'{expr.name}' is not defined", expr.pos)
            return self.scope[expr.name]
        if isinstance(expr, Lit):
            dtype = DTYPES[expr.dtype] if expr.dtype else literal_dtype(expr.value, None)
            try:
                return g.const(expr.value, dtype, name=target, loc=self.loc(expr.pos))
            except FusecError as err:
                raise self.located(err, expr.pos) from None
        if isinstance(expr, DimName):
            raise self.fail(f"'{expr.name}' is not defined", expr.pos)
        assert isinstance(expr, Call), expr
        if expr.op not in OPS or OPS[expr.op].kind == "leaf":
            from fusec.ir.ops import op_named

            try:
                op_named(expr.op)
            except FusecError as err:
                raise self.located(err, expr.pos) from None
            raise self.fail(f"'{expr.op}' cannot be called", expr.pos)
        args = []
        for a in expr.args:
            if isinstance(a, Lit) and a.dtype is None:
                args.append(a.value)  # weak literal: Graph.add gives it the operands' dtype
            else:
                args.append(self.emit(a, target=None))
        self._check_weak_literals(expr, args)
        attrs, written = {}, {}
        for key, value in expr.kwargs.items():
            attrs[key], text = self._attr(value)
            if text is not None:
                written[key] = text
        try:
            name = g.add(expr.op, *args, name=target, loc=self.loc(expr.pos), **attrs)
        except FusecError as err:
            bad = next((k for k in expr.kwargs if f"'{k}'" in err.message), None)
            raise self.located(err, expr.kwarg_pos[bad] if bad else expr.pos) from None
        if written:
            from dataclasses import replace

            g.nx.nodes[name]["node"] = replace(g.node(name), written_attrs=written)
        return name

    def _check_weak_literals(self, expr: Call, args: list) -> None:
        """Point at the literal itself when it does not fit the dtype it takes from its operands."""
        opdef = OPS[expr.op]
        tensor_dtypes = [None if isinstance(a, (bool, int, float)) else self.graph.type_of(a).dtype for a in args]
        ctx = literal_context_dtype(opdef, tensor_dtypes)
        for a, value in zip(expr.args, args):
            if isinstance(value, (bool, int, float)):
                try:
                    check_literal_fits(value, literal_dtype(value, ctx))
                except FusecError as err:
                    raise self.located(err, a.pos) from None

    def _attr(self, value) -> tuple[Any, str | None]:
        """An attribute value, plus its written form if it mentions a dimension name."""
        if isinstance(value, Lit):
            return value.value, None
        if isinstance(value, DimName):
            if value.name in self.graph.dims:
                return self.graph.dims[value.name], value.name
            if value.name in DTYPES:
                return value.name, None
            raise self.fail(f"'{value.name}' is not a dimension or a dtype", value.pos)
        if isinstance(value, list):
            items = [self._attr(v) for v in value]
            vals = [v for v, _ in items]
            if any(t is not None for _, t in items):
                from fusec.ir.printer import format_attr

                text = "[" + ", ".join(t if t is not None else format_attr(v) for v, t in items) + "]"
                return vals, text
            return vals, None
        if isinstance(value, (Ref, Call)):
            raise self.fail("an attribute value must be a literal, a list, a dimension or a dtype", _expr_pos(value))
        return value, None


# ------------------------------------------------------------------------------------------- entry points


def _describe_expected(expected: set[str]) -> str:
    readable = []
    for name in sorted(expected):
        try:
            pattern = _PARSER.get_terminal(name).pattern
        except KeyError:
            readable.append(name)
            continue
        if pattern.type == "str":
            readable.append(f"'{pattern.value}'")
        else:
            readable.append({"NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a string"}.get(name, name.lower()))
    readable = sorted(set(readable))
    if len(readable) > 6:
        readable = readable[:6] + ["..."]
    return ", ".join(readable)


def _syntax_error(err: UnexpectedInput, source: str, filename: str) -> FusecSyntaxError:
    lines = source.splitlines()
    line = getattr(err, "line", None)
    column = getattr(err, "column", None)
    at_end = isinstance(err, UnexpectedEOF) or (isinstance(err, UnexpectedToken) and err.token.type == "$END")
    if at_end or line is None or line < 1:
        line = max(len(lines), 1)
        column = len(lines[-1]) + 1 if lines else 1
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    loc = SourceLocation(filename, line, column, text)
    if isinstance(err, UnexpectedCharacters):
        ch = source[err.pos_in_stream] if err.pos_in_stream < len(source) else ""
        return FusecSyntaxError(f"unexpected character {ch!r}", loc)
    if at_end:
        return FusecSyntaxError(f"unexpected end of file; expected {_describe_expected(err.expected)}", loc)
    if isinstance(err, UnexpectedToken):
        return FusecSyntaxError(f"unexpected '{err.token}'; expected {_describe_expected(err.expected)}", loc)
    return FusecSyntaxError(str(err).splitlines()[0], loc)


def _not_utf8(data: bytes, err: UnicodeDecodeError, filename: str) -> FusecSyntaxError:
    """Point at the first byte that is not UTF-8, with its line shown as far as it decodes."""
    start = err.start
    line = data.count(b"\n", 0, start) + 1
    line_start = data.rfind(b"\n", 0, start) + 1
    line_end = data.find(b"\n", start)
    text = data[line_start : line_end if line_end >= 0 else len(data)].decode("utf-8", errors="replace")
    column = len(data[line_start:start].decode("utf-8", errors="replace")) + 1
    loc = SourceLocation(filename, line, column, text)
    return FusecSyntaxError(f"not UTF-8 text: byte {data[start]:#04x} (is this a binary file?)", loc)


def _too_deep(raw_tree, filename: str, text: str) -> FusecSyntaxError:
    """Name the statement that nests too deeply (found without recursion, which just failed)."""
    lines = text.splitlines()
    deepest, where = -1, None
    for stmt in getattr(raw_tree, "children", [None])[0].children if raw_tree is not None else []:
        depth, stack = 0, [(stmt, 1)]
        while stack:
            node, d = stack.pop()
            depth = max(depth, d)
            stack.extend((c, d + 1) for c in getattr(node, "children", ()))
        if depth > deepest and getattr(stmt, "meta", None) is not None and not stmt.meta.empty:
            deepest, where = depth, (stmt.meta.line, stmt.meta.column)
    if where is None:
        return FusecSyntaxError(f"{filename}: expression nested too deeply")
    line, col = where
    loc = SourceLocation(filename, line, col, lines[line - 1] if 0 < line <= len(lines) else "")
    return FusecSyntaxError(f"expression nested too deeply ({deepest} levels); split it into several statements", loc)


def parse(text: str | bytes, filename: str | None = None, sizes: dict[str, int] | None = None) -> Graph:
    """Parse .fg source text into a verified Graph. `sizes` overrides the declared dimensions."""
    filename = filename or "<string>"
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _not_utf8(text, err, filename) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    if len(text) > _MAX_SOURCE_BYTES:
        raise FusecSyntaxError(f"{filename}: source is larger than {_MAX_SOURCE_BYTES // 2**20} MiB")
    if not text.strip():
        raise FusecSyntaxError("the file is empty; expected 'graph NAME(...) { ... }'", SourceLocation(filename, 1, 1, ""))
    builder = _Builder(text, filename, sizes)
    raw = None
    try:
        comments.start()
        try:
            raw = _PARSER.parse(text)
        finally:
            found = comments.finish()
        tree = _ToAst().transform(raw)
        graph = builder.build(tree)
        comments.attach(graph, found, builder.spans, builder.lines, raw.children[0].meta.end_line)
    except UnexpectedInput as err:
        raise _syntax_error(err, text, filename) from None
    except _Located as err:  # raised by the builder's own token checks
        raise builder.fail(err.message, err.pos) from None
    except VisitError as err:
        if isinstance(err.orig_exc, _Located):
            raise builder.fail(err.orig_exc.message, err.orig_exc.pos) from None
        if isinstance(err.orig_exc, RecursionError):
            raise _too_deep(raw, filename, text) from None
        raise
    except RecursionError:
        raise _too_deep(raw, filename, text) from None
    graph.verify()
    return graph


def load(path: str | Path, sizes: dict[str, int] | None = None) -> Graph:
    """Read and parse a .fg file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FusecError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FusecError(f"{path}: is a directory, not a .fg file") from None
    except OSError as err:
        raise FusecError(f"{path}: cannot read: {err.strerror}") from None
    return parse(data, filename=str(path), sizes=sizes)
