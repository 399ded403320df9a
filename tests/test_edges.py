"""Issue 10 regressions at the edges: empty axes, calls by name, messages in the user's terms, the
CLI's warnings and fallbacks, output file modes, and `assert kernels` on every command.

Each test failed on main before its fix (a traceback, a message in the wrong words, a silent
fallback, a file mode that ignored the umask). Items 4 and 10 are in test_edges_io.py."""

from __future__ import annotations

import numpy as np
import pytest

import fusec
from fusec.errors import FusecError

SOFTMAX_EMPTY = "graph sm<N=3, D=0>(x: f32[N, D]) {{\n  return {op}(x, axis=-1)\n}}\n"


# item 2: softmax, log_softmax and logsumexp over an empty axis are refused where they are written


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
def test_max_based_composites_over_an_empty_axis_are_refused_with_a_location(op):
    with pytest.raises(FusecError) as e:
        fusec.parse(SOFTMAX_EMPTY.format(op=op), filename="sm.fg")
    message = str(e.value)
    assert message.startswith("sm.fg:2:10: error: ") and f"{op} over an empty axis 1" in message
    assert "has no identity" not in message  # no word about a max the user never wrote


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
def test_max_based_composites_over_an_empty_axis_are_refused_when_traced(op):
    f = fusec.jit(lambda x: getattr(fusec.ops, op)(x, axis=-1))
    with pytest.raises(FusecError, match=f"{op} over an empty axis 1"):
        f(np.zeros((3, 0), np.float32))


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_composites_over_a_non_empty_axis_of_an_empty_tensor_still_compute(backend):
    g = fusec.parse("graph sm<N=0, D=4>(x: f32[N, D]) {\n  return softmax(x, axis=-1), logsumexp(x, axis=-1)\n}\n")
    x = np.zeros((0, 4), np.float32)
    y, lse = fusec.compile(g, backend=backend)(x)
    assert y.shape == (0, 4) and lse.shape == (0,)


# item 6: a compiled program (and the interpreter) take inputs by name


@pytest.fixture(scope="module")
def adam():
    return fusec.compile("examples/07_adam.fg", backend="numpy", sizes={"N": 16})


def _adam_inputs():
    rng = np.random.default_rng(0)
    return [rng.random(16, dtype=np.float32) for _ in range(4)]


def test_compiled_program_takes_inputs_by_name_and_mixed(adam):
    p, g, m, v = _adam_inputs()
    want = adam(p, g, m, v)
    for got in (adam(p=p, g=g, m=m, v=v), adam(v=v, m=m, g=g, p=p), adam(p, g, v=v, m=m)):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(fusec.interpret(adam.graph, p, g, v=v, m=m), want):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda f, p, g, m, v: f(p, g, m, v, w=v), "graph 'adam' has no input 'w' (inputs: p, g, m, v)"),
        (lambda f, p, g, m, v: f(p, g, m), "graph 'adam' takes 4 inputs (p, g, m, v), got 3"),
        (lambda f, p, g, m, v: f(p=p, g=g), "graph 'adam' is missing input 'm', 'v'"),
        (lambda f, p, g, m, v: f(p, g, m, v, p=p), "input 'p' is given both by position and by name"),
        (lambda f, p, g, m, v: f(p, g, m, v, v), "takes 4 inputs (p, g, m, v), got 5"),
    ],
    ids=["unknown", "missing", "missing-by-name", "twice", "too-many"],
)
def test_compiled_program_names_wrong_keyword_inputs(adam, call, message):
    with pytest.raises(FusecError) as e:
        call(adam, *_adam_inputs())
    assert message in str(e.value)


# item 8: warnings are one plain line; --strict turns the C backend's fallback into an error


def _cli(tmp_path, *args, **env):
    from test_bad_input_runtime import fusec as run_fusec

    return run_fusec(tmp_path, *args, **env)


CHAIN = "graph g<N=8>(x: f32[N]) {\n  y = exp(x) + 1.0\n  assert kernels == 1\n  return y\n}\n"


