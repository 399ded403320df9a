"""Issue 10 regressions at the edges of the runtime: compilers that lie, input files that are junk.

Each test failed on main before its fix (a traceback, or a message about pickles)."""

from __future__ import annotations

import numpy as np
import pytest
from test_bad_input_runtime import fusec, g_fg  # noqa: F401  (fixture)


def test_compiler_that_exits_0_without_a_library_is_a_clear_error(g_fg):  # noqa: F811
    r = fusec(g_fg, "run", "g.fg", "--backend", "c", CC="true")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "FileNotFoundError" not in r.stderr
    assert "exited 0 but wrote no library" in r.stderr
    assert not list((g_fg / "cache").glob("v1/*/*/kernel.so"))  # nothing published


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(200)), "not a valid .npz file of arrays"),
        (lambda p: p.write_bytes(b""), "not a valid .npz file of arrays"),
        (lambda p: np.save(open(p, "wb"), np.zeros(100, np.float32)), "a single .npy array"),
        (lambda p: np.savez(open(p, "wb"), x=np.array([1, "a", None], dtype=object)), "holds Python objects"),
    ],
    ids=["junk", "empty", "npy", "object-array"],
)
def test_bad_npz_inputs_say_what_is_wrong(g_fg, make, message):  # noqa: F811
    make(g_fg / "in.npz")
    r = fusec(g_fg, "run", "g.fg", "--inputs", "in.npz")
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr, r.stderr
    assert "pickle" not in r.stderr and "Traceback" not in r.stderr


def test_a_graph_with_no_ops_plans_to_no_kernels_under_every_policy(tmp_path):
    """The optimal policy's integer program has no variables for a graph with no ops: it must not be
    built at all (scipy's milp refuses an empty objective). Found by the fuzzer's trivial graphs."""
    import fusec

    (tmp_path / "g.fg").write_text("graph main(x0: i32[]) { return x0 }\n")
    for policy in ("auto", "optimal", "greedy"):
        program = fusec.compile(str(tmp_path / "g.fg"), backend="numpy", policy=policy)
        assert program.kernels == 0
        assert program(np.int32(7)) == 7
