"""What a tuning record is keyed by: the kernel, the backend that builds it, and the machine.

A record measured on one machine, compiler or backend configuration says nothing about another, so
the key holds all three:

* kernel hash: SHA-256 of the *unscheduled* loop nest's printed text (kernel name and comment left
  out). The text holds the buffers' shapes and dtypes and every statement, so two graphs that lower
  to the same nest share records, and any change to what the kernel computes changes the key.
* backend identity: its name, and for the C backend the compiler identity, flags and matmul mode.
* machine signature: CPU model, core count, C compiler version, NumPy version and OMP_NUM_THREADS.

`key_parts` lists every part by name (kernel hash, shapes, dtypes, backend, compiler identity,
compiler flags, codegen version, machine id); the key is their hash, so a change of any one part is
a different key: a miss, never a stale hit. The codegen version is fusec's version plus a hash of
the code generators' and the loop layer's source, so any change to the code fusec generates retires
the old records.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
from dataclasses import replace
from pathlib import Path

import numpy as np

import fusec.codegen
import fusec.loops
from fusec.codegen.base import Backend
from fusec.loops.ir import LoopNest
from fusec.loops.printer import print_nest
from fusec.runtime.build import NoCompilerError, find_compiler

FORMAT = 1  # bump when the meaning of a record changes; older records are then ignored


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def kernel_hash(nest: LoopNest) -> str:
    """Hash of what the kernel computes, independent of its name."""
    return _sha(print_nest(replace(nest, name="kernel", comment="")))


def shapes_of(nest: LoopNest) -> dict[str, list[int]]:
    return {b.name: list(b.shape) for b in nest.buffers}


def dtypes_of(nest: LoopNest) -> dict[str, str]:
    return {b.name: b.dtype.name for b in nest.buffers}


@functools.lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _compiler_identity() -> str:
    try:
        return find_compiler().identity
    except NoCompilerError:
        return "none"


def machine_signature() -> dict[str, object]:
    """The facts about this machine that decide which schedule is fastest."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 1,
        "compiler": _compiler_identity(),
        "numpy": np.__version__,
        "omp_threads": os.environ.get("OMP_NUM_THREADS", ""),
    }


def machine_id(signature: dict | None = None) -> str:
    return _sha(json.dumps(signature or machine_signature(), sort_keys=True))


def backend_identity(backend: Backend) -> str:
    """The backend's name plus whatever configuration changes the code it generates."""
    parts = [backend.name]
    compiler = getattr(backend, "compiler", None)
    if compiler is not None:  # the C backend: compiler, flags, and how matmuls are built
        parts.append(compiler.identity)
        parts.append(" ".join(getattr(backend, "flags", ())))
        parts.append(f"matmul={getattr(backend, 'matmul', '')}")
    return " | ".join(parts)


@functools.lru_cache(maxsize=1)
def codegen_version() -> str:
    """fusec's version and a hash of the source of everything that shapes the generated code."""
    try:
        version = importlib.metadata.version("fusec")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    h = hashlib.sha256()
    for package in (fusec.codegen, fusec.loops):
        root = Path(package.__file__).parent
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".h", ".c")):
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return f"{version}+{h.hexdigest()[:12]}"


def key_parts(nest: LoopNest, backend: Backend, machine: str | None = None) -> dict[str, object]:
    """Every part of a record's key, by name."""
    compiler = getattr(backend, "compiler", None)
    return {
        "format": FORMAT,
        "kernel": kernel_hash(nest),
        "shapes": shapes_of(nest),
        "dtypes": dtypes_of(nest),
        "backend": backend_identity(backend),
        "compiler": compiler.identity if compiler is not None else "",
        "flags": list(getattr(backend, "flags", ())),
        "codegen": codegen_version(),
        "machine": machine or machine_id(),
    }


def record_key(nest: LoopNest, backend: Backend, machine: str | None = None) -> str:
    """The database key of a kernel built by `backend` on this machine (or on `machine`, an id)."""
    return _sha(json.dumps(key_parts(nest, backend, machine), sort_keys=True))
