"""A test-only hook: a C backend that injects a fault into chosen candidates.

    tune_graph(graph, kernels, "c", settings, backend_factory="fusec.tune.faults:FaultyBackend",
               backend_options={"faults": ((str(schedule), "segfault"), ...)})

Every other candidate builds and runs as the real C backend would. The faults, and the failure
each must end as:

    compile     the compiler rejects the kernel          -> compile
    segfault    the kernel reads address 0 (SIGSEGV)     -> crash
    hang        the kernel never returns                 -> timeout
    oob_write   the kernel writes past its output        -> oob
    wrong       the kernel's output is off by one        -> wrong
    huge_alloc  the kernel allocates 1 TiB               -> oom
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import replace

import numpy as np

from fusec.codegen.c_backend import CBackend
from fusec.runtime.build import FusecCompileError

EXPECTED = {"compile": "compile", "segfault": "crash", "hang": "timeout", "oob_write": "oob", "wrong": "wrong",
            "huge_alloc": "oom"}


def _faulty_run(fault: str, real):
    def segfault(*arrays):
        ctypes.string_at(0)

    def hang(*arrays):
        while True:
            time.sleep(1)

    def oob_write(*arrays):
        real(*arrays)
        out = arrays[-1]
        ctypes.memset(out.ctypes.data + out.nbytes, 0x5A, 64)  # 64 bytes past the end of the output

    def wrong(*arrays):
        real(*arrays)
        arrays[-1][...] += 1

    def huge_alloc(*arrays):
        scratch = np.empty(1 << 40, dtype=np.uint8)  # 1 TiB
        scratch[::1 << 20] = 1
        real(*arrays)

    return {"segfault": segfault, "hang": hang, "oob_write": oob_write, "wrong": wrong, "huge_alloc": huge_alloc}[fault]


class FaultyBackend(CBackend):
    """The C backend with `faults`: (str(schedule), fault kind) pairs."""

    def __init__(self, faults: tuple[tuple[str, str], ...] = (), **options):
        super().__init__(**options)
        self.faults = dict(faults)
        unknown = set(self.faults.values()) - set(EXPECTED)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)} (known: {', '.join(EXPECTED)})")

    def build(self, graph, group, nest, schedule):
        fault = self.faults.get(str(schedule))
        if fault == "compile":
            raise FusecCompileError(f"injected: the compiler rejected {nest.name}")
        kernel = super().build(graph, group, nest, schedule)
        if fault is None:
            return kernel
        return replace(kernel, run=_faulty_run(fault, kernel.run))
