"""Parse rule files (the grammar is rules.lark) into Rule objects.




"""

from __future__ import annotations

import ast as _pyast
import functools
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree, v_args
from lark.exceptions import UnexpectedInput, VisitError

from fusec.errors import FusecError
from fusec.frontend.expr import ExprTransformer
from fusec.frontend.syntax import Located, Source, make_parser
from fusec.frontend.syntax import pos_of as _pos
from fusec.ir.dtypes import DTYPES
from fusec.ir.ops import OPS, OpDef
from fusec.rewrite.guards import FUNCTIONS, VALUE_OPERATORS
from fusec.rewrite.rule import (
    CLASSES,
    AttrLit,
    AttrVar,
    BoolOp,
    Call,
    ConstVar,
    ListExpr,
    Lit,
    PConst,
    PLit,
    PNamed,
    POp,
    PVar,
    RAttr,
    RLit,
    ROp,
    Rule,
    RVar,
    Tolerance,
    Var,
)


@functools.cache
def _parser() -> Lark:
    """The rules parser, made on first use: a process that finds the standard library in the rule
    cache (rule_cache.py) never loads its tables."""
    return make_parser(Path(__file__).with_name("rules.lark"))


@v_args(inline=True)
class _ToSyntax(ExprTransformer):
    """The shared expression reading (fusec/frontend/expr.py), building rule.py's syntax, plus
    $constants and the guards' and / or / not."""

    _literal_type = Lit

    def literal(self, value, pos):
        return Lit(value, pos)

    def reference(self, name, pos):
        return Var(name, pos)

    def listing(self, items, pos):
        return ListExpr(items, items[0].pos if items else pos)

    def calling(self, fn, args, kwargs, pos):
        return Call(fn, tuple(args), tuple((k, v) for k, v, _ in kwargs), pos)

    def const_var(self, tok):
        return ConstVar(str(tok), _pos(tok))

    def g_and(self, a, b):
        return BoolOp("and", (a, b), getattr(a, "pos", (0, 0)))

    def g_or(self, a, b):
        return BoolOp("or", (a, b), getattr(a, "pos", (0, 0)))

    def g_not(self, a):
        return BoolOp("not", (a,), getattr(a, "pos", (0, 0)))


# ------------------------------------------------------------------------------------------ compiling


