"""The runtime with hand-written C: compiler driver, kernel cache, ctypes loader, probes.

Each test uses its own cache directory (tmp_path), so hits and misses are the test's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from fusec.errors import FusecError, FusecInputError
from fusec.ir.dtypes import F32, I64
from fusec.runtime import build
from fusec.runtime.build import FusecCompileError, NoCompilerError, compiler_flags, find_compiler
from fusec.runtime.cache import KernelCache, resolve_cache_dir
from fusec.runtime.loader import KernelFunction, Param

ADD_ONE = textwrap.dedent(
    """\
    #include <stdint.h>
    void add_one(const float *restrict x, float *restrict y, int64_t n)
    {
        #pragma omp parallel for simd
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] + 1.0f;
    }
    """
)
PARAMS = [Param("x", "in", F32), Param("y", "out", F32), Param("n", "scalar", I64)]


def test_build_load_and_call(tmp_path):
    cache = KernelCache(tmp_path)
    entry = cache.build(ADD_ONE)
    assert not entry.hit and entry.library.is_file() and entry.source.read_text() == ADD_ONE
    fn = KernelFunction(entry.library, "add_one", PARAMS)
    x = np.arange(1000, dtype=np.float32)
    y = np.empty_like(x)
    fn(x, y, x.size)
    np.testing.assert_array_equal(y, x + 1)


def test_hit_then_miss_after_a_change_of_flags(tmp_path):
    cache = KernelCache(tmp_path)
    first = cache.build(ADD_ONE)
    again = cache.build(ADD_ONE)
    assert again.hit and again.key == first.key and (cache.hits, cache.misses) == (1, 1)
    other = cache.build(ADD_ONE, flags=compiler_flags(fast_math=True))
    assert not other.hit and other.key != first.key
    meta = json.loads((other.directory / "entry.json").read_text())
    assert "-ffast-math" in meta["flags"] and meta["compiler"] == find_compiler().identity


def test_header_change_is_a_miss(tmp_path):
    cache = KernelCache(tmp_path)
    src = '#include "k.h"\nint f(void) { return K; }\n'
    a = cache.build(src, headers={"k.h": "#define K 1\n"})
    b = cache.build(src, headers={"k.h": "#define K 2\n"})
    assert a.key != b.key and not b.hit


def test_default_flags_are_not_fast_math():
    flags = compiler_flags(sanitize=False)
    assert "-fno-math-errno" in flags and "-fopenmp" in flags and "-O3" in flags
    assert not any("fast-math" in f for f in flags)
    assert "-ffast-math" in compiler_flags(sanitize=False, fast_math=True)


def test_sanitize_mode_by_parameter_and_environment(monkeypatch):
    monkeypatch.delenv("FUSEC_SANITIZE", raising=False)
    assert "-fsanitize=address,undefined" in compiler_flags(sanitize=True)
    assert "-fsanitize=address,undefined" not in compiler_flags()
    monkeypatch.setenv("FUSEC_SANITIZE", "1")
    flags = compiler_flags()
    assert "-fsanitize=address,undefined" in flags and "-DFUSEC_BOUNDS_CHECK=1" in flags
    assert "-fsanitize=address,undefined" not in compiler_flags(sanitize=False)  # the parameter wins


def test_corrupt_entry_is_detected_and_rebuilt(tmp_path):
    cache = KernelCache(tmp_path)
    entry = cache.build(ADD_ONE)
    entry.library.write_bytes(b"\x7fELF garbage")  # e.g. a disk error or a killed writer
    with pytest.warns(RuntimeWarning, match="corrupt kernel cache entry"):
        rebuilt = cache.build(ADD_ONE)
    assert not rebuilt.hit and rebuilt.key == entry.key
    meta = json.loads((rebuilt.directory / "entry.json").read_text())
    import hashlib

    assert hashlib.sha256(rebuilt.library.read_bytes()).hexdigest() == meta["sha256"]


def test_missing_metadata_counts_as_corrupt(tmp_path):
    cache = KernelCache(tmp_path)
    entry = cache.build(ADD_ONE)
    (entry.directory / "entry.json").unlink()
    with pytest.warns(RuntimeWarning, match="corrupt"):
        assert not cache.build(ADD_ONE).hit


def test_compile_error_names_the_saved_source(tmp_path):
    cache = KernelCache(tmp_path)
    with pytest.raises(FusecCompileError) as info:
        cache.build("void broken(void) { this is not C; }\n")
    message = str(info.value)
    saved = [w for w in message.split() if w.endswith("kernel.c")]
    assert saved, message
    assert Path(saved[0]).read_text().startswith("void broken")
    assert "error" in message  # the compiler's own diagnostic is shown
    assert not list((tmp_path / "v1").glob("[0-9a-f][0-9a-f]/*"))  # nothing half-written in the cache


def test_no_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CC", "definitely-not-a-compiler-xyz")
    with pytest.raises(NoCompilerError, match="no C compiler"):
        find_compiler()
    assert issubclass(NoCompilerError, FusecError)


def test_cache_dir_that_is_a_file_falls_back_with_a_warning(tmp_path):
    # (a read-only directory would be the natural case, but CI runs as root, which writes anywhere)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.warns(RuntimeWarning, match="not writable"):
        resolved = resolve_cache_dir(not_a_dir / "cache")
    assert resolved.is_dir() and os.access(resolved, os.W_OK)


def test_env_var_overrides_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEC_CACHE_DIR", str(tmp_path / "here"))
    assert resolve_cache_dir() == tmp_path / "here"


def test_concurrent_writers_never_expose_half_a_library(tmp_path):
    """Four processes build the same new kernel at once; all load a complete, identical entry."""
    src = ADD_ONE.replace("1.0f", "2.0f")
    script = textwrap.dedent(
        f"""
        import numpy as np, sys
        from fusec.runtime.cache import KernelCache
        from fusec.runtime.loader import KernelFunction, Param
        from fusec.ir.dtypes import F32, I64
        entry = KernelCache({str(tmp_path)!r}).build({src!r})
        fn = KernelFunction(entry.library, "add_one", [Param("x", "in", F32), Param("y", "out", F32), Param("n", "scalar", I64)])
        x = np.ones(64, np.float32); y = np.empty_like(x); fn(x, y, 64)
        assert (y == 3).all()
        print(entry.key)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert len({o[0].strip() for o in outs}) == 1
    entries = list((tmp_path / "v1").glob("[0-9a-f][0-9a-f]/*"))
    assert len(entries) == 1
    assert not [p for p in (tmp_path / "v1" / "tmp").iterdir() if not p.name.startswith("trash")]


