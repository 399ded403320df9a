"""Fresh outputs: dropped results are written again, held ones never; each kernel's thread count
follows its size and the machine's load."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import fusec
from fusec.frontend import parse
from fusec.runtime.buffers import OutputRecycler
from fusec.runtime.threads import SMALL_POINTS, ThreadBudget

CHAIN = """graph chain(x: f32[256, 128]) {
  y = exp(x * 2.0 + 1.0)
  return y
}"""


@pytest.fixture(params=["numpy", "c"])
def chain(request):
    return fusec.compile(parse(CHAIN), backend=request.param)


def _inputs(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((256, 128)).astype(np.float32)


def test_a_held_result_is_never_overwritten(chain):
    a, b = _inputs(0), _inputs(1)
    first = chain(a)
    kept = first.copy()
    for _ in range(3):
        second = chain(b)
        assert second is not first
        np.testing.assert_array_equal(first, kept)  # the caller's array is intact
    np.testing.assert_array_equal(second, chain(b))


def test_a_dropped_result_is_written_again(chain):
    x = _inputs(2)
    expected = chain(x).copy()
    address = chain(x).ctypes.data  # the array is dropped at once
    gc.collect()
    y = chain(x)
    assert y.ctypes.data == address and chain._executor.recycler.recycled >= 1
    np.testing.assert_array_equal(y, expected)


def test_views_and_exported_buffers_keep_a_result_alive(chain):
    x, other = _inputs(3), _inputs(4)
    y = chain(x)
    view, expected = y[10:20], y[10:20].copy()
    del y
    mv_source = chain(x)
    exported, mv_expected = memoryview(mv_source), mv_source.copy()
    del mv_source
    for _ in range(4):
        chain(other)
    np.testing.assert_array_equal(view, expected)
    np.testing.assert_array_equal(np.asarray(exported), mv_expected)


def test_a_result_passed_back_as_input_is_not_its_own_output(chain):
    x = _inputs(5)
    y = chain(x)
    expected = fusec.interpret(chain.graph, y)
    z = chain(y)
    assert z is not y
    np.testing.assert_allclose(z, expected, rtol=1e-6)


def test_the_recycler_only_hands_out_unreferenced_arrays_of_the_right_type():
    r = OutputRecycler(keep=2)
    a = r.take((8,), np.dtype(np.float32))
    r.hand_out(a)
    assert r.take((8,), np.dtype(np.float32)) is not a  # still held by `a`
    address = a.ctypes.data
    del a
    assert r.take((8,), np.dtype(np.float64)).ctypes.data != address  # wrong dtype: new
    assert r.take((8,), np.dtype(np.float32)).ctypes.data == address and r.recycled == 1


def test_thread_budget_follows_size_and_load():
    calls = []
    others = [0]
    budget = ThreadBudget(calls.append, cores=2, load=lambda: others[0])
    assert budget.threads_for(SMALL_POINTS * 4) == 2 and budget.threads_for(40_000) == 2
    budget.set_for(40_000)
    budget.set_for(50_000)
    assert calls == [2]  # set once, not on every call
    others[0] = 1
    budget._sampled_at = -1.0  # the next call samples the load again
    assert budget.threads_for(40_000) == 1  # a small kernel never waits for a descheduled thread
    assert budget.threads_for(SMALL_POINTS * 4) == 1
    budget.set_for(40_000)
    assert calls == [2, 1]
    budget = ThreadBudget(calls.append, cores=4, load=lambda: 1)
    assert budget.threads_for(SMALL_POINTS * 4) == 3 and budget.threads_for(1000) == 1


def test_kernel_libraries_load_with_sleeping_openmp_threads_and_the_environment_is_restored(monkeypatch):
    from fusec.runtime.threads import gomp_env

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    with gomp_env():
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")  # the user's own choice wins
    with gomp_env():
        assert "OMP_WAIT_POLICY" not in os.environ


def test_blas_calls_get_fewer_threads_only_on_a_busy_machine():
    from fusec.runtime.threads import BlasLimit

    calls, others = [], [0]

    def set_local(n):
        calls.append(n)
        return 2

    limit = BlasLimit(ThreadBudget(None, cores=2, load=lambda: others[0]), set_local)
    assert limit.enter(10**9) is None and calls == []  # idle: BLAS keeps its own threads
    others[0] = 1
    limit.budget._sampled_at = -1.0
    previous = limit.enter(10**6)
    limit.exit(previous)
    assert calls == [1, 2]  # one thread for the call, then the caller's setting back
    assert BlasLimit(ThreadBudget(None, cores=2, load=lambda: 1), None).enter(10) is None  # no OpenBLAS: nothing
