"""A readable, Halide-like text form of a loop nest (`fusec compile F --show loops`)."""

from __future__ import annotations

from fusec.loops.ir import (
    AccInit,
    AccUpdate,
    Const,
    Let,
    LetIndex,
    LocalArray,
    Loop,
    LoopNest,
    Stmt,
    Store,
    expr_str,
)

_UPDATE = {"sum": "+=", "prod": "*="}


def print_nest(nest: LoopNest) -> str:
    head = [f"kernel {nest.name} ({nest.kind})"]
    if nest.comment:
        head += [f"  # {line}" for line in nest.comment.splitlines()]
    for b in nest.buffers:
        shape = ", ".join(map(str, b.shape))
        note = f"  (graph value {b.value})" if b.value != b.name else ""
        head.append(f"  {b.role:<5} {b.name}: {b.dtype.name}[{shape}]{note}")
    lines: list[str] = []
    _stmts(nest.body, 1, lines)
    return "\n".join(head + lines) + "\n"


def print_body(nest: LoopNest) -> str:
    """Only the statements of a nest (for a scheduled nest printed under its unscheduled one)."""
    lines: list[str] = []
    _stmts(nest.body, 1, lines)
    return "\n".join(lines) + "\n"


def _stmts(stmts: tuple[Stmt, ...], depth: int, out: list[str]) -> None:
    pad = "  " * depth
    for s in stmts:
        if isinstance(s, Loop):
            kind = "" if s.kind == "serial" else f"{s.kind} "
            out.append(f"{pad}{kind}for {s.var} in [{s.start}, {s.extent}):")
            _stmts(s.body, depth + 1, out)
        elif isinstance(s, LetIndex):
            out.append(f"{pad}{s.var} = {s.value}")
        elif isinstance(s, Let):
            out.append(f"{pad}{s.name} = {expr_str(s.value)}")
        elif isinstance(s, Store):
            out.append(f"{pad}{s.buffer}[{s.index}] = {expr_str(s.value)}")
        elif isinstance(s, AccInit):
            out.append(f"{pad}{s.dtype.name} {s.name} = {Const(s.identity, s.dtype)}  # {s.op}")
        elif isinstance(s, AccUpdate):
            if s.op in _UPDATE:
                out.append(f"{pad}{s.name} {_UPDATE[s.op]} {expr_str(s.value)}")
            else:
                out.append(f"{pad}{s.name} = {s.op}({s.name}, {expr_str(s.value)})")
        elif isinstance(s, LocalArray):
            out.append(f"{pad}{s.dtype.name} {s.name}[{s.size}]" + (f"  # {s.comment}" if s.comment else ""))
        else:  # pragma: no cover - every statement type is listed above
            raise AssertionError(type(s))
