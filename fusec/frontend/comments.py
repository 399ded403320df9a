"""Keep the comments of .fg source on the Graph, so `fusec fmt` writes them back.

The grammar ignores comments, so the lexer hands each one to `collect` as it goes by. After the graph
is built, `attach` gives each comment to a statement (a parameter, a binding, an assertion, the
return, or the graph header) by its line:

* a comment after code on the same line belongs to the last statement that starts on or spans that
  line (on the header's first line, the header rather than a parameter);
* a comment on a line of its own belongs to the next statement, or to the end of the graph (`}`)
  when no statement follows; comments after the closing brace (as `fusec rewrite --trace` writes)
  stay after it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lark import Token

from fusec.ir.graph import Graph

_pending = threading.local()  # the comments the lexer has seen in the current parse


def collect(token: Token) -> Token:
    """The lexer's callback for COMMENT tokens."""
    found = getattr(_pending, "comments", None)
    if found is not None:
        found.append(token)
    return token


def start() -> None:
    _pending.comments = []


def finish() -> list[Token]:
    found, _pending.comments = getattr(_pending, "comments", None) or [], None
    return found


@dataclass
class Span:
    """A statement's key on the Graph (see Graph.comments) and the lines it covers."""

    key: str
    first: int
    last: int
    parameter: bool = False


def attach(graph: Graph, comments: list[Token], spans: list[Span], lines: list[str], end: int) -> None:
    """`end` is the line of the graph's closing brace; comments below it stay below it."""
    header = spans[0]  # the graph header, from `graph` to its last parameter
    for tok in comments:
        line, text = tok.line, str(tok).rstrip()
        if line > end:
            graph.comments.setdefault("end", []).append(text)
            continue
        before = lines[line - 1][: tok.column - 1] if 0 < line <= len(lines) else ""
        if before.strip():  # after code: the statement on this line
            owners = [(s.first, k, s) for k, s in enumerate(spans) if s.first <= line <= s.last]
            if line == header.first:  # parameters on the header's first line leave it to the header
                owners = [o for o in owners if not o[2].parameter]
            owner = max(owners, key=lambda o: o[:2])[2] if owners else header
            graph.line_comments[owner.key] = _join(graph.line_comments.get(owner.key), text)
            continue
        following = [s for s in spans if s.first > line]
        key = min(following, key=lambda s: s.first).key if following else "}"
        graph.comments.setdefault(key, []).append(text)


def _join(old: str | None, text: str) -> str:
    return text if old is None else f"{old} {text}"
