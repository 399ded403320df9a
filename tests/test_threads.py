"""NumPy's OpenBLAS pool restarted with short spins (runtime/threads.py quiet_blas_threads): once per
process, never over a timeout the user chose, and computing as before. That the kernels then run
faster is measured in bench/bench_models.py, not here."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

QUIET_BLAS = """
import numpy as np
from fusec.runtime import threads
found = threads._openblas("openblas_thread_timeout")
if found is None:
    print("no OpenBLAS")
    raise SystemExit(0)
timeout = found[0]
a = np.random.rand(300, 300)
expected = a @ a
print(threads.quiet_blas_threads(), threads.quiet_blas_threads(), timeout())
assert np.array_equal(a @ a, expected)  # the restarted pool computes as before
"""


def _run(env: dict) -> list[str]:
    out = subprocess.run([sys.executable, "-c", QUIET_BLAS], capture_output=True, text=True, env=env, check=True).stdout
    if out.strip() == "no OpenBLAS":
        pytest.skip("NumPy's BLAS is not OpenBLAS")
    return out.split()


def test_openblas_threads_are_restarted_once_and_the_environment_restored():
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT")}
    # restarted the first time only; the library's copy of the environment is as it was (unset: 0)
    assert _run(env) == ["True", "False", "0"]


def test_a_timeout_the_user_chose_is_kept():
    env = {k: v for k, v in os.environ.items() if k != "GOTO_THREAD_TIMEOUT"}
    assert _run({**env, "OPENBLAS_THREAD_TIMEOUT": "20"}) == ["False", "False", "20"]
