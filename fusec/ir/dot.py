"""Draw a graph: Graphviz DOT text, and SVG (through `dot` when installed, else a built-in layout).

A `Drawing` is a list of boxes and arrows with colours and styles; `graph_drawing` makes one from a
Graph, and the fusion planner makes one with a colour per kernel. `to_dot` writes DOT text;
`to_svg` renders SVG, with Graphviz when the `dot` program is on PATH and otherwise with a small
layered layout here (rank = longest path from an input), so notebooks and `fusec viz` work on a
machine without Graphviz.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Graph draws itself through this module, so it is imported only for types
    from fusec.ir.graph import Graph


@dataclass
class Box:
    id: str
    label: str
    fill: str = "#ffffff"
    shape: str = "box"  # box, ellipse (inputs), plain (constants)
    tooltip: str = ""


@dataclass
class Arrow:
    src: str
    dst: str
    color: str = "#555555"
    dashed: bool = False
    label: str = ""


@dataclass
class Drawing:
    name: str
    boxes: list[Box] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)
    title: str = ""


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(d: Drawing) -> str:
    lines = [f"digraph {_q(d.name)} {{", "  rankdir=TB;", '  graph [fontname="Helvetica"];',
             '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];']
    if d.title:
        lines.append(f"  label={_q(d.title)}; labelloc=t;")
    for b in d.boxes:
        attrs = [f"label={_q(b.label)}", f"shape={b.shape}", 'style="filled,rounded"' if b.shape == "box" else "style=filled",
                 f"fillcolor={_q(b.fill)}"]
        if b.tooltip:
            attrs.append(f"tooltip={_q(b.tooltip)}")
        lines.append(f"  {_q(b.id)} [{', '.join(attrs)}];")
    for a in d.arrows:
        attrs = [f"color={_q(a.color)}"]
        if a.dashed:
            attrs += ["style=dashed", "penwidth=2"]
        if a.label:
            attrs.append(f"label={_q(a.label)}")
        lines.append(f"  {_q(a.src)} -> {_q(a.dst)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_program() -> str | None:
    """The Graphviz `dot` executable, if installed."""
    return shutil.which("dot")


def to_svg(d: Drawing) -> str:
    """SVG text: Graphviz's layout when `dot` is installed, the built-in layered layout otherwise."""
    exe = dot_program()
    if exe:
        try:
            done = subprocess.run([exe, "-Tsvg"], input=to_dot(d), capture_output=True, text=True, timeout=60)
            if done.returncode == 0:
                return done.stdout
        except (OSError, subprocess.TimeoutExpired):
            pass  # fall back to the built-in layout
    return builtin_svg(d)


# ------------------------------------------------------------------ the built-in layout

_CHAR_W, _BOX_H, _GAP_X, _GAP_Y, _PAD = 7, 30, 24, 46, 16


def _ranks(d: Drawing) -> dict[str, int]:
    """Longest path from a source: every arrow points one or more ranks down."""
    preds: dict[str, list[str]] = {b.id: [] for b in d.boxes}
    for a in d.arrows:
        preds[a.dst].append(a.src)
    rank: dict[str, int] = {}

    def visit(n: str) -> int:
        if n not in rank:
            rank[n] = 0  # guards against cycles in a malformed drawing
            rank[n] = 1 + max((visit(p) for p in preds[n]), default=-1)
        return rank[n]

    for b in d.boxes:
        visit(b.id)
    return rank


