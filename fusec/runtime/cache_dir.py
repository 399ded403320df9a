"""Where fusec keeps what it caches on disk, and how a small cached file is written and read back.

The directory is `$FUSEC_CACHE_DIR`, else `$XDG_CACHE_HOME/fusec`, else `~/.cache/fusec`; it holds
the kernels (cache.py), the parser tables (frontend/grammar_cache.py), the parsed rule library
(rewrite/rule_cache.py), proofs and the tuning database. A module of its own so that the parser can
find its cache without importing the C compiler driver.

A cached file (`write_entry`) is one line, the entry's key and the SHA-256 of the rest, then the
payload. `read_entry` gives the payload back only when both match; a damaged file is reported with a
warning and treated as missing, so the caller rebuilds it. Files appear through a rename, so a
reader never sees half of one, and a directory that cannot be written only means nothing is kept.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path


def default_cache_dir() -> Path:
    env = os.environ.get("FUSEC_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fusec"


def read_entry(path: Path, key: str, what: str) -> bytes | None:
    """The payload stored under `key` at `path`; None if there is none or it is damaged (with a
    warning that names `what` the file is)."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        return corrupt_entry(path, what, f"unreadable: {err.strerror}")
    header, _, payload = data.partition(b"\n")
    if header != f"{key} {hashlib.sha256(payload).hexdigest()}".encode():
        return corrupt_entry(path, what, "its checksum does not match")
    return payload


def corrupt_entry(path: Path, what: str, problem: str) -> None:
    """Warn that the cached file at `path` cannot be used and will be rebuilt."""
    warnings.warn(f"fusec: corrupt {what} {path} ({problem}); rebuilding it", RuntimeWarning, stacklevel=4)
    return None


def write_entry(path: Path, key: str, payload: bytes) -> None:
    """Store `payload` under `key` at `path` (temporary file, then rename); never raises OSError."""
    header = f"{key} {hashlib.sha256(payload).hexdigest()}\n".encode()
    tmp = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(header + payload)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
