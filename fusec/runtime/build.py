"""The C compiler driver: find the compiler, name it, choose flags, turn a .c file into a .so.

The runtime imports no compiler stage (only fusec.errors), so it can be tested with hand-written C.

Flags, and why:

* `-O3 -march=native`: vectorize for this machine's AVX2/FMA (the cache key includes the CPU, so a
  library built here is never loaded on a different processor from a shared cache directory).
* `-fopenmp`: `#pragma omp parallel for` uses both cores; one core reaches only ~64% of the bandwidth.
* `-fno-math-errno`: C's `sqrtf` must set errno on a negative argument, which keeps it a scalar
  library call; NumPy never sets errno either, so dropping it changes no result. This is *not*
  `-ffast-math`: NaN, inf, signed zeros and rounding stay IEEE (no reassociation, no
  finite-math assumptions). Fast-math is available, off by default, through `fast_math=True`.
* `-fno-trapping-math`: promises gcc that no floating-point trap handler is installed (none is; NumPy
  does not install one either). Under the default `-ftrapping-math` a float clamp or select followed by
  arithmetic (`c = x < lo ? lo : x; y = c * 2`) is "control flow in loop" and the loop stays scalar.
  Values are unchanged: NaN, inf and rounding stay IEEE.
* `-ffp-contract=off`: no silent fusing of a*b+c into an fma, so an elementwise kernel rounds exactly
  like the NumPy interpreter does (the math header calls `fmaf` explicitly where it wants one).
* sanitize mode (`sanitize=True` or FUSEC_SANITIZE=1): `-O1 -g -fsanitize=address,undefined` plus
  `-DFUSEC_BOUNDS_CHECK=1`, which turns on the generated kernels' bounds assertions. AddressSanitizer
  must be the first library in the process, so such a library only loads in a process started with
  `sanitizer_env()` (see the loader).
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fusec.errors import FusecError

BASE_FLAGS = ("-std=c99", "-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off")
FAST_MATH_FLAGS = ("-ffast-math",)
SANITIZE_FLAGS = (
    "-std=c99",
    "-O1",
    "-g",
    "-march=native",
    "-fopenmp",
    "-fPIC",
    "-shared",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-ffp-contract=off",
    "-fno-omit-frame-pointer",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=undefined",
    "-DFUSEC_BOUNDS_CHECK=1",
)
COMPILE_TIMEOUT_S = 120


class FusecCompileError(FusecError):
    """The C compiler rejected a kernel (or could not be run): the message names the saved source."""


class NoCompilerError(FusecError):
    """No C compiler was found; callers fall back to the NumPy backend with one warning."""


@dataclass(frozen=True)
class Compiler:
    path: str  # absolute path of the executable
    identity: str  # first line of `cc --version` and the target triple: part of every cache key
    cpu: str  # this machine's CPU model and feature flags, hashed: -march=native depends on them
    args: tuple[str, ...] = ()  # words after the executable in $CC (CC="ccache gcc": path=ccache, args=(gcc,))

    @property
    def command(self) -> list[str]:
        return [self.path, *self.args]

    @property
    def is_gcc(self) -> bool:
        return "gcc" in self.identity.lower() or "Free Software Foundation" in self.identity


def sanitize_requested(sanitize: bool | None = None) -> bool:
    """An explicit parameter wins; otherwise FUSEC_SANITIZE=1 turns sanitize mode on."""
    if sanitize is not None:
        return sanitize
    return os.environ.get("FUSEC_SANITIZE", "") not in ("", "0")


def compiler_flags(sanitize: bool | None = None, fast_math: bool = False) -> tuple[str, ...]:
    """The flags a kernel is built with; they are part of its cache key."""
    if sanitize_requested(sanitize):
        return SANITIZE_FLAGS
    return BASE_FLAGS + (FAST_MATH_FLAGS if fast_math else ())


def _cpu_signature() -> str:
    """A short hash of the CPU model and its feature flags (what -march=native compiles for)."""
    text = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags")):
                    text += line
                if line.strip() == "":  # the first processor is enough
                    break
    except OSError:
        text += platform.processor()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _identify(path: str, args: tuple[str, ...] = ()) -> Compiler:
    try:
        version = subprocess.run([path, *args, "--version"], capture_output=True, text=True, timeout=30)
        target = subprocess.run([path, *args, "-dumpmachine"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise NoCompilerError(f"the C compiler {path} cannot be run: {err}") from None
    if version.returncode != 0:
        raise NoCompilerError(f"the C compiler {path} failed on --version: {version.stderr.strip()[:200]}")
    first = version.stdout.strip().splitlines()[0] if version.stdout.strip() else path
    return Compiler(path, f"{first} ({target.stdout.strip()})", _cpu_signature(), args)


def find_compiler(cc: str | None = None) -> Compiler:
    """The C compiler to use: `cc` if given, else $CC, else `cc` on the PATH.

    Raises NoCompilerError (a FusecError) when there is none; the backend turns that into one
    warning and the NumPy backend.
    """
    name = cc or os.environ.get("CC") or "cc"
    parts = name.split()  # CC="ccache gcc": the first word runs, the rest are its first arguments
    path = shutil.which(parts[0]) if parts else None
    if path is None:
        where = "$CC" if cc is None and os.environ.get("CC") else "the PATH"
        raise NoCompilerError(f"no C compiler: '{name}' was not found on {where} (set CC to a C compiler)")
    return _identify(os.path.realpath(path), tuple(parts[1:]))


def compile_shared(compiler: Compiler, source: Path, output: Path, flags: tuple[str, ...]) -> None:
    """Compile `source` into the shared library `output`.

    A failure raises FusecCompileError with the compiler's first error lines and the path of the
    source file, which stays on disk for the user to read.
    """
    cmd = [*compiler.command, *flags, "-o", str(output), str(source), "-lm"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise FusecCompileError(f"the C compiler took more than {COMPILE_TIMEOUT_S} s on {source}") from None
    except OSError as err:
        raise FusecCompileError(f"cannot run the C compiler {compiler.path}: {err.strerror} (source kept at {source})") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        shown = "\n".join("    " + ln for ln in lines[:12])
        more = f"\n    ... ({len(lines) - 12} more lines)" if len(lines) > 12 else ""
        raise FusecCompileError(
            f"the C compiler failed (exit {proc.returncode}) on {source}\n"
            f"  command: {' '.join(cmd)}\n{shown}{more}"
        )
    # A "compiler" that exits 0 without producing anything (CC=true, a broken wrapper script) must
    # not surface later as a FileNotFoundError from the loader.
    if not output.is_file() or output.stat().st_size == 0:
        raise FusecCompileError(
            f"the C compiler '{' '.join(compiler.command)}' exited 0 but wrote no library for {source}"
            " (is $CC a working C compiler?)"
        )


def sanitizer_env(compiler: Compiler | None = None) -> dict[str, str]:
    """Environment variables a child process needs to load sanitize-mode kernels.

    ASan must be loaded before Python itself, so it goes in LD_PRELOAD; leak detection is off
    because the Python interpreter itself "leaks" at exit.
    """
    compiler = compiler or find_compiler()
    lib = subprocess.run([*compiler.command, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return {
        "LD_PRELOAD": lib,
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        "FUSEC_SANITIZE": "1",
    }
