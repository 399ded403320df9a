"""Draw a plan: the graph with one colour per kernel, and edges between kernels marked.

Arrows inside a kernel are grey; arrows that cross from one kernel to another (a value written to
memory and read back) are dashed red and labelled with the rule that kept them apart.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from fusec.ir.dot import Drawing, graph_drawing, to_dot, to_svg

if TYPE_CHECKING:  # Plan draws itself through this module, so it is imported only for types
    from fusec.fusion.plan import Plan

# A qualitative palette (ColorBrewer Set3 and Pastel1): adjacent kernels stay distinguishable.
PALETTE = [
    "#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
    "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f", "#fbb4ae", "#b3cde3", "#decbe4", "#fed9a6",
]
CUT_COLOR = "#d62728"


def group_colors(plan: Plan) -> dict[int, str]:
    return {grp.id: PALETTE[i % len(PALETTE)] for i, grp in enumerate(plan.groups)}


def plan_drawing(plan: Plan) -> Drawing:
    colors = group_colors(plan)
    fills = {n: colors[grp.id] for grp in plan.groups for n in grp.nodes}
    d = graph_drawing(plan.graph, fills)
    d.title = f"graph {plan.graph.name}: {plan.kernels} kernels ({plan.policy})"
    where = {n: grp.id for grp in plan.groups for n in grp.nodes}
    reasons = {(nf.producer, nf.consumer): nf.rule or "cut" for nf in plan.not_fused}
    for box in d.boxes:
        if box.id in where:
            box.label = f"K{where[box.id]} {box.label}"
    for a in d.arrows:
        if a.src in where and where[a.src] != where[a.dst]:
            a.color, a.dashed = CUT_COLOR, True
            a.label = reasons.get((a.src, a.dst), "")
    return d


def plan_dot(plan: Plan) -> str:
    return to_dot(plan_drawing(plan))


def plan_svg(plan: Plan) -> str:
    return to_svg(plan_drawing(plan))


def plan_html(plan: Plan, report: dict) -> str:
    """A self-contained page: the picture, a legend of kernels, and the DOT source."""
    colors = group_colors(plan)
    rows = []
    for grp in report["groups"]:
        rows.append(
            f"<tr><td style='background:{colors[grp['id']]}'>K{grp['id']}</td><td>{grp['kind']}</td>"
            f"<td>{html.escape(', '.join(grp['ops']))}</td><td>{html.escape(', '.join(grp['outputs']))}</td>"
            f"<td>{grp['predicted_ms']:.3f}</td></tr>"
        )
    cuts = "".join(
        f"<li><code>{html.escape(nf['producer'])} &rarr; {html.escape(nf['consumer'])}</code>: "
        f"<b>{html.escape(nf['rule'])}</b> {html.escape(nf['reason'])}</li>"
        for nf in report["not_fused"]
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>fusec plan: {html.escape(plan.graph.name)}</title>
<style>body{{font-family:Helvetica,Arial,sans-serif;margin:1.5em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}</style></head>
<body>
<h1>{html.escape(plan.graph.name)}: {plan.kernels} kernels ({html.escape(plan.policy)})</h1>
<p>Predicted {report['predicted_ms_fused']:.3f} ms fused against {report['predicted_ms_unfused']:.3f} ms unfused;
{report['bytes_fused'] / 2**20:.1f} MiB moved against {report['bytes_unfused'] / 2**20:.1f} MiB.
Dashed red arrows are values written to memory by one kernel and read by another.</p>
{plan_svg(plan)}
<h2>Kernels</h2>
<table><tr><th>kernel</th><th>kind</th><th>ops</th><th>writes</th><th>predicted ms</th></tr>
{''.join(rows)}
</table>
<h2>Edges left between kernels</h2>
<ul>{cuts or '<li>none</li>'}</ul>
<details><summary>DOT source</summary><pre>{html.escape(plan_dot(plan))}</pre></details>
</body></html>
"""
