"""512-bit vectors for kernels of transcendental functions (fusec/codegen/c_width.py): every vector
loop of such a kernel carries FUSEC_SIMD_WIDE, which fusec_math.h makes simdlen(16) under AVX-512F
and nothing elsewhere; kernels without one, and tuned schedules, keep their own width, and so does
the loop of a kernel whose transcendental ops are all in tables (the loops filling them are wide)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

import fusec
from fusec.codegen.c_backend import math_headers
from fusec.runtime.build import compiler_flags, find_compiler


def _source(stem: str, sizes: dict[str, int]) -> str:
    return fusec.compile(ROOT / "examples" / f"{stem}.fg", backend="c", sizes=sizes, tune_db=False).source()


def _pragmas(source: str) -> list[str]:
    return [line.strip() for line in source.splitlines() if "#pragma omp simd" in line]


def test_every_vector_loop_of_a_kernel_with_exp_is_wide():
    pragmas = _pragmas(_source("03_softmax", {"N": 16, "D": 512}))
    assert len(pragmas) == 3 and all(p.endswith(" FUSEC_SIMD_WIDE") for p in pragmas), pragmas


@pytest.mark.parametrize("stem, sizes", [("04_layernorm", {"N": 16, "D": 512}), ("07_adam", {"N": 100_000})])
def test_kernels_without_transcendentals_keep_the_compilers_width(stem, sizes):
    pragmas = _pragmas(_source(stem, sizes))
    assert pragmas and not any("FUSEC_SIMD_WIDE" in p or "simdlen" in p for p in pragmas), pragmas


def _assembly(source: str, tmp_path: Path, march: str) -> str:
    compiler = find_compiler()
    if not compiler.is_gcc:  # pragma: no cover - CI and the dev machines use gcc
        pytest.skip("checked with gcc's flags")
    for name, text in math_headers().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "k.c").write_text(source[source.index("#include"):])
    flags = [f for f in compiler_flags(sanitize=False) if f not in ("-shared", "-march=native")]
    proc = subprocess.run([*compiler.command, *flags, f"-march={march}", "-S", "-o", "-", str(tmp_path / "k.c")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_clause_is_512_bit_vectors_with_avx512_and_nothing_without(tmp_path):
    source = _source("02_gelu", {"N": 64, "M": 512})
    assert "zmm" in _assembly(source, tmp_path, "sapphirerapids")
    haswell = _assembly(source, tmp_path, "haswell")
    assert "zmm" not in haswell and "ymm" in haswell


def test_a_kernel_whose_transcendentals_are_all_in_tables_keeps_the_compilers_width_in_its_own_loop():
    # row_value_broadcast: tanh(erf(v)) per row, tabulated before the loop; the loop multiplies by
    # it, memory-bound, and ran 20-40 us slower (of 0.67 ms) in 512-bit vectors
    src = ("graph r(x: f32[64, 512], v: f32[64, 1]) {\n  c = tanh(erf(v) * 2.0 + 1.0)\n  y = x * c + x\n"
           "  return y\n}\n")
    source = fusec.compile(fusec.parse(src), backend="c", tune_db=False).source()
    lines = source.splitlines()
    pragmas = [(i, line.strip()) for i, line in enumerate(lines) if "#pragma omp simd" in line]
    fills = [re.match(r"\w+_table\d+\[", lines[i + 2].strip()) for i, _ in pragmas]  # the loop's store
    table = [p for (_, p), fill in zip(pragmas, fills) if fill]
    own = [p for (_, p), fill in zip(pragmas, fills) if not fill]
    assert table and all(p.endswith(" FUSEC_SIMD_WIDE") for p in table), pragmas
    assert own and not any("FUSEC_SIMD_WIDE" in p for p in own), pragmas