def test_loader_rejects_wrong_arrays(tmp_path):
    entry = KernelCache(tmp_path).build(ADD_ONE)
    fn = KernelFunction(entry.library, "add_one", [Param("x", "in", F32, (8,)), Param("y", "out", F32, (8,)), PARAMS[2]])
    x = np.zeros(8, np.float32)
    with pytest.raises(FusecInputError, match="dtype f32"):
        fn(x.astype(np.float64), np.empty(8, np.float32), 8)
    with pytest.raises(FusecInputError, match=r"shape \[8\]"):
        fn(np.zeros(9, np.float32), np.empty(8, np.float32), 8)
    with pytest.raises(FusecInputError, match="C-contiguous"):
        fn(np.zeros(16, np.float32)[::2], np.empty(8, np.float32), 8)
    ro = np.empty(8, np.float32)
    ro.flags.writeable = False
    with pytest.raises(FusecInputError, match="read-only"):
        fn(x, ro, 8)
    with pytest.raises(FusecInputError, match="takes 3 arguments"):
        fn(x, x)
    with pytest.raises(FusecError, match="no function"):
        KernelFunction(entry.library, "missing", PARAMS)


def test_sanitize_library_refuses_to_load_without_asan(tmp_path):
    cache = KernelCache(tmp_path)
    entry = cache.build(ADD_ONE, flags=compiler_flags(sanitize=True))
    if "libasan" in open("/proc/self/maps").read():  # pragma: no cover - only under LD_PRELOAD
        pytest.skip("this process already has ASan loaded")
    with pytest.raises(FusecError, match="sanitize mode"):
        KernelFunction(entry.library, "add_one", PARAMS)


def test_sanitize_mode_runs_under_asan_in_a_child_process(tmp_path):
    env = dict(os.environ, **build.sanitizer_env())
    script = textwrap.dedent(
        f"""
        import numpy as np
        from fusec.runtime.build import compiler_flags
        from fusec.runtime.cache import KernelCache
        from fusec.runtime.loader import KernelFunction, Param
        from fusec.ir.dtypes import F32, I64
        entry = KernelCache({str(tmp_path)!r}).build({ADD_ONE!r}, flags=compiler_flags())
        fn = KernelFunction(entry.library, "add_one", [Param("x", "in", F32), Param("y", "out", F32), Param("n", "scalar", I64)])
        x = np.ones(64, np.float32); y = np.empty_like(x); fn(x, y, 64)
        assert (y == 2).all()
        print("ran sanitized")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ran sanitized" in proc.stdout


def test_triad_probe_measures_a_positive_bandwidth(tmp_path):
    from fusec.runtime.probes import measure_peak_flops, measure_triad

    cache = KernelCache(tmp_path)
    bw = measure_triad(n=1 << 18, repeats=3, cache=cache)
    assert bw.best_gbs > 0 and bw.best_gbs >= bw.median_gbs and bw.threads >= 1
    assert bw.bytes_per_run == 3 * 8 * (1 << 18)
    peak = measure_peak_flops(iterations=20_000, cache=cache)
    assert peak.gflops > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "GB/s" in str(bw) and "GFLOP/s" in str(peak)


def test_stale_build_dirs_of_killed_processes_are_cleaned(tmp_path):
    cache = KernelCache(tmp_path)
    stale = cache.root / "tmp" / "deadbeef-killed"
    stale.mkdir(parents=True)
    (stale / "kernel.c").write_text("half written")
    old = 3 * 86400
    os.utime(stale, (stale.stat().st_atime - old, stale.stat().st_mtime - old))
    fresh = cache.root / "tmp" / "cafe-building-now"
    fresh.mkdir()
    KernelCache(tmp_path)
    assert not stale.exists() and fresh.exists()


def test_cc_with_a_wrapper_word(tmp_path, monkeypatch):
    """CC="env gcc" (like "ccache gcc"): the first word runs the compiler named after it."""
    real = find_compiler()
    monkeypatch.setenv("CC", f"env {real.path}")
    wrapped = find_compiler()
    assert wrapped.args == (real.path,) and wrapped.identity == real.identity
    entry = KernelCache(tmp_path).build(ADD_ONE, compiler=wrapped)
    assert entry.library.is_file()
