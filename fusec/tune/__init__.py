"""Layer 6: the autotuner. Search each kernel's schedules, measure them safely, remember the best.

    space.py       the knobs of a kernel and every legal, distinct Schedule
    model.py       predicted time of a schedule (roofline + schedule effects; a fitted model)
    strategies.py  exhaustive, random, model-guided (and auto)
    jobs.py        picklable jobs and results (Trial: ok, compile, crash, timeout, wrong)
    worker.py      build a candidate; measure one in a child process (check first, then time)
    isolate.py     a process per candidate, from a fork server, with a timeout
    db.py          the JSON-lines database (locked appends, corrupt lines skipped)
    signature.py   record keys: kernel hash, backend identity, machine signature
    tuner.py       tune_graph / tune_kernel: the loop that ties them together
    lookup.py      best_schedule(): what compile asks
    report.py      the text and JSON reports of `fusec tune`
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusec.lazy import lazy_names

# public name -> the module that defines it, imported on first use (PEP 562): `fusec.compile` asks
# lookup.best_schedule for each kernel and should not load the tuner, its process pools and
# `statistics` (with `decimal`) to do so
_LAZY = {
    "TuneDB": "fusec.tune.db", "default_db_path": "fusec.tune.db",
    "FAILURES": "fusec.tune.jobs", "Trial": "fusec.tune.jobs",
    "best_record": "fusec.tune.lookup", "best_schedule": "fusec.tune.lookup",
    "Space": "fusec.tune.space", "search_space": "fusec.tune.space",
    "STRATEGIES": "fusec.tune.strategies",
    "KernelResult": "fusec.tune.tuner", "TuneSettings": "fusec.tune.tuner", "tune_graph": "fusec.tune.tuner",
}
__all__ = [
    "FAILURES", "STRATEGIES", "KernelResult", "Space", "Trial", "TuneDB", "TuneSettings", "best_record",
    "best_schedule", "default_db_path", "search_space", "tune_graph",
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)


if TYPE_CHECKING:
    from fusec.tune.db import TuneDB, default_db_path
    from fusec.tune.jobs import FAILURES, Trial
    from fusec.tune.lookup import best_record, best_schedule
    from fusec.tune.space import Space, search_space
    from fusec.tune.strategies import STRATEGIES
    from fusec.tune.tuner import KernelResult, TuneSettings, tune_graph