class _RuleCompiler:
    """Checks one rule's syntax against the op table and builds its pattern and replacement."""

    def __init__(self, name: str, fail):
        self.name = name
        self.fail = fail  # (message, pos) -> exception
        self.lets: dict[str, Any] = {}
        self.tensor_vars: list[str] = []
        self.const_vars: list[str] = []
        self.attr_vars: list[str] = []
        self._compiling: list[str] = []  # `with` names being compiled, to report cycles
        self._compiled_lets: dict[str, Any] = {}

    # -- patterns

    def pattern(self, e) -> Any:
        if isinstance(e, Var):
            if e.name in self.lets:
                if e.name in self._compiling:
                    raise self.fail(f"'{e.name}' is defined in terms of itself", e.pos)
                if e.name not in self._compiled_lets:
                    self._compiling.append(e.name)
                    self._compiled_lets[e.name] = PNamed(e.name, self.pattern(self.lets[e.name]))
                    self._compiling.pop()
                return self._compiled_lets[e.name]
            if e.name in self.attr_vars:
                raise self.fail(f"'{e.name}' is an attribute variable; it cannot also be an operand", e.pos)
            if e.name in DTYPES:
                raise self.fail(f"'{e.name}' is a dtype, not a value", e.pos)
            if e.name not in self.tensor_vars:
                self.tensor_vars.append(e.name)
            return PVar(e.name)
        if isinstance(e, ConstVar):
            if e.name not in self.const_vars:
                self.const_vars.append(e.name)
            return PConst(e.name)
        if isinstance(e, Lit):
            if isinstance(e.value, str):
                raise self.fail("a string can only be an attribute value", e.pos)
            return PLit(e.value)
        if isinstance(e, Call):
            opdef = self._op(e)
            args = tuple(self.pattern(a) for a in e.args)
            given = dict(e.kwargs)
            attrs = []
            for spec in opdef.attrs:
                if spec.name in given:
                    attrs.append((spec.name, self._attr_pattern(given[spec.name])))
                else:
                    attrs.append((spec.name, AttrLit(spec.default)))
            return POp(opdef.name, args, tuple(attrs))
        raise self.fail("a list can only be an attribute value", e.pos)

    def _attr_pattern(self, e) -> Any:
        if isinstance(e, Var) and e.name not in DTYPES:
            if e.name in self.tensor_vars or e.name in self.lets:
                raise self.fail(f"'{e.name}' is an operand variable; it cannot also be an attribute", e.pos)
            if e.name not in self.attr_vars:
                self.attr_vars.append(e.name)
            return AttrVar(e.name)
        return AttrLit(self._literal_attr(e))

    def _literal_attr(self, e) -> Any:
        if isinstance(e, Lit):
            return e.value
        if isinstance(e, Var) and e.name in DTYPES:
            return DTYPES[e.name]
        if isinstance(e, ListExpr):
            return tuple(self._literal_attr(i) for i in e.items)
        raise self.fail("a pattern's attribute must be a literal or a variable", getattr(e, "pos", (0, 0)))

    def _op(self, e: Call) -> OpDef:
        opdef = OPS.get(e.fn)
        if opdef is None or opdef.kind == "leaf":
            import difflib

            close = difflib.get_close_matches(e.fn, [n for n, o in OPS.items() if o.kind != "leaf"], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise self.fail(f"unknown op '{e.fn}'{hint}", e.pos)
        n = len(e.args)
        if (opdef.arity is None and n < 1) or (opdef.arity is not None and n != opdef.arity):
            want = "one or more" if opdef.arity is None else str(opdef.arity)
            raise self.fail(f"{opdef.name} takes {want} operands, got {n}", e.pos)
        known = {s.name for s in opdef.attrs}
        for key, value in e.kwargs:
            if key not in known:
                allowed = ", ".join(sorted(known)) or "none"
                raise self.fail(f"{opdef.name} has no attribute '{key}' (attributes: {allowed})", getattr(value, "pos", e.pos))
        return opdef

    # -- replacements

    def replacement(self, e) -> Any:
        if isinstance(e, Var):
            if e.name in self.lets or e.name in self.tensor_vars:
                return RVar(e.name)
            if e.name in self.attr_vars:
                return RAttr(e.name)
            raise self.fail(f"'{e.name}' is not bound by the pattern", e.pos)
        if isinstance(e, ConstVar):
            if e.name not in self.const_vars:
                raise self.fail(f"'{e.name}' is not bound by the pattern", e.pos)
            return RVar(e.name)
        if isinstance(e, Lit):
            if isinstance(e.value, str):
                raise self.fail("a string can only be an attribute value", e.pos)
            return RLit(e.value)
        if isinstance(e, Call):
            opdef = self._op(e)
            args = tuple(self.replacement(a) for a in e.args)
            for _, value in e.kwargs:
                self.value_expr(value)
            return ROp(opdef.name, args, tuple(e.kwargs))
        raise self.fail("a list can only be an attribute value", e.pos)

    # -- guards and attribute expressions

    def value_expr(self, e) -> None:
        """Check an expression evaluated at match time (a guard, or an attribute in a replacement)."""
        if isinstance(e, Lit):
            return
        if isinstance(e, Var):
            bound = e.name in self.tensor_vars or e.name in self.attr_vars or e.name in self.lets
            if not bound and e.name not in DTYPES:
                raise self.fail(f"'{e.name}' is not bound by the pattern", e.pos)
            return
        if isinstance(e, ConstVar):
            if e.name not in self.const_vars:
                raise self.fail(f"'{e.name}' is not bound by the pattern", e.pos)
            return
        if isinstance(e, ListExpr):
            for i in e.items:
                self.value_expr(i)
            return
        if isinstance(e, BoolOp):
            for a in e.args:
                self.value_expr(a)
            return
        if isinstance(e, Call):
            if e.fn not in FUNCTIONS and e.fn not in VALUE_OPERATORS:
                known = ", ".join(sorted(FUNCTIONS))
                raise self.fail(f"unknown guard function '{e.fn}' (functions: {known})", e.pos)
            if e.kwargs:
                raise self.fail(f"{e.fn} takes no keyword arguments", e.pos)
            for a in e.args:
                self.value_expr(a)
            return
        raise AssertionError(e)  # pragma: no cover


def _text(source: str, tree) -> str:
    meta = tree.meta if isinstance(tree, Tree) else None
    if meta is None or getattr(meta, "empty", True):
        return str(tree)
    return " ".join(source[meta.start_pos : meta.end_pos].split())


class _FileParser:
    def __init__(self, source: Source):
        self.source = source.text
        self.loc = source.loc
        self.fail = source.error

    def rule(self, tree: Tree) -> Rule:
        children = list(tree.children)
        name_tok = children.pop(0)
        class_tree = children.pop(0)
        doc = ""
        if isinstance(children[0], Token) and children[0].type == "STRING":
            doc = _pyast.literal_eval(str(children.pop(0)))
        pattern_tree, replacement_tree = children.pop(0), children.pop(0)
        sections = {c.data: c for c in children if isinstance(c, Tree)}
        name = str(name_tok)
        cls, tolerance = self._class(class_tree)
        to_syntax = _ToSyntax()
        rc = _RuleCompiler(name, self.fail)

        for b in sections["bindings"].children if "bindings" in sections else []:
            let_name, let_expr = b.children
            if str(let_name) in rc.lets:
                raise self.fail(f"'{let_name}' is defined twice", _pos(let_name))
            rc.lets[str(let_name)] = to_syntax.transform(let_expr)

        pattern_syntax = to_syntax.transform(pattern_tree)
        if not isinstance(pattern_syntax, Call):
            raise self.fail("a pattern must start with an op, such as x * 1", _pos(pattern_tree.meta))
        pattern = rc.pattern(pattern_syntax)
        unused = [n for n in rc.lets if n not in rc._compiled_lets]
        if unused:
            raise self.fail(f"'{unused[0]}' is defined with `with` but the pattern never uses it", _pos(pattern_tree.meta))
        replacement = rc.replacement(to_syntax.transform(replacement_tree))

        guard, guard_text = None, ""
        if "guard" in sections:
            guard = to_syntax.transform(sections["guard"].children[0])
            rc.value_expr(guard)
            guard_text = _text(self.source, sections["guard"].children[0])

        domain = []
        for item in sections["domain"].children if "domain" in sections else []:
            var_tok, lo, hi = item.children
            lo, hi = to_syntax.transform(lo).value, to_syntax.transform(hi).value
            if str(var_tok) not in rc.tensor_vars and str(var_tok) not in rc.const_vars:
                raise self.fail(f"'{var_tok}' is not a value the pattern binds", _pos(var_tok))
            if not lo < hi:
                raise self.fail(f"the range of '{var_tok}' is empty: [{lo}, {hi}]", _pos(var_tok))
            domain.append((str(var_tok), float(lo), float(hi)))
        if domain and cls != "unsafe":
            raise self.fail("only an unsafe rule can state a domain with `assuming`", _pos(sections["domain"].meta))

        text = (_text(self.source, pattern_tree), _text(self.source, replacement_tree), guard_text)
        return Rule(
            name=name,
            cls=cls,
            pattern=pattern,
            replacement=replacement,
            guard=guard,
            doc=doc,
            tolerance=tolerance,
            domain=tuple(domain),
            tensor_vars=tuple(rc.tensor_vars),
            const_vars=tuple(rc.const_vars),
            attr_vars=tuple(rc.attr_vars),
            text=text,
            location=self.loc(_pos(name_tok)),
        )

    def _class(self, tree: Tree) -> tuple[str, Tolerance]:
        cls_tok = tree.children[0]
        cls = str(cls_tok)
        assert cls in CLASSES
        if len(tree.children) == 1:
            return cls, Tolerance()
        if cls == "exact":
            raise self.fail("an exact rule has no tolerance: it promises bit-identical results", _pos(cls_tok))
        values: dict[str, Any] = {}
        for item in tree.children[1].children:
            key_tok, value = item.children
            key = str(key_tok)
            if key in values:
                raise self.fail(f"'{key}' given twice", _pos(key_tok))
            if key in ("rtol", "atol"):
                if not isinstance(value, Tree):
                    raise self.fail(f"{key} must be a number", _pos(key_tok))
                number = _ToSyntax().transform(value).value
                if not number >= 0:
                    raise self.fail(f"{key} must not be negative", _pos(key_tok))
                values[key] = float(number)
            elif key == "scale":
                if not (isinstance(value, Token) and str(value) in ("result", "operands")):
                    raise self.fail("scale must be result or operands", _pos(key_tok))
                values[key] = str(value)
            else:
                raise self.fail(f"unknown tolerance '{key}' (expected rtol, atol or scale)", _pos(key_tok))
        return cls, Tolerance(values.get("rtol"), values.get("atol"), values.get("scale", "result"))


def parse_rules(text: str, filename: str = "<rules>") -> list[Rule]:
    """Parse rule-file text into rules, in the order they are written."""
    source = Source(text, filename)
    fp = _FileParser(source)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as err:
        raise source.syntax_error(err, _parser(), needs="a rule is: rule NAME CLASS PATTERN -> REPLACEMENT") from None
    rules: list[Rule] = []
    seen: dict[str, Rule] = {}
    for rule_tree in tree.children:
        try:
            rule = fp.rule(rule_tree)
        except VisitError as err:
            if isinstance(err.orig_exc, Located):
                raise fp.fail(err.orig_exc.message, err.orig_exc.pos) from None
            raise
        except Located as err:
            raise fp.fail(err.message, err.pos) from None
        if rule.name in seen:
            first = seen[rule.name].location
            raise fp.fail(f"rule '{rule.name}' is defined twice (first at line {first.line})", _pos(rule_tree.children[0]))
        seen[rule.name] = rule
        rules.append(rule)
    return rules


def load_rule_file(path: str | Path) -> list[Rule]:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FusecError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise FusecError(f"{path}: cannot read: {err}") from None
    return parse_rules(text, str(path))
