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

from fusec.tune.db import TuneDB, default_db_path
from fusec.tune.jobs import FAILURES, Trial
from fusec.tune.lookup import best_record, best_schedule
from fusec.tune.space import Space, search_space
from fusec.tune.strategies import STRATEGIES
from fusec.tune.tuner import KernelResult, TuneSettings, tune_graph

__all__ = [
    "FAILURES", "STRATEGIES", "KernelResult", "Space", "Trial", "TuneDB", "TuneSettings", "best_record",
    "best_schedule", "default_db_path", "search_space", "tune_graph",
]