def builtin_svg(d: Drawing) -> str:
    rank = _ranks(d)
    rows: dict[int, list[Box]] = {}
    for b in d.boxes:
        rows.setdefault(rank[b.id], []).append(b)
    preds: dict[str, list[str]] = {b.id: [] for b in d.boxes}
    for a in d.arrows:
        preds[a.dst].append(a.src)
    pos: dict[str, tuple[float, float, float]] = {}  # id -> (centre x, top y, width)
    width_of = {b.id: max(len(line) for line in b.label.split("\n")) * _CHAR_W + 20 for b in d.boxes}
    top = _PAD + (24 if d.title else 0)
    max_x = 0.0
    for r in sorted(rows):
        row = rows[r]
        # order a row by the mean position of its predecessors (one barycentre sweep: fewer crossings)
        def centre(b: Box) -> float:
            xs = [pos[p][0] for p in preds[b.id] if p in pos]
            return sum(xs) / len(xs) if xs else 0.0

        row.sort(key=centre)
        x = _PAD
        for b in row:
            w = width_of[b.id]
            pos[b.id] = (x + w / 2, top + r * (_BOX_H + _GAP_Y), w)
            x += w + _GAP_X
        max_x = max(max_x, x)
    height = top + (max(rows, default=0) + 1) * (_BOX_H + _GAP_Y) + _PAD
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{int(max_x + _PAD)}" height="{int(height)}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="11">',
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='9' markerHeight='9' markerUnits='userSpaceOnUse' "
        "orient='auto-start-reverse'><path d='M 0 0 L 10 5 L 0 10 z' fill='context-stroke'/></marker></defs>",
        f"<title>{html.escape(d.name)}</title>",
    ]
    if d.title:
        out.append(f'<text x="{_PAD}" y="{_PAD + 10}" font-size="13">{html.escape(d.title)}</text>')
    for a in d.arrows:
        x1, y1, _ = pos[a.src]
        x2, y2, _ = pos[a.dst]
        dash = ' stroke-dasharray="6,4" stroke-width="2"' if a.dashed else ' stroke-width="1.2"'
        out.append(
            f'<line x1="{x1:.1f}" y1="{y1 + _BOX_H:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{a.color}"{dash} '
            'marker-end="url(#arrow)"/>'
        )
        if a.label:
            out.append(
                f'<text x="{(x1 + x2) / 2 + 4:.1f}" y="{(y1 + _BOX_H + y2) / 2:.1f}" fill="{a.color}" font-size="9">'
                f"{html.escape(a.label)}</text>"
            )
    for b in d.boxes:
        cx, y, w = pos[b.id]
        tip = f"<title>{html.escape(b.tooltip)}</title>" if b.tooltip else ""
        if b.shape == "ellipse":
            shape = (f'<ellipse cx="{cx:.1f}" cy="{y + _BOX_H / 2:.1f}" rx="{w / 2:.1f}" ry="{_BOX_H / 2}" '
                     f'fill="{b.fill}" stroke="#333"/>')
        else:
            shape = (f'<rect x="{cx - w / 2:.1f}" y="{y:.1f}" width="{w:.1f}" height="{_BOX_H}" rx="6" '
                     f'fill="{b.fill}" stroke="#333"/>')
        text = html.escape(b.label.split("\n")[0])
        out.append(f'<g>{tip}{shape}<text x="{cx:.1f}" y="{y + _BOX_H / 2 + 4:.1f}" text-anchor="middle">{text}</text></g>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ graphs


def node_label(graph: Graph, name: str) -> str:
    node = graph.node(name)
    if node.op == "input":
        return f"{name}: {node.type}"
    if node.op == "const":
        return repr(node.attrs["value"])
    return f"{name} = {node.op}"


def graph_drawing(graph: Graph, fills: dict[str, str] | None = None) -> Drawing:
    """Inputs as ellipses, ops as boxes; constants are left out (they are inlined everywhere)."""
    fills = fills or {}
    d = Drawing(graph.name, title=f"graph {graph.name}")
    outputs = set(graph.outputs)
    for node in graph.nodes():
        if node.op == "const":
            continue
        shape = "ellipse" if node.op == "input" else "box"
        label = node_label(graph, node.name) + ("  (out)" if node.name in outputs else "")
        d.boxes.append(Box(node.name, label, fills.get(node.name, "#eeeeee" if shape == "ellipse" else "#ffffff"),
                           shape, str(node.type)))
        for a in dict.fromkeys(node.args):
            if graph.node(a).op != "const":
                d.arrows.append(Arrow(a, node.name))
    return d


def graph_to_dot(graph: Graph) -> str:
    return to_dot(graph_drawing(graph))


def graph_svg(graph: Graph) -> str:
    return to_svg(graph_drawing(graph))
