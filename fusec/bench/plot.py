"""The roofline chart of `fusec bench --plot OUT.png` (matplotlib, the optional `plot` extra).

x: arithmetic intensity of a kernel (flops per byte it moves, from the cost model); y: GFLOP/s.
The roof is min(bandwidth * intensity, peak): the slanted line is the STREAM triad measured in this
run (a shaded band when the files' measurements differ), the flat one the fma peak measured in
the run. Each C kernel is a filled dot at its measured rate (flops /
measured time) and a hollow ring at its predicted rate (flops / the model's time), joined by a thin
line, so how far the model is off reads straight from the picture. Kernels that do no arithmetic
(layout copies) have no intensity and are counted in the title instead. At --quick sizes the data
may fit in cache, and a kernel can then sit above the memory roof.
"""

from __future__ import annotations

from pathlib import Path

from fusec.bench.protocol import FileResult
from fusec.bench.system import Machine
from fusec.errors import FusecError


def require_matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise FusecError("--plot needs matplotlib: pip install 'fusec[plot]' (or pip install matplotlib)") from None
    return plt


def roofline(machine: Machine, results: list[FileResult], out: Path) -> None:
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    points = [(r, k) for r in results for k in r.kernels if k.flops > 0 and k.nbytes > 0]
    skipped = sum(1 for r in results for k in r.kernels if k.flops == 0 or k.nbytes == 0)
    peak = machine.peak_gflops or max(r.model["peak_gflops"] for r in results)
    slowest = min(r.triad_gbs for r in results)
    lo = min([k.intensity for _, k in points] + [0.01]) / 2
    hi = max([k.intensity for _, k in points] + [peak / slowest * 4])
    xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    triads = sorted(r.triad_gbs for r in results)  # each file's triad was measured right before it
    low, high = triads[0], triads[-1]
    ax.plot(xs, [min(high * x, peak) for x in xs], color="black", linewidth=1.2)
    if high > low * 1.05:
        ax.fill_between(xs, [min(low * x, peak) for x in xs], [min(high * x, peak) for x in xs], color="black", alpha=0.12)
    label = f"triad {low:.1f}-{high:.1f} GB/s (per file)" if high > low * 1.05 else f"triad {high:.1f} GB/s"
    ax.annotate(label, (lo * 1.5, high * lo * 1.5), fontsize=8, textcoords="offset points", xytext=(0, 8), rotation=0)
    ax.axhline(peak, color="grey", linestyle=":", linewidth=1)
    where = "measured in this run" if machine.peak_gflops else "cost model"
    ax.text(lo * 1.5, peak * 1.12, f"peak {peak:.0f} GFLOP/s float32 fma ({where})", ha="left", fontsize=8, color="grey")
    for i, result in enumerate(results):
        color = colors[i % len(colors)]
        mine = [k for r, k in points if r is result]
        for k in mine:
            predicted = k.flops / (k.predicted_ms * 1e-3) / 1e9
            ax.scatter([k.intensity], [predicted], facecolors="none", edgecolors=color, s=60, zorder=3)
            if k.measured_ms:
                measured = k.flops / (k.measured_ms * 1e-3) / 1e9
                ax.plot([k.intensity, k.intensity], [predicted, measured], color=color, linewidth=0.8, zorder=2)
                ax.scatter([k.intensity], [measured], color=color, s=40, zorder=4)
                if len(points) <= 12:  # more labels than that only hide each other
                    ax.annotate(k.name, (k.intensity, measured), textcoords="offset points", xytext=(5, -10), fontsize=7)
        ax.scatter([], [], color=color, s=40, label=f"{result.graph}: measured (dot), predicted (ring)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(top=peak * 3)  # room for the peak's label
    ax.set_xlabel("arithmetic intensity (flop / byte moved)")
    ax.set_ylabel("GFLOP/s")
    title = "fusec roofline: C kernels, measured against the cost model"
    if skipped:
        title += f"\n({skipped} kernel(s) without arithmetic not shown)"
    ax.set_title(title, fontsize=10)
    load = machine.load_before[0] if machine.load_before else None
    note = f"{machine.cpu}, {machine.threads} threads" + (f", load {load:.1f}" if load is not None else "")
    ax.text(0.99, 0.01, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="grey")
    ax.legend(loc="lower right", fontsize=7, bbox_to_anchor=(1.0, 0.05))
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    fig.tight_layout()
    try:
        fig.savefig(out)
    except OSError as err:
        raise FusecError(f"{out}: cannot write: {err.strerror}") from None
    finally:
        plt.close(fig)
