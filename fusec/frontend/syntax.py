"""The lark side of both languages (.fg graphs and rule files): building a parser whose grammar
imports the shared expressions of `expr.lark`, and turning lark's errors and the parsers' own
located mistakes into one style of message: file:line:col, the source line and a caret.
"""

from __future__ import annotations

from pathlib import Path

from lark import Lark
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from fusec.errors import FusecSyntaxError, SourceLocation
from fusec.frontend.grammar_cache import cached_lark

_HERE = Path(__file__).resolve().parent

# how a terminal that is not a plain string reads in "expected ..." lists
_READABLE = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "CONST_VAR": "a $constant",
    "CMP_OP": "a comparison",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*', '/' or '@'",
    "CLASS": "exact, approx or unsafe",
}


def make_parser(grammar: Path, **options) -> Lark:
    """An LALR parser for `grammar`, which may `%import expr (...)` from this folder. Its tables come
    from the grammar cache (grammar_cache.py) when a process built them before."""
    options = dict(
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        import_paths=[str(_HERE)],
        source_path=str(grammar),
        **options,
    )
    return cached_lark(grammar, grammar.read_text(), sorted(_HERE.glob("*.lark")), options)


class Located(Exception):
    """A mistake found while reading the syntax, carrying (message, (line, column)); the parser
    that catches it turns it into a FusecSyntaxError at that place."""

    def __init__(self, message: str, pos: tuple[int, int]):
        super().__init__(message)
        self.message, self.pos = message, pos


def pos_of(tok_or_meta) -> tuple[int, int]:
    """(line, column) of a lark token, tree meta or syntax node; (0, 0) if it has none."""
    if hasattr(tok_or_meta, "pos") and not hasattr(tok_or_meta, "line"):
        return tok_or_meta.pos
    return (getattr(tok_or_meta, "line", 0) or 0, getattr(tok_or_meta, "column", 0) or 0)


class Source:
    """A source text and its file name: makes locations and located errors."""

    def __init__(self, text: str, filename: str):
        self.text = text
        self.filename = filename
        self.lines = text.splitlines()

    def loc(self, pos: tuple[int, int]) -> SourceLocation:
        line, col = pos
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return SourceLocation(self.filename, line, col, text)

    def error(self, message: str, pos: tuple[int, int]) -> FusecSyntaxError:
        return FusecSyntaxError(message, self.loc(pos))

    def end(self) -> tuple[int, int]:
        """The place just after the last character of the last line."""
        if not self.lines:
            return (1, 1)
        return (len(self.lines), len(self.lines[-1]) + 1)

    def syntax_error(self, err: UnexpectedInput, parser: Lark, needs: str = "") -> FusecSyntaxError:
        """lark's error as a message in the user's terms; `needs` is what a whole file must contain,
        said when the file ends too early."""
        at_end = isinstance(err, UnexpectedEOF) or (isinstance(err, UnexpectedToken) and err.token.type == "$END")
        line = getattr(err, "line", None)
        pos = self.end() if at_end or line is None or line < 1 else (line, getattr(err, "column", 1) or 1)
        if isinstance(err, UnexpectedCharacters):
            ch = self.text[err.pos_in_stream] if err.pos_in_stream < len(self.text) else ""
            return self.error(f"unexpected character {ch!r}", pos)
        expected = describe_expected(parser, getattr(err, "expected", None) or set())
        if at_end:
            message = "unexpected end of file"
            message += f"; expected {expected}" if expected else ""
            return self.error(message + (f" ({needs})" if needs else ""), pos)
        if isinstance(err, UnexpectedToken):
            return self.error(f"unexpected '{err.token}'" + (f"; expected {expected}" if expected else ""), pos)
        return self.error(str(err).splitlines()[0], pos)  # pragma: no cover


def describe_expected(parser: Lark, expected: set[str]) -> str:
    readable = []
    for name in expected:
        if name.startswith("__") or name == "$END":
            continue
        try:
            pattern = parser.get_terminal(name).pattern
        except KeyError:
            readable.append(name)
            continue
        if pattern.type == "str":
            readable.append(f"'{pattern.value}'")
        else:
            readable.append(_READABLE.get(name, name.lower()))
    readable = sorted(set(readable))
    if len(readable) > 6:
        readable = readable[:6] + ["..."]
    return ", ".join(readable)
