"""The content-addressed kernel cache: C source in, a verified shared library out.

An entry's key is a SHA-256 of everything that decides the machine code: the C source, the headers
it includes, the compiler's identity and version, this CPU (for -march=native) and the flags. Change
any of them and the key changes, so an entry never needs invalidating.

Layout, under the cache directory (`$FUSEC_CACHE_DIR`, else `$XDG_CACHE_HOME/fusec`, else
`~/.cache/fusec`):

    v1/ab/abcdef.../kernel.c       the source, as compiled (a learner can read it)
    v1/ab/abcdef.../fusec_math.h   headers it includes
    v1/ab/abcdef.../kernel.so      the library
    v1/ab/abcdef.../entry.json     key, compiler, flags and the library's SHA-256
    v1/failed/abcdef.../kernel.c   the source of a build that failed, named in the error

Atomicity: an entry is built in a private temp directory and appears with one `rename` of the whole
directory, so a concurrent process sees either no entry or a complete one, never half a library.
When two processes build the same key, the second rename fails and that process uses the winner's
entry. A corrupt entry (the library's checksum no longer matches entry.json) is detected before
loading, moved aside and rebuilt, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fusec.errors import FusecError
from fusec.runtime.build import Compiler, FusecCompileError, compile_shared, compiler_flags, find_compiler
from fusec.runtime.cache_dir import default_cache_dir

LAYOUT_VERSION = "v1"
SOURCE_NAME = "kernel.c"
LIBRARY_NAME = "kernel.so"
META_NAME = "entry.json"


class CacheDirError(FusecError):
    """Neither the cache directory nor a temp-dir fallback can be written."""


@dataclass(frozen=True)
class CacheEntry:
    key: str
    directory: Path
    hit: bool  # True when the library was already in the cache

    @property
    def library(self) -> Path:
        return self.directory / LIBRARY_NAME

    @property
    def source(self) -> Path:
        return self.directory / SOURCE_NAME


def _writable(directory: Path) -> str | None:
    """None if `directory` can hold cache entries, else why not."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
        return None
    except OSError as err:
        return err.strerror or str(err)


def resolve_cache_dir(directory: str | Path | None = None) -> Path:
    """The directory to use: the requested one if writable, else a per-user temp dir, with a warning."""
    wanted = Path(directory).expanduser() if directory is not None else default_cache_dir()
    problem = _writable(wanted)
    if problem is None:
        return wanted
    fallback = Path(tempfile.gettempdir()) / f"fusec-cache-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    fallback_problem = _writable(fallback)
    if fallback_problem is not None:
        raise CacheDirError(
            f"the kernel cache directory {wanted} is not writable ({problem}), nor is the fallback {fallback} "
            f"({fallback_problem}); set FUSEC_CACHE_DIR to a writable directory"
        )
    warnings.warn(
        f"fusec: the kernel cache directory {wanted} is not writable ({problem}); using {fallback} instead "
        "(set FUSEC_CACHE_DIR to choose another)",
        RuntimeWarning,
        stacklevel=3,
    )
    return fallback


