"""Where fusec keeps what it caches on disk: kernels, parser tables, proofs and the tuning database.

`$FUSEC_CACHE_DIR`, else `$XDG_CACHE_HOME/fusec`, else `~/.cache/fusec`. A module of its own so that
the parser can find its cache without importing the C compiler driver.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    env = os.environ.get("FUSEC_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fusec"
