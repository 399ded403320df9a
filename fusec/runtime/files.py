"""The mode a new output file gets: what open() would give it (0666 less the process's umask).

`tempfile.mkstemp` creates its file 0600 whatever the umask, so a file written through a temporary
file and an atomic rename must be given this mode (`os.fchmod(fd, new_file_mode())`) when it is an
output the user or other users read, as any file `open(path, "w")` creates would be.
"""

from __future__ import annotations

import os


def current_umask() -> int:
    """The process's umask. Read from /proc where it can be (os.umask can only be read by setting it,
    which for an instant would widen the mode of files other threads create)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """0666 less the umask: the mode open(path, "w") gives a new file."""
    return 0o666 & ~current_umask()