def kernel_key(source: str, headers: Mapping[str, str], compiler: Compiler, flags: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for part in (LAYOUT_VERSION, compiler.identity, compiler.cpu, " ".join(flags), source):
        h.update(part.encode())
        h.update(b"\0")
    for name in sorted(headers):
        h.update(name.encode() + b"\0" + headers[name].encode() + b"\0")
    return h.hexdigest()


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class KernelCache:
    """Builds C source into shared libraries, once per distinct (source, headers, compiler, flags)."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = resolve_cache_dir(directory)
        self.root = self.directory / LAYOUT_VERSION
        self.hits = 0
        self.misses = 0
        self._remove_stale_work_dirs()

    def entry_dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    def lookup(self, key: str) -> CacheEntry | None:
        """The entry for `key` if present and intact; a corrupt one is removed (and None returned)."""
        directory = self.entry_dir(key)
        if not directory.is_dir():
            return None
        problem = self._verify(directory, key)
        if problem is None:
            return CacheEntry(key, directory, hit=True)
        warnings.warn(f"fusec: corrupt kernel cache entry {directory} ({problem}); rebuilding it", RuntimeWarning, stacklevel=3)
        self._discard(directory)
        return None

    def build(
        self,
        source: str,
        headers: Mapping[str, str] | None = None,
        compiler: Compiler | None = None,
        flags: tuple[str, ...] | None = None,
    ) -> CacheEntry:
        """The cache entry for this source, compiling it on a miss."""
        headers = dict(headers or {})
        compiler = compiler or find_compiler()
        flags = tuple(flags) if flags is not None else compiler_flags()
        key = kernel_key(source, headers, compiler, flags)
        found = self.lookup(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        return self._compile_into_cache(key, source, headers, compiler, flags)

    # ------------------------------------------------------------------------------ internals

    def _remove_stale_work_dirs(self, max_age_s: float = 86400.0) -> None:
        """Build directories a killed process left behind (a live build is never a day old)."""
        tmp = self.root / "tmp"
        if not tmp.is_dir():
            return
        now = time.time()
        for d in tmp.iterdir():
            try:
                if now - d.stat().st_mtime > max_age_s:
                    shutil.rmtree(d, ignore_errors=True)
            except OSError:
                continue

    def _verify(self, directory: Path, key: str) -> str | None:
        try:
            meta = json.loads((directory / META_NAME).read_text())
        except (OSError, ValueError) as err:
            return f"unreadable {META_NAME}: {err}"
        if not isinstance(meta, dict) or meta.get("key") != key:
            return f"{META_NAME} does not describe this key"
        try:
            actual = _sha256_file(directory / LIBRARY_NAME)
        except OSError as err:
            return f"unreadable library: {err.strerror}"
        if actual != meta.get("sha256"):
            return "the library's checksum does not match"
        return None

    def _discard(self, directory: Path) -> None:
        """Move an entry out of the way atomically, then delete it (a reader never sees it half-gone)."""
        trash = self.root / "tmp" / f"trash-{directory.name[:16]}-{os.getpid()}-{time.monotonic_ns()}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(directory, trash)
        except OSError:
            return  # someone else moved it already
        shutil.rmtree(trash, ignore_errors=True)

    def _compile_into_cache(
        self, key: str, source: str, headers: dict[str, str], compiler: Compiler, flags: tuple[str, ...]
    ) -> CacheEntry:
        tmp_root = self.root / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        # mkdtemp's 0700 stays: the published entry holds a library every run loads and executes, so no
        # other user may read or swap it (the files inside get open()'s usual mode)
        work = Path(tempfile.mkdtemp(prefix=f"{key[:16]}-", dir=tmp_root))
        try:
            self._write_sources(work, source, headers)
            try:
                compile_shared(compiler, work / SOURCE_NAME, work / LIBRARY_NAME, flags)
            except FusecCompileError as err:
                kept = self._keep_failed(key, source, headers)
                raise FusecCompileError(str(err.message).replace(str(work / SOURCE_NAME), str(kept))) from None
            meta = {
                "key": key,
                "sha256": _sha256_file(work / LIBRARY_NAME),
                "compiler": compiler.identity,
                "compiler_command": compiler.command,
                "flags": list(flags),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            (work / META_NAME).write_text(json.dumps(meta, indent=1) + "\n")
            final = self.entry_dir(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(work, final)  # the one atomic step that publishes the entry
            except OSError:
                # another process published the same key first: use theirs if it is intact
                if self._verify(final, key) is None:
                    return CacheEntry(key, final, hit=False)
                self._discard(final)
                try:
                    os.rename(work, final)
                except OSError:
                    if self._verify(final, key) is not None:
                        raise
            return CacheEntry(key, final, hit=False)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)

    @staticmethod
    def _write_sources(directory: Path, source: str, headers: dict[str, str]) -> None:
        (directory / SOURCE_NAME).write_text(source)
        for name, text in headers.items():
            (directory / name).write_text(text)

    def _keep_failed(self, key: str, source: str, headers: dict[str, str]) -> Path:
        """Save a failed build's source where the user can read it; return the .c path."""
        failed = self.root / "failed" / key
        failed.mkdir(parents=True, exist_ok=True)
        self._write_sources(failed, source, headers)
        return failed / SOURCE_NAME


_DEFAULT: dict[Path, KernelCache] = {}


def default_cache() -> KernelCache:
    """One KernelCache per resolved directory for this process ($FUSEC_CACHE_DIR is read each call)."""
    wanted = default_cache_dir()
    cache = _DEFAULT.get(wanted)
    if cache is None:
        cache = KernelCache(wanted)
        _DEFAULT[wanted] = cache
    return cache
