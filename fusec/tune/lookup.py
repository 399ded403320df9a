"""What compile asks the tuner: the best stored schedule of a kernel on this machine, if any.

    schedule = best_schedule(nest, backend)          # None: never tuned here; use the default

The database is read once per change of the file (keyed by its size and modification time), so a
compile with many kernels parses it once. Lines that do not parse are skipped with one warning per
file version; a stored schedule that no longer applies to the nest (fusec changed) is ignored.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from fusec.codegen.base import Backend
from fusec.errors import FusecError
from fusec.loops.ir import LoopNest
from fusec.loops.schedule import Schedule, ScheduleError, apply_schedule
from fusec.tune.db import TuneDB
from fusec.tune.signature import record_key

BUSY_LOAD = 0.75  # load average per core above which a run counts as busy
_INDEX: dict[Path, tuple[tuple[int, int], dict[str, list[dict]]]] = {}


def _index(db: TuneDB) -> dict[str, list[dict]]:
    try:
        st = os.stat(db.path)
    except (FileNotFoundError, NotADirectoryError):  # no database there (the cache dir may be unusable)
        return {}
    except OSError as err:
        raise FusecError(f"{db.path}: cannot read the tuning database: {err.strerror}") from None
    stamp = (st.st_size, st.st_mtime_ns)
    cached = _INDEX.get(db.path)
    if cached and cached[0] == stamp:
        return cached[1]
    contents = db.read()
    for problem in contents.problems:
        warnings.warn(f"tuning database: {problem}", stacklevel=3)
    by_key: dict[str, list[dict]] = {}
    for rec in contents.records:
        by_key.setdefault(rec["key"], []).append(rec)
    _INDEX[db.path] = (stamp, by_key)
    return by_key


def _busy(record: dict) -> bool:
    """Measured while other work held the cores? Such a run favours serial schedules (a parallel
    loop waits for a core), so a record from a quiet machine wins over it whatever the times say."""
    load = record.get("load_average")
    return isinstance(load, (int, float)) and load > BUSY_LOAD * (os.cpu_count() or 1)


def best_record(nest: LoopNest, backend: Backend, db: TuneDB | str | Path | None = None) -> dict | None:
    """The fastest stored record for this kernel, backend and machine whose schedule still applies;
    records measured on a quiet machine come before those measured on a busy one."""
    db = db if isinstance(db, TuneDB) else TuneDB(db)
    index = _index(db)
    if not index:  # nothing stored (no database yet): no key to compute (it hashes fusec's code generator)
        return None
    from fusec.tune.space import schedule_from_dict  # the search space: only where there are records

    candidates = index.get(record_key(nest, backend), [])
    for rec in sorted(candidates, key=lambda r: (_busy(r), r["best"]["median_s"])):
        try:
            apply_schedule(nest, schedule_from_dict(rec["best"]["schedule"]))
        except (FusecError, ScheduleError):
            continue
        return rec
    return None


def best_schedule(nest: LoopNest, backend: Backend, db: TuneDB | str | Path | None = None) -> Schedule | None:
    """The best tuned Schedule for `nest` built by `backend` on this machine, or None."""
    rec = best_record(nest, backend, db)
    if rec is None:
        return None
    from fusec.tune.space import schedule_from_dict

    return schedule_from_dict(rec["best"]["schedule"])
