"""The reports of `fusec tune`: text for people, JSON for scripts."""

from __future__ import annotations

import os

from fusec.tune.jobs import FAILURES, Trial
from fusec.tune.lookup import BUSY_LOAD
from fusec.tune.space import Space, schedule_from_dict, schedule_to_dict
from fusec.tune.tuner import KernelResult


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} us"


def load_note() -> str | None:
    """A warning when other work is running: parallel kernels then time badly and noisily."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    cores = os.cpu_count() or 1
    if load > BUSY_LOAD * cores:
        return f"note: load average {load:.1f} on {cores} cores; other work is running, so timings are noisy"
    return None


def format_space(space: Space) -> str:
    nest = space.nest
    lines = [f"kernel {nest.name} ({nest.kind}): {space.describe()}"]
    lines += [f"  {knob:<12} {values}" for knob, values in space.options.items()]
    lines.append(f"  {'default':<12} {space.default}")
    return "\n".join(lines)


def format_stored(nest, record: dict | None, default) -> str:
    """What compile would use for this kernel: the stored best, or the default when none matches."""
    if record is None:
        return f"kernel {nest.name} ({nest.kind}): not tuned on this machine; compile uses the default {default}"
    best = record["best"]
    schedule = schedule_from_dict(best["schedule"])
    speedup = record.get("speedup")
    extra = f", {speedup:.2f}x the default" if isinstance(speedup, (int, float)) else ""
    return (f"kernel {nest.name} ({nest.kind}): tuned {record.get('created', '')}; compile uses {schedule} "
            f"({fmt_time(best['median_s'])}{extra})")


def _trial_line(label: str, t: Trial) -> str:
    if t.ok:
        return f"  {label:<8} {t.schedule}  {fmt_time(t.median_s)} (spread {t.spread:.0%}, {len(t.samples)} samples)"
    return f"  {label:<8} {t.schedule}  {t.status}: {t.detail}"


def format_failures(counts) -> str:
    parts = [f"{counts[k]} {k}" for k in FAILURES if counts.get(k)]
    return ", ".join(parts)


def format_result(r: KernelResult) -> str:
    if r.skipped:
        return f"kernel {r.name} ({r.kind}): nothing to tune: {r.skipped}"
    ok = sum(t.ok for t in r.trials)
    failed = len(r.trials) - ok
    n = len(r.space)
    head = f"kernel {r.name} ({r.kind}): {n} candidate{'s' if n != 1 else ''}, strategy {r.strategy}"
    summary = f"  tried {len(r.trials)} in {r.seconds:.1f} s: {ok} ok, {failed} failed"
    if r.reused:
        summary = f"  from the database ({r.record.get('created', '')}): {len(r.trials)} trials, nothing measured"
    if failed:
        summary += f" ({format_failures(r.failures)})"
    if r.pruned:
        summary += f"; {r.pruned} pruned by the model"
    lines = [head, summary]
    if r.default is not None:
        lines.append(_trial_line("default", r.default))
    best = r.best
    if best is None:
        lines.append("  no candidate ran correctly; nothing stored")
    else:
        line = _trial_line("best", best)
        if r.speedup is not None:
            line += f"  {r.speedup:.2f}x the default"
        lines.append(line)
    return "\n".join(lines)


def _trial_json(t: Trial | None) -> dict | None:
    if t is None:
        return None
    return {"schedule": schedule_to_dict(t.schedule), "text": str(t.schedule), "status": t.status,
            "median_s": t.median_s, "spread": t.spread, "samples": len(t.samples), "detail": t.detail,
            "load": t.load, "machine": t.machine}


def result_json(r: KernelResult) -> dict:
    return {
        "kernel": r.name,
        "kind": r.kind,
        "key": r.key,
        "space": len(r.space),
        "strategy": r.strategy,
        "tried": len(r.trials),
        "ok": sum(t.ok for t in r.trials),
        "failures": {k: r.failures.get(k, 0) for k in FAILURES},
        "pruned": r.pruned,
        "seconds": r.seconds,
        "default": _trial_json(r.default),
        "best": _trial_json(r.best),
        "speedup": r.speedup,
        "stored": r.record is not None and not r.reused,
        "reused": r.reused,
        "skipped": r.skipped,
        "invalid": dict(r.space.invalid),
    }


# ----------------------------------------------------------------------------------------------
# `fusec tune --report`: what the database holds


def summarise(records: list[dict]) -> list[dict]:
    """One row per key: the newest record's kernel and machine, the fastest best over its runs."""
    by_key: dict[str, list[dict]] = {}
    for rec in records:
        by_key.setdefault(rec["key"], []).append(rec)
    rows = []
    for key, recs in by_key.items():
        newest = recs[-1]
        fastest = min(recs, key=lambda r: r["best"]["median_s"])
        rows.append({
            "key": key, "kernel": newest.get("kernel", "?"), "graph": newest.get("graph", "?"),
            "backend": newest.get("backend", "?"), "shapes": newest.get("shapes", {}), "runs": len(recs),
            "trials": sum(len(r.get("trials", [])) for r in recs), "best": fastest["best"],
            "speedup": fastest.get("speedup"), "load_average": fastest.get("load_average"),
            "created": newest.get("created", ""), "machine": (newest.get("machine") or {}).get("cpu", "?"),
        })
    return sorted(rows, key=lambda r: (r["graph"], r["kernel"], r["created"]))


def format_report(path, rows: list[dict], problems: list[str]) -> str:
    if not rows:
        return f"{path}: no tuning records" + (f" ({len(problems)} lines skipped)" if problems else "")
    lines = [f"{path}: {len(rows)} kernel{'s' if len(rows) != 1 else ''} tuned"
             + (f", {len(problems)} lines skipped" if problems else "")]
    for r in rows:
        shapes = " ".join(f"{k}{v}" for k, v in r["shapes"].items())
        speedup = f"{r['speedup']:.2f}x the default" if isinstance(r["speedup"], (int, float)) else "-"
        load = f"load {r['load_average']}" if r["load_average"] is not None else ""
        lines.append(f"{r['graph']}/{r['kernel']} ({r['backend']}, {shapes}): {r['runs']} run(s), {r['trials']} trials")
        lines.append(f"  best {schedule_from_dict(r['best']['schedule'])}  {fmt_time(r['best']['median_s'])}, "
                     f"{speedup}; {load}, {r['created']}, {r['machine']}")
    return "\n".join(lines)
