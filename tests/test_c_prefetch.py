"""Software prefetch in row kernels (fusec/codegen/c_prefetch.py): one blocked pass over a row (the
first that does not open it) prefetches that block of the next row of each input and of this row of
each output; the next row is clamped to the last, so every address stays inside its buffer (checked
under ASan and FUSEC_AT too)."""

from __future__ import annotations

import re

import pytest
from test_sanitize import sanitized

import fusec
from fusec.bisect import check
from fusec.inputs import random_inputs

SOFTMAX = """graph g(x: f32[6, 1000]) {
  m = max(x, axis=-1, keepdims=true)
  e = exp(x - m)
  return y = e / sum(e, axis=-1, keepdims=true)
}"""
LAYERNORM = """graph g(x: f32[5, 600], gamma: f32[600]) {
  mean = mean(x, axis=-1, keepdims=true)
  d = x - mean
  return y = d * rsqrt(mean(d * d, axis=-1, keepdims=true) + 1e-5) * gamma
}"""


def _source(text: str) -> str:
    return fusec.compile(fusec.parse(text), backend="c", tune_db=False).source()


def _prefetches(source: str) -> list[str]:
    return re.findall(r"__builtin_prefetch\(&(\w+)\[(.*)\], (\d), 2\);", source)


def test_softmax_prefetches_the_next_row_of_x_and_this_row_of_y():
    source = _source(SOFTMAX)
    found = _prefetches(source)
    assert ("x", "r1 + fusec_min_i64(i0 + 1, 5) * 1000", "0") in found, found
    assert ("y", "i0 * 1000 + r1", "1") in found, found
    assert len(found) == 2  # only in one blocked pass (exp and sum), once per buffer
    # one prefetch per 64-byte line, over the block's range (a short last block included)
    assert "for (int64_t r1 = r1_o * 256; r1 < fusec_min_i64(r1_o * 256 + 256, 1000); r1 += 16) {" in source


@pytest.mark.parametrize("text", [SOFTMAX, LAYERNORM], ids=["softmax", "layernorm"])
def test_prefetching_kernels_match_the_interpreter(text):
    g = fusec.parse(text)
    assert check(g, random_inputs(g, seed=3), "c") is None


def test_layernorm_prefetches_in_the_variance_pass_not_gamma():
    """The mean pass streams the row from memory itself; the variance pass computes on it in cache.
    gamma, which every row reads, stays in cache and is not prefetched."""
    source = _source(LAYERNORM)
    found = _prefetches(source)
    assert {name for name, _, _ in found} == {"x", "y"}
    prefetch, variance, mean = (source.index(s) for s in ("__builtin_prefetch", "float acc_y_mean_block", "float acc_mean_block"))
    assert mean < prefetch < variance


@pytest.mark.parametrize("text", [
    "graph g(x: f32[6, 256]) { return sum(x, axis=-1) }",  # a row of one block: nothing is blocked
    "graph g(x: f32[1000, 600]) { return sum(x, axis=0) }",  # down columns: not along a row
    "graph g(x: f32[4096]) { return exp(x) + 1.0 }",  # elementwise
], ids=["short-rows", "columns", "elementwise"])
def test_no_prefetch_where_there_is_no_row_to_run_ahead_on(text):
    assert "__builtin_prefetch" not in _source(text)


def test_prefetch_addresses_stay_inside_the_buffers_under_asan(tmp_path):
    code = f"""
import fusec
from fusec.bisect import check
from fusec.inputs import random_inputs
for text in ({SOFTMAX!r}, {LAYERNORM!r}):
    g = fusec.parse(text)
    source = fusec.compile(g, backend="c", tune_db=False).source()
    assert "__builtin_prefetch(&x[FUSEC_AT(" in source, source
    assert check(g, random_inputs(g, seed=1), "c") is None
print("clean")
"""
    r = sanitized(code, tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "clean" in r.stdout
