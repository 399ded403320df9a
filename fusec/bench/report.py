"""`fusec bench` results as a terminal table, a Markdown file, or JSON."""

from __future__ import annotations

import json

from fusec.bench.protocol import FileResult
from fusec.bench.system import Machine

COLUMNS = ("path", "outputs", "median ms", "spread ms", "vs unfused", "GB/s", "% triad", "predicted ms", "kernels", "status")


def _num(value, fmt: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{suffix}"


def file_rows(result: FileResult) -> list[list[str]]:
    rows = []
    for name, d in result.path_dicts().items():
        rows.append([
            name,
            d["outputs"],
            _num(d["median_ms"], ".3f"),
            _num(d["spread_ms"], ".3f"),
            _num(d["speedup_vs_unfused"], ".2f", "x"),
            _num(d["gbps"], ".1f"),
            _num(d["pct_of_bandwidth"], ".0f", "%"),
            _num(d["predicted_ms"], ".3f"),
            _num(d["kernels"], "d"),
            d["status"],
        ])
    return rows


def file_heading(result: FileResult) -> list[str]:
    sizes = ", ".join(f"{k}={v}" for k, v in result.sizes.items())
    return [
        f"{result.file}: graph {result.graph}" + (f" ({sizes})" if sizes else ""),
        f"triad bandwidth in this run {result.triad_gbs:.1f} GB/s ({result.threads} threads); "
        f"bytes moved: unfused {result.bytes_unfused / 2**20:.2f} MiB, fused {result.bytes_fused / 2**20:.2f} MiB "
        f"(cost model); predicted times use the measured bandwidth",
    ]


def text_report(machine: Machine, results: list[FileResult]) -> str:
    lines = machine.header_lines()
    for result in results:
        rows = [list(COLUMNS)] + file_rows(result)
        widths = [max(len(r[k]) for r in rows) for k in range(len(COLUMNS) - 1)]
        lines += [""] + file_heading(result)
        for r in rows:
            cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])] + [c.rjust(w) for c, w in zip(r[2:-1], widths[2:])]
            lines.append("  " + "  ".join(cells) + "  " + r[-1])
    lines += ["", "spread: interquartile range of the repeats; vs unfused: the interpreter's median / the path's median;",
              "% triad: achieved GB/s (the path's bytes / median) against the STREAM triad measured in this run."]
    warning = machine.load_warning()
    if warning:
        lines.append(f"warning: {warning}")
    return "\n".join(lines) + "\n"


def markdown_report(machine: Machine, results: list[FileResult]) -> str:
    out = ["# fusec bench", ""] + [f"- {line}" for line in machine.header_lines()]
    for result in results:
        head = file_heading(result)
        out += ["", f"## {head[0]}", "", head[1], ""]
        out.append("| " + " | ".join(COLUMNS) + " |")
        out.append("| " + " | ".join("---" for _ in COLUMNS) + " |")
        for r in file_rows(result):
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    out += ["", "Spread is the interquartile range of the repeats. Absolute times are noisy on a shared machine;",
            "the ratios measured in one run are what carry over to another machine."]
    return "\n".join(out) + "\n"


def json_report(machine: Machine, results: list[FileResult]) -> str:
    files = []
    for r in results:
        files.append({
            "file": r.file,
            "graph": r.graph,
            "sizes": r.sizes,
            "triad_gbs": r.triad_gbs,
            "threads": r.threads,
            "bytes_unfused": r.bytes_unfused,
            "bytes_fused": r.bytes_fused,
            "model": r.model,
            "paths": r.path_dicts(),
            "kernels": [{"name": k.name, "kind": k.kind, "bytes": k.nbytes, "flops": k.flops,
                         "predicted_ms": k.predicted_ms, "measured_ms": k.measured_ms} for k in r.kernels],
        })
    return json.dumps({"machine": machine.to_dict(), "files": files}, indent=2) + "\n"
