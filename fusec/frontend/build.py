"""Build a Graph from a parsed .fg file: the graph header (dimensions, inputs, the signature), then
one graph node per call through `Graph.add`, which checks arity, attributes, shapes and dtypes. Any
error gets the location of what the user wrote.

Values the user did not name get names after their op (`return exp(x)` returns a value named
`exp`; a second one is `exp_2`), so no `%N` reaches a file, a kernel or an explanation; the printer
still writes them inline, as the user did (see Graph.unnamed_outputs).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lark import Token, Tree

from fusec.errors import FusecError
from fusec.frontend import comments
from fusec.frontend.expr import parse_int, refuse_literal_name
from fusec.frontend.fg_ast import Call, ListExpr, Lit, Ref
from fusec.frontend.sizes import override_dims
from fusec.frontend.syntax import Located, Source, pos_of
from fusec.ir.dim_expr import DimExpr, apply, dim_text
from fusec.ir.dtypes import DTYPES, literal_dtype
from fusec.ir.graph import Expectation, Graph, check_literal_fits
from fusec.ir.ops import OPS, literal_context_dtype, op_named

MAX_DIM = 2**48  # larger dimensions are typos; their buffers could never be allocated
# a reduction called with two operands: the elementwise op the user most likely meant
_ELEMENTWISE_OF = {"max": "maximum", "min": "minimum"}
_DIM_OP_OF = {"add": "+", "sub": "-", "mul": "*", "div": "/"}  # the ops dimension arithmetic may use


def _end(tok_or_tree) -> int:
    """The last line of a token or a subtree."""
    meta = getattr(tok_or_tree, "meta", None)
    if meta is not None and not meta.empty:
        return meta.end_line
    return getattr(tok_or_tree, "end_line", None) or getattr(tok_or_tree, "line", 0) or 0


def _dim(value: int, what: str, pos: tuple[int, int]) -> int:
    if value > MAX_DIM:
        raise Located(f"{what} {value} is too large (a dimension is at most 2**48)", pos)
    return value


class Builder:
    def __init__(self, source: Source, sizes: dict[str, int] | None):
        self.source = source
        self.lines = source.lines
        self.sizes = sizes or {}  # kept as given: a CommandLineSizes reports mistakes as --set
        self.graph: Graph | None = None
        self.scope: dict[str, str] = {}  # source name -> graph node name
        self.spans: list[comments.Span] = []  # where each statement is, for its comments

    def loc(self, pos: tuple[int, int]):
        return self.source.loc(pos)

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
                raise self.fail("nothing may follow the return statement", pos_of(stmt.meta))
            kind = stmt.data
            if kind == "let_stmt":
                self._let(stmt)
            elif kind == "assert_stmt":
                self._assert(stmt)
            elif kind == "return_stmt":
                self._return(stmt)
                returned = True
        if not returned:
            raise self.fail(f"graph '{g.name}' has no return statement", pos_of(g_tree.meta))
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
            refuse_literal_name(str(name), "a dimension", pos_of(name))
            if str(name) in declared:
                raise self.fail(f"dimension '{name}' is declared twice", pos_of(name))
            declared[str(name)] = _dim(parse_int(value), f"dimension {name} =", pos_of(value))
        g.dims = override_dims(g.name, declared, self.sizes, MAX_DIM)  # --set / sizes=, in the user's words

    def _dim_expr(self, node) -> tuple[int, DimExpr | str | int]:
        """A dimension as written in a shape (a parse tree) or an attribute or a value (an AST):
        its size and its written form. An inexact division or a negative result is located."""
        if isinstance(node, Tree):  # dim_add / dim_mul in a shape
            left, op_tok, right = node.children
            op, pos = str(op_tok), pos_of(op_tok)
        elif isinstance(node, Call) and node.op in _DIM_OP_OF and len(node.args) == 2 and not node.kwargs:
            (left, right), op, pos = node.args, _DIM_OP_OF[node.op], node.pos
        else:
            return self._dim_leaf(node)
        if op not in _DIM_OP_OF.values():
            raise self.fail(f"'{op}' is not dimension arithmetic (use +, -, * or /)", pos)
        (lv, lw), (rv, rw) = self._dim_expr(left), self._dim_expr(right)
        written = DimExpr(op, lw, rw)
        value = apply(op, lv, rv)
        if value is None:
            problem = "is not a whole number" if op == "/" else "is negative"
            raise self.fail(f"dimension {dim_text(written)} = {lv} {op} {rv} {problem}", pos)
        return _dim(value, f"dimension {dim_text(written)} =", pos), written

    def _dim_leaf(self, node) -> tuple[int, str | int]:
        if isinstance(node, Token) and node.type == "INT":
            value = _dim(parse_int(node), "dimension", pos_of(node))
            return value, value
        if isinstance(node, Lit) and type(node.value) is int and node.dtype is None:
            return _dim(node.value, "dimension", node.pos), node.value
        if not isinstance(node, (Ref, Token)):
            raise self.fail("dimension arithmetic takes dimension names and integers", getattr(node, "pos", (0, 0)))
        name, pos = (node.name, node.pos) if isinstance(node, Ref) else (str(node), pos_of(node))
        if name not in self.graph.dims:
            raise self.fail(f"unknown dimension '{name}' (declare it as graph name<{name}=...>)", pos)
        return self.graph.dims[name], name

    def _is_dim_value(self, expr) -> bool:
        """Whether a value expression is dimension arithmetic naming a dimension (`D`, `D / 2`)."""
        if isinstance(expr, Ref):
            return expr.name in self.graph.dims and expr.name not in self.scope
        if isinstance(expr, Call) and expr.op in _DIM_OP_OF and len(expr.args) == 2 and not expr.kwargs:
            leaves_ok = all(self._is_dim_value(a) or (isinstance(a, Lit) and type(a.value) is int and a.dtype is None) for a in expr.args)
            return leaves_ok and any(self._is_dim_value(a) for a in expr.args)
        return False

    def _tensor_type(self, tree):
        dtype_tok, *dim_refs = tree.children
        if str(dtype_tok) not in DTYPES:
            raise self.fail(f"unknown dtype '{dtype_tok}' (expected one of {', '.join(DTYPES)})", pos_of(dtype_tok))
        sized = [self._dim_expr(r) for r in dim_refs]
        return DTYPES[str(dtype_tok)], tuple(v for v, _ in sized), tuple(w for _, w in sized)

    def _param(self, tree) -> None:
        name_tok, ttree, *value_range = tree.children
        name = str(name_tok)
        refuse_literal_name(name, "an input", pos_of(name_tok))
        if name in self.scope:
            raise self.fail(f"'{name}' is already defined", pos_of(name_tok))
        dtype, shape, written = self._tensor_type(ttree)
        self.graph.add_input(name, dtype, shape, written=written, loc=self.loc(pos_of(name_tok)))
        if value_range:
            low, high = (lit.value for lit in value_range[0].children)
            if not low < high:
                raise self.fail(f"the range of '{name}' is empty: [{low}, {high}]", pos_of(name_tok))
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
        refuse_literal_name(name, "a value", pos_of(name_tok))
        if name in self.scope:
            raise self.fail(f"'{name}' is already defined", pos_of(name_tok))
        self.scope[name] = self.emit(expr, target=name)

    def _assert(self, tree) -> None:
        what, cmp, value = tree.children
        if str(what) != "kernels":
            raise self.fail(f"unknown assertion '{what}' (only 'kernels' can be asserted)", pos_of(what))
        self.graph.expectations.append(Expectation(str(what), str(cmp), parse_int(value), self.loc(pos_of(what))))

    def _return(self, tree) -> None:
        outs = []
        for expr in tree.children:
            if getattr(expr, "data", None) == "named_return":  # return y = e / s
                name_tok, expr = expr.children
                name = str(name_tok)
                refuse_literal_name(name, "a value", pos_of(name_tok))
                if name in self.scope:
                    raise self.fail(f"'{name}' is already defined", pos_of(name_tok))
                if not isinstance(expr, Call):
                    raise self.fail(f"'{name} = ...' in the return line must name a computed value, not a name or a literal", pos_of(name_tok))
                self.scope[name] = self.emit(expr, target=name)
                self.graph.return_names.add(name)
                outs.append(name)
            else:
                out = self.emit(expr, target=None)
                if out.startswith("%"):  # an unnamed output: named after its op, printed inline
                    out = self._name_after_op(out)
                outs.append(out)
        self.graph.set_outputs(outs)

    def _name_after_op(self, value: str) -> str:
        g = self.graph
        op = g.node(value).op
        name, k = op, 2
        while name in g.nx or name in self.scope:
            name, k = f"{op}_{k}", k + 1
        g.rename(value, name)
        g.unnamed_outputs.add(name)
        return name

    def _check_return_types(self, tree) -> None:
        g = self.graph
        declared = [self._tensor_type(t) for t in tree.children]
        if len(declared) != len(g.outputs):
            raise self.fail(f"the signature declares {len(declared)} outputs but {len(g.outputs)} are returned", pos_of(tree.meta))
        for (dtype, shape, _), out, t in zip(declared, g.outputs, tree.children):
            actual = g.type_of(out)
            if actual.dtype != dtype or actual.shape != shape:
                raise self.fail(f"output '{out}' is {actual}, but the signature says {dtype}[{', '.join(map(str, shape))}]", pos_of(t.meta))

    # -- expressions

    def emit(self, expr, target: str | None) -> str:
        """Add the nodes for `expr`; the root gets the name `target` if one is given."""
        g = self.graph
        if isinstance(expr, Ref):
            if expr.name not in self.scope and expr.name in g.dims:
                raise self.fail(f"dimension '{expr.name}' is a number here; use it in an expression (sum(x) / {expr.name}), or write i64({g.dims[expr.name]})", expr.pos)
            if expr.name not in self.scope:
                raise self.fail(f"'{expr.name}' is not defined", expr.pos)
            return self.scope[expr.name]
        if isinstance(expr, Lit):
            if isinstance(expr.value, str):
                raise self.fail("a string can only be an attribute value (approximate=\"tanh\")", expr.pos)
            dtype = DTYPES[expr.dtype] if expr.dtype else literal_dtype(expr.value, None)
            try:
                return g.const(expr.value, dtype, name=target, loc=self.loc(expr.pos))
            except FusecError as err:
                raise self.located(err, expr.pos) from None
        if isinstance(expr, ListExpr):
            raise self.fail("a list can only be an attribute value", expr.pos)
        assert isinstance(expr, Call), expr
        if expr.op not in OPS or OPS[expr.op].kind == "leaf":
            try:
                op_named(expr.op)
            except FusecError as err:
                raise self.located(err, expr.pos) from None
            raise self.fail(f"'{expr.op}' cannot be called", expr.pos)
        if expr.op in _ELEMENTWISE_OF and len(expr.args) == 2 and not expr.kwargs:
            other = _ELEMENTWISE_OF[expr.op]
            raise self.fail(f"{expr.op} reduces one operand along axes; for the elementwise {other} of two values write {other}(a, b)", expr.pos)
        args, dim_args = [], {}
        for k, a in enumerate(expr.args):
            if self._is_dim_value(a):  # a dimension as a value: a weak integer literal of its size
                value, written = self._dim_expr(a)
                args.append(value)
                dim_args[k] = dim_text(written, prec=3)
            elif isinstance(a, Lit) and a.dtype is None and not isinstance(a.value, str):
                args.append(a.value)  # weak literal: Graph.add gives it the operands' dtype
            else:
                args.append(self.emit(a, target=None))
        self._check_weak_literals(expr, args)
        attrs, written = {}, {}
        for key, value in expr.kwargs.items():
            attrs[key], text = self._attr(value, expr.op, key)
            if text is not None:
                written[key] = text
        try:
            name = g.add(expr.op, *args, name=target, loc=self.loc(expr.pos), **attrs)
        except FusecError as err:
            bad = next((k for k in expr.kwargs if f"'{k}'" in err.message), None)
            raise self.located(err, expr.kwarg_pos[bad] if bad else expr.pos) from None
        if written:
            g.nx.nodes[name]["node"] = replace(g.node(name), written_attrs=written)
        for k, text in dim_args.items():  # the printer writes the dimension back, not its size
            const = g.node(name).args[k]
            if g.node(const).op == "const":
                g.nx.nodes[const]["node"] = replace(g.node(const), written_attrs={"value": text})
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

    def _attr(self, value, op: str, key: str) -> tuple[Any, str | None]:
        """An attribute value, plus its written form if it mentions a dimension name."""
        if isinstance(value, Lit):
            return value.value, None
        if isinstance(value, Ref):
            if value.name in self.graph.dims:
                return self.graph.dims[value.name], value.name
            if value.name in DTYPES:
                return value.name, None
            spec = next((s for s in getattr(OPS.get(op), "attrs", ()) if s.name == key), None)
            if spec is not None and spec.choices and value.name in spec.choices:
                raise self.fail(f"'{value.name}' is not a dimension or a dtype; a text attribute is quoted: {key}=\"{value.name}\"", value.pos)
            raise self.fail(f"'{value.name}' is not a dimension or a dtype", value.pos)
        if isinstance(value, Call) and self._is_dim_value(value):  # shape=[N, D / 2]
            size, written = self._dim_expr(value)
            return size, dim_text(written)
        if isinstance(value, ListExpr):
            items = [self._attr(v, op, key) for v in value.items]
            vals = [v for v, _ in items]
            if any(t is not None for _, t in items):
                from fusec.ir.printer import format_attr

                text = "[" + ", ".join(t if t is not None else format_attr(v) for v, t in items) + "]"
                return vals, text
            return vals, None
        raise self.fail("an attribute value must be a literal, a list, a dimension or a dtype", value.pos)
