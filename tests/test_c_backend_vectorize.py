"""Every `#pragma omp simd` loop of the memory-bound examples really vectorizes (gcc's -fopt-info).

Speed in this backend comes from vectorized inner loops; a change that makes gcc give up (a bool
reduction, a float clamp under -ftrapping-math, a scalar libm call) would keep results right and
silently cost 2-10x. This test catches that without timing anything.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from conftest import ROOT

import fusec
from fusec.codegen.c_backend import math_headers
from fusec.runtime.build import compiler_flags, find_compiler

CASES = {
    "01_chain": {"N": 64, "M": 512},
    "02_gelu": {"N": 64, "M": 512},
    "03_softmax": {"N": 16, "D": 512},
    "04_layernorm": {"N": 16, "D": 512},
    "05_rmsnorm": {"N": 16, "D": 512},
    "06_mlp": {"B": 16, "K": 32, "F": 512},
    "07_adam": {"N": 100_000},
}


def simd_loop_lines(source: str) -> list[tuple[int, int]]:
    """(first, last) 1-based lines of each loop under `#pragma omp simd`, by matching braces."""
    lines = source.splitlines()
    spans = []
    for n, line in enumerate(lines):
        if "#pragma omp simd" not in line:
            continue
        depth, last = 0, n + 1
        for m in range(n + 1, len(lines)):
            depth += lines[m].count("{") - lines[m].count("}")
            last = m
            if depth <= 0 and m > n + 1 or (depth == 0 and not lines[n + 1].rstrip().endswith("{")):
                break
        spans.append((n + 2, last + 1))
    return spans


@pytest.mark.parametrize("stem", list(CASES))
def test_every_simd_loop_vectorizes(stem, tmp_path):
    compiler = find_compiler()
    if not compiler.is_gcc:  # pragma: no cover - CI and the dev machines use gcc
        pytest.skip("-fopt-info is gcc's")
    compiled = fusec.compile(ROOT / "examples" / f"{stem}.fg", backend="c", sizes=CASES[stem], tune_db=False)
    source = compiled.source()
    source = source[source.index("#include") :]  # from the first line of C (a comment header may precede)
    for name, text in math_headers().items():
        (tmp_path / name).write_text(text)
    path = tmp_path / f"{stem}.c"
    path.write_text(source)
    flags = [f for f in compiler_flags(sanitize=False) if f != "-shared"]
    proc = subprocess.run(
        [*compiler.command, *flags, "-c", "-fopt-info-vec-optimized", "-o", str(tmp_path / "k.o"), str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    vectorized = {int(m) for m in re.findall(r":(\d+):\d+: optimized: loop vectorized", proc.stderr)}
    loops = simd_loop_lines(source)
    assert loops, f"{stem}: no simd loop in the generated C"
    # gcc reports a vectorized loop at its `for` line or at a line of its body
    missed = [first for first, last in loops if not any(first <= n <= last for n in vectorized)]
    assert not missed, f"{stem}: the simd loops at lines {missed} of the generated C did not vectorize\n{proc.stderr}"
