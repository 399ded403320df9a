"""Parse .fg text into a Graph: the entry points `parse` and `load`.

The steps, each in its own module: lark parses the text with `fusec.lark`, which imports the
expressions shared with rule files from `expr.lark` (syntax.py); the shared transformer turns the
parse tree into a tiny AST (expr.py, fg_ast.py); the builder adds one graph node per call
(build.py); comments are attached to their statements (comments.py). Every mistake is reported at
file:line:col with the source line and a caret.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark
from lark.exceptions import UnexpectedInput, VisitError

from fusec.errors import FusecError, FusecSyntaxError, SourceLocation
from fusec.frontend import comments
from fusec.frontend.build import Builder
from fusec.frontend.fg_ast import ToAst
from fusec.frontend.syntax import Located, Source, make_parser
from fusec.ir.graph import Graph

_MAX_SOURCE_BYTES = 16 * 1024 * 1024


@functools.cache
def _parser() -> Lark:
    """The .fg parser, made on first use: importing the frontend does not load or build its tables."""
    return make_parser(Path(__file__).with_name("fusec.lark"), lexer_callbacks={"COMMENT": comments.collect})


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
    source = Source(text, filename)
    builder = Builder(source, sizes)
    raw = None
    try:
        comments.start()
        try:
            raw = _parser().parse(text)
        finally:
            found = comments.finish()
        tree = ToAst().transform(raw)
        graph = builder.build(tree)
        comments.attach(graph, found, builder.spans, builder.lines, raw.children[0].meta.end_line)
    except UnexpectedInput as err:
        raise source.syntax_error(err, _parser()) from None
    except Located as err:  # raised by the builder's own token checks
        raise builder.fail(err.message, err.pos) from None
    except VisitError as err:
        if isinstance(err.orig_exc, Located):
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
