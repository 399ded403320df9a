"""`fusec run --backend c --sanitize`: run the kernels under AddressSanitizer and UBSan.

A sanitize-mode kernel library needs the ASan runtime loaded before anything else in the process,
and Python has started long before fusec builds a kernel. So when it is not loaded yet, the command
runs itself again with the runtime preloaded (`LD_PRELOAD=$(cc -print-file-name=libasan.so)`),
which is what docs/robustness.md tells a user to do by hand for their own scripts.
"""

from __future__ import annotations

import os
import sys

from fusec.errors import FusecError


def ensure_sanitizer_runtime() -> None:
    """Return with FUSEC_SANITIZE=1 set if ASan is preloaded; otherwise re-run this command with it."""
    from fusec.runtime.build import sanitizer_env

    env = sanitizer_env()  # no compiler: a NoCompilerError, which is a FusecError
    runtime = env.get("LD_PRELOAD", "")
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        os.environ["FUSEC_SANITIZE"] = "1"
        return
    if not runtime or not os.path.isabs(runtime) or not os.path.exists(runtime):
        raise FusecError("--sanitize: the C compiler has no AddressSanitizer runtime (libasan.so); install it (e.g. libasan8)")
    preload = " ".join(p for p in (runtime, os.environ.get("LD_PRELOAD", "")) if p)
    child_env = {**os.environ, **env, "LD_PRELOAD": preload}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "fusec", *sys.argv[1:]], child_env)
