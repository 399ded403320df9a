"""The tuning database: one JSON object per line, appended, never rewritten.

Where it lives: `tune_db=` / `--db PATH`, else `$FUSEC_TUNE_DB`, else `tune.jsonl` in the user cache
directory (`$FUSEC_CACHE_DIR`, else `$XDG_CACHE_HOME/fusec`, else `~/.cache/fusec`).

One line is one tuning run of one kernel (fields in `fusec.tune.tuner.make_record`): its key
(kernel hash + backend identity + machine, see signature.py), the best and the default schedule with
their times, and every trial, so a later run can fit a model on old measurements.

Why JSON lines: appending one line is atomic enough to share between processes. Each append takes
an exclusive `flock`, writes the whole line in one call, then flushes and fsyncs, so concurrent
tuners never interleave. A reader takes a shared lock. A line that does not parse (a crash in the
middle of a write on another file system, a hand edit) is reported and skipped; the other records
stay usable. Before appending after such a torn line, a newline is written so the new record starts
on a line of its own.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from fusec.errors import FusecError
from fusec.runtime.cache import default_cache_dir
from fusec.tune.signature import FORMAT

DB_NAME = "tune.jsonl"
REQUIRED = ("format", "key", "kernel", "backend", "best")


def default_db_path() -> Path:
    env = os.environ.get("FUSEC_TUNE_DB")
    if env:
        return Path(env).expanduser()
    return default_cache_dir() / DB_NAME


@dataclass
class Contents:
    """What a read found: the usable records and one message per line that was skipped."""

    records: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _check_record(rec: object) -> str | None:
    """None if `rec` looks like a record, else what is wrong with it."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        return f"missing {', '.join(missing)}"
    best = rec["best"]
    if not isinstance(best, dict) or not isinstance(best.get("schedule"), dict):
        return "'best' has no schedule"
    t = best.get("median_s")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
        return f"'best' has no positive median_s ({t!r})"
    return None


class TuneDB:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path).expanduser() if path is not None else default_db_path()

    def __repr__(self) -> str:
        return f"TuneDB({str(self.path)!r})"

    # ------------------------------------------------------------------------------- writing

    def append(self, record: dict) -> None:
        """Add one record: lock, one write of the whole line, flush, fsync."""
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a+b") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    f.seek(0, os.SEEK_END)
                    if f.tell() > 0:
                        f.seek(-1, os.SEEK_END)
                        if f.read(1) != b"\n":  # a torn last line: start ours on a fresh line
                            line = "\n" + line
                    f.write(line.encode())
                    f.flush()
                    os.fsync(f.fileno())
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        except OSError as err:
            raise FusecError(f"{self.path}: cannot write the tuning database: {err.strerror}") from None

    # ------------------------------------------------------------------------------- reading

    def read(self) -> Contents:
        """Every usable record, plus a message for each line that was skipped."""
        out = Contents()
        try:
            with open(self.path, "rb") as f:
                fcntl.flock(f, fcntl.LOCK_SH)
                try:
                    data = f.read()
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        except (FileNotFoundError, NotADirectoryError):  # no database there (the cache dir may be unusable)
            return out
        except OSError as err:
            raise FusecError(f"{self.path}: cannot read the tuning database: {err.strerror}") from None
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                reason = getattr(err, "msg", None) or "not UTF-8"
                out.problems.append(f"{self.path}:{number}: not valid JSON ({reason}); line skipped")
                continue
            problem = _check_record(rec)
            if problem:
                out.problems.append(f"{self.path}:{number}: {problem}; line skipped")
                continue
            if rec["format"] != FORMAT:
                continue  # written by another version of fusec: not an error, just not ours
            out.records.append(rec)
        return out

    def records_for(self, key: str) -> list[dict]:
        return [r for r in self.read().records if r["key"] == key]