@pytest.mark.parametrize("command", ["run", "compile"])
def test_no_compiler_fallback_is_one_plain_warning_line(tmp_path, command):
    (tmp_path / "g.fg").write_text(CHAIN)
    r = _cli(tmp_path, command, "g.fg", "--backend", "c", CC="/nonexistent/cc")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: no C compiler") and "NumPy backend" in lines[0], r.stderr
    assert "RuntimeWarning" not in r.stderr and ".py:" not in r.stderr


@pytest.mark.parametrize("command", ["run", "compile"])
@pytest.mark.parametrize("cc", ["/nonexistent/cc", "false"])
def test_strict_makes_the_fallback_an_error(tmp_path, command, cc):
    (tmp_path / "g.fg").write_text(CHAIN)
    r = _cli(tmp_path, command, "g.fg", "--backend", "c", "--strict", CC=cc)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("error: ") and "--strict" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_strict_with_a_compiler_or_another_backend_changes_nothing(tmp_path):
    (tmp_path / "g.fg").write_text(CHAIN)
    r = _cli(tmp_path, "run", "g.fg", "--backend", "numpy", "--strict", CC="/nonexistent/cc")
    assert r.returncode == 0 and "(backend numpy)" in r.stdout and r.stderr == "", r.stderr


# item 9: viz writes its files with the mode any new file gets


@pytest.mark.parametrize("umask", [0o022, 0o002])
@pytest.mark.parametrize("suffix", [".svg", ".dot", ".html"])
def test_viz_files_respect_the_umask(tmp_path, umask, suffix):
    import os
    import stat

    from fusec.cli.main import main

    (tmp_path / "g.fg").write_text(CHAIN)
    out = tmp_path / f"plan{suffix}"
    old = os.umask(umask)
    try:
        assert main(["viz", str(tmp_path / "g.fg"), "-o", str(out)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


# follow-up from issue 9: compile and run hold the file to its `assert kernels`, as check does


@pytest.mark.parametrize("command", [["run"], ["run", "--backend", "numpy"], ["run", "--backend", "c"], ["compile"]])
def test_compile_and_run_enforce_assert_kernels(tmp_path, command):
    (tmp_path / "g.fg").write_text(CHAIN.replace("kernels == 1", "kernels == 3"))
    r = _cli(tmp_path, command[0], "g.fg", *command[1:])
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("g.fg:3:10: error: expected kernels == 3, but the") and "plan has 1" in r.stderr
    (tmp_path / "g.fg").write_text(CHAIN)
    assert _cli(tmp_path, command[0], "g.fg", *command[1:]).returncode == 0


# item 5: a size override's mistake is reported as the user wrote it: sizes= in Python, --set on the command line


@pytest.mark.parametrize(
    "sizes, message",
    [
        ({"Q": 3}, "sizes={'Q': 3}: graph 'rmsnorm' has no dimension 'Q' (dimensions: N, D)"),
        ({"N": "64"}, "sizes={'N': '64'}: a dimension must be a non-negative integer"),
        ({"N": -1}, "sizes={'N': -1}: a dimension must be a non-negative integer"),
        ({"N": 2**50}, f"sizes={{'N': {2**50}}}: too large"),
    ],
    ids=["unknown", "string", "negative", "huge"],
)
def test_python_size_mistakes_speak_of_sizes(sizes, message):
    for call in (lambda: fusec.compile("examples/05_rmsnorm.fg", backend="numpy", sizes=sizes),
                 lambda: fusec.load("examples/05_rmsnorm.fg", sizes=sizes)):
        with pytest.raises(FusecError) as e:
            call()
        assert message in str(e.value) and "--set" not in str(e.value)


@pytest.mark.parametrize("command", ["check", "run", "compile"])
def test_command_line_size_mistakes_speak_of_set(capsys, command):
    from fusec.cli.main import main

    assert main([command, "examples/05_rmsnorm.fg", "--set", "Q=3"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --set Q=3: graph 'rmsnorm' has no dimension 'Q' (dimensions: N, D)\n"
