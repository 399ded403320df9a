"""Progress of `fusec tune` on a terminal: a bar per kernel (tqdm, the `progress` extra) with the
trials done, the best time so far and the failures; without tqdm, one plain line per kernel as it
finishes. Nothing at all when the output is not a terminal or is JSON (the caller decides)."""

from __future__ import annotations

import sys

from fusec.tune.jobs import Trial
from fusec.tune.report import fmt_time
from fusec.tune.tuner import KernelResult


def _status(r: KernelResult) -> str:
    best = r.best
    failed = sum(r.failures.values())
    text = f"best {fmt_time(best.median_s) if best else '-'}"
    return text + (f", {failed} failed" if failed else "")


class Progress:
    """progress(result, trial) for tune_graph; close() when the run ends."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.current: KernelResult | None = None
        self.bar = None
        try:
            import tqdm
        except ImportError:
            self.tqdm = None
        else:
            self.tqdm = tqdm.tqdm

    def __call__(self, result: KernelResult, trial: Trial | None) -> None:
        if result is not self.current:
            self._finish()
            self.current = result
            if self.tqdm is not None and not result.reused:
                self.bar = self.tqdm(total=result.budget, desc=result.name, unit="trial", file=self.stream,
                                     leave=True, dynamic_ncols=True)
        if trial is not None and self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(_status(result), refresh=True)

    def _finish(self) -> None:
        r = self.current
        if r is None:
            return
        if self.bar is not None:
            if self.bar.total and self.bar.n < self.bar.total:  # stopped early (space, time budget)
                self.bar.total = self.bar.n
                self.bar.refresh()
            self.bar.close()
            self.bar = None
        elif r.reused:
            print(f"{r.name}: from the database, {len(r.trials)} trials, {_status(r)}", file=self.stream)
        else:
            print(f"{r.name}: {len(r.trials)}/{r.budget} trials, {_status(r)}", file=self.stream, flush=True)
        self.current = None

    def close(self) -> None:
        self._finish()
