"""One error family for user mistakes.

A `FusecError` is something the *user* can fix: bad source text, a shape mismatch, a wrong input
array, a bad flag. The CLI prints its message and exits with status 2, without a traceback.
Anything else that escapes is a bug in fusec and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceLocation:
    """A place in a source file: 1-based line and column, plus the text of that line."""

    filename: str
    line: int
    column: int
    line_text: str = ""

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.column}"

    def caret_block(self) -> str:
        """The offending line with a caret under the column, as compilers print it."""
        if not self.line_text:
            return ""
        text = self.line_text.rstrip("\n").expandtabs(1)
        caret = " " * max(self.column - 1, 0) + "^"
        return f"    {text}\n    {caret}"


class FusecError(Exception):
    """A user-facing error: one clear message, optionally tied to a source location."""

    exit_code = 2

    def __init__(self, message: str, location: SourceLocation | None = None):
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location is None:
            return f"error: {self.message}"
        block = self.location.caret_block()
        head = f"{self.location}: error: {self.message}"
        return f"{head}\n{block}" if block else head


class FusecSyntaxError(FusecError):
    """The text could not be parsed."""


class FusecTypeError(FusecError):
    """Shapes, dtypes, arity or attributes do not fit an op."""


class FusecInputError(FusecError):
    """Arrays passed at run time do not match the graph's declared inputs."""
