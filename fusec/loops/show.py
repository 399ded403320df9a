"""Watching a schedule apply: the nest after each primitive (`fusec compile F --show schedule`).

As in Halide's lessons, every schedule primitive (split, reorder, parallel, unroll, vectorize, and
for a C matmul the BLAS tiling) prints the whole nest it produced under a header naming the
primitive and its arguments; on the C backend the simplifier's passes follow, one nest each.

    steps = schedule_steps(nest, schedule, backend="c")   # [(step, nest after it), ...]
    print(print_schedule_steps(nest, schedule, "c"))
"""

from __future__ import annotations

from fusec.loops.blocked import is_blocked
from fusec.loops.ir import AccInit, LoopNest, walk
from fusec.loops.matmul import matmul_tiles
from fusec.loops.printer import print_body, print_nest
from fusec.loops.schedule import Schedule, loop_schedule, schedule_or_fallback
from fusec.loops.simplify import simplify


def blas_matmul(nest: LoopNest, backend: str) -> bool:
    """True when the backend computes this nest's matmul by BLAS calls on tiles (the C backend)."""
    return backend == "c" and nest.matmul is not None


def schedule_steps(nest: LoopNest, schedule: Schedule, backend: str) -> list[tuple[str, LoopNest]]:
    """(step, nest after it) for each schedule primitive applied, then (C) each simplifier pass."""
    steps: list[tuple[str, LoopNest]] = []
    if blas_matmul(nest, backend):
        matmul_tiles(nest, schedule, steps)
    else:
        scheduled = schedule_or_fallback(nest, loop_schedule(schedule, backend), steps)
        if backend == "c":
            simplify(scheduled, steps)
    return steps


def scheduled_nests(nest: LoopNest, schedule: Schedule, backend: str) -> list[LoopNest]:
    """The nests the backend generates code from: the scheduled nest, or a matmul's epilogues."""
    if blas_matmul(nest, backend):
        return [e for e in matmul_tiles(nest, schedule).epilogues.values() if e is not None]
    scheduled = schedule_or_fallback(nest, loop_schedule(schedule, backend))
    return [simplify(scheduled) if backend == "c" else scheduled]


def schedule_text(nest: LoopNest, schedule: Schedule) -> str:
    """The schedule as printed with its nest: `reduce_block` shows wherever the nest has a float sum or
    product (the knob applies), even at its default."""
    text = str(schedule)
    if "reduce_block=" not in text and any(is_blocked(s) for s in walk(nest.body) if isinstance(s, AccInit)):
        text += f" reduce_block={schedule.reduce_block}"
    return text


def print_schedule_steps(nest: LoopNest, schedule: Schedule, backend: str) -> str:
    out = [f"# {nest.name}: as lowered (schedule: {schedule_text(nest, schedule)})", print_nest(nest)]
    for k, (step, after) in enumerate(schedule_steps(nest, schedule, backend), 1):
        out += [f"# {nest.name} step {k}: {step}", print_nest(after)]
    return "\n".join(out)


def print_scheduled(nest: LoopNest, schedule: Schedule, backend: str) -> str:
    """The nest as lowered, its schedule, and the scheduled nest(s) (`--show loops`)."""
    text = print_nest(nest) + f"  schedule: {schedule_text(nest, schedule)}\n"
    if blas_matmul(nest, backend):
        text += f"  {matmul_tiles(nest, schedule).describe()}\n"
        return "\n".join([text] + [print_nest(e) for e in scheduled_nests(nest, schedule, backend)])
    (scheduled,) = scheduled_nests(nest, schedule, backend)
    return text + "  scheduled:\n" + print_body(scheduled)
