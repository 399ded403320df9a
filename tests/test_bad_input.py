"""Bad input gets one clear error: from the CLI, exit code 2, a located message and no traceback.

Every case runs the real command line (`python -m fusec ...`) in a subprocess, so nothing in the
test can catch an exception the user would have seen. "Located" means file:line:col followed by the
offending line and a caret, wherever the mistake has a place in a source file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def fusec(*args, cwd=None, env=None):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fusec", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=120
    )


def assert_clean_error(r, *fragments, located: str | None = None, caret: bool = True):
    """Exit 2, no traceback, every fragment in stderr; `located` = 'file:line:col' plus a caret
    (unless the line is empty, as in an empty file)."""
    assert r.returncode == 2, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip(), "no message at all"
    for f in fragments:
        assert f in r.stderr, f"{f!r} not in:\n{r.stderr}"
    if located is not None:
        first = r.stderr.splitlines()[0]
        assert first.startswith(located + ": error: "), f"not located at {located}:\n{r.stderr}"
        if caret:
            assert re.search(r"^\s+\^$", r.stderr, re.M), f"no caret line:\n{r.stderr}"


def deep(open_: str, close: str, n: int) -> bytes:
    return f"graph g(x: f32[3]) {{\n  return {open_ * n}x{close * n}\n}}\n".encode()


G = "graph g(x: f32[3]) {{\n  {}\n}}\n"  # one statement in a one-input graph

# (name, source bytes, located at line:col or None, message fragments)
SOURCE_CASES = [
    # malformed text
    ("binary junk", b"\x00\x01\xff\xfe garbage", "1:3", ["not UTF-8"]),
    ("latin-1 comment", "graph g(x: f32[3]) {\n  # caf\u00e9\n  return x\n}\n".encode("latin-1"), "2:8", ["not UTF-8"]),
    ("nul byte", b"graph g(x: f32[3]) {\x00 return x }", "1:21", ["unexpected character"]),
    ("empty file", b"", "1:1", ["empty"]),
    ("only a comment", b"  # nothing here\n", "1:17", ["unexpected end of file"]),
    ("unclosed brace", b"graph g(x: f32[3]) {\n  return x\n", "2:11", ["unexpected end of file"]),
    ("extra brace", b"graph g(x: f32[3]) {\n  return x }\n}\n", "3:1", ["unexpected '}'"]),
    ("unclosed paren", G.format("y = (x + 1\n  return y").encode(), "3:3", ["unexpected 'return'", "')'"]),
    ("extra paren", G.format("y = x + 1)\n  return y").encode(), "2:12", ["unexpected ')'"]),
    ("stray character", G.format("return x $ x").encode(), "2:12", ["unexpected character '$'"]),
    ("two graphs", b"graph g(x: f32[3]) { return x }\ngraph h(x: f32[3]) { return x }\n", "2:1", ["unexpected 'graph'"]),
    ("unicode name", G.format("\u00e9 = x\n  return \u00e9").encode(), "2:3", ["unexpected character"]),
    ("deep parens", deep("exp(", ")", 3000), "2:3", ["nested too deeply"]),
    ("deep negation", deep("-", "", 5000), "2:3", ["nested too deeply"]),
    ("long chain", ("graph g(x: f32[3]) {\n  return x" + " + x" * 20000 + "\n}\n").encode(), "2:3", ["nested too deeply"]),
    # huge literals and sizes
    ("5000-digit literal", G.format("return x + " + "9" * 5000).encode(), "2:14", ["5000 digits"]),
    ("literal overflows f32", G.format("return x * 1e39").encode(), "2:14", ["overflows f32"]),
    ("literal too big for f64", G.format("return x + 1e400").encode(), "2:14", ["too large even for f64"]),
    ("literal overflows i32", b"graph g(x: i32[3]) {\n  return x + 99999999999\n}\n", "2:14", ["does not fit i32"]),
    ("huge dimension", b"graph g(x: f32[99999999999999999999999]) {\n  return x\n}\n", "1:16", ["too large"]),
    ("huge declared dim", b"graph g<N=99999999999999999999999>(x: f32[N]) {\n  return x\n}\n", "1:11", ["too large"]),
    ("huge axis", G.format("return sum(x, axis=99999999999999999999999)").encode(), "2:10", ["out of range"]),
    # unknown ops, bad attributes, arity
    ("unknown op", G.format("return frob(x)").encode(), "2:10", ["unknown op 'frob'"]),
    ("misspelt op", G.format("return sofmax(x)").encode(), "2:10", ["did you mean 'softmax'"]),
    ("calling a leaf", G.format("return input(x)").encode(), "2:10", ["cannot be called"]),
    ("unknown attribute", G.format("return sum(x, axes=0)").encode(), "2:17", ["no attribute 'axes'"]),
    ("attribute of the wrong type", G.format('return sum(x, axis="a")').encode(), "2:17", ["must be an integer"]),
    ("attribute not among choices", G.format('return gelu(x, approximate="fast")').encode(), "2:18", ["must be one of"]),
    ("attribute given twice", G.format("return sum(x, axis=0, axis=0)").encode(), "2:25", ["given twice"]),
    ("missing attribute", G.format("return reshape(x)").encode(), "2:10", ["needs the attribute 'shape'"]),
    ("bad dtype attribute", G.format("return cast(x, dtype=f16)").encode(), "2:24", ["'f16'"]),
    ("too many operands", G.format("return exp(x, x)").encode(), "2:10", ["takes 1 operand, got 2"]),
    ("no operands", G.format("return exp()").encode(), "2:10", ["takes 1 operand, got 0"]),
    ("axis out of range", G.format("return sum(x, axis=3)").encode(), "2:10", ["out of range"]),
    ("slice step 0", G.format("return slice(x, step=0)").encode(), "2:10", ["step must not be 0"]),
    ("not a permutation", b"graph g(x: f32[3, 2]) {\n  return transpose(x, perm=[0, 0])\n}\n", "2:10", ["not a permutation"]),
    # names
    ("undefined name", G.format("return y").encode(), "2:10", ["'y' is not defined"]),
    ("redefined name", G.format("y = x\n  y = x + 1\n  return y").encode(), "3:3", ["'y' is already defined"]),
    ("redefined input", b"graph g(x: f32[3], x: f32[3]) {\n  return x\n}\n", "1:20", ["'x' is already defined"]),
    ("unknown dimension", b"graph g(x: f32[N]) {\n  return x\n}\n", "1:16", ["unknown dimension 'N'"]),
    ("no return", G.format("y = x").encode(), "1:1", ["no return statement"]),
    # shapes and dtypes
    ("shapes do not broadcast", b"graph g(x: f32[3], y: f32[4]) {\n  return x * y\n}\n", "2:12", ["do not broadcast"]),
    ("matmul inner dims", b"graph g(x: f32[3, 4], w: f32[5, 2]) {\n  return x @ w\n}\n", "2:12", ["inner dimensions differ"]),
    ("float op on ints", b"graph g(x: i32[3]) {\n  return exp(x)\n}\n", "2:10", ["needs a float tensor"]),
    ("where on floats", G.format("return where(x, x, x)").encode(), "2:10", ["bool condition"]),
    ("bool minus bool", b"graph g(a: bool[3], b: bool[3]) {\n  return a - b\n}\n", "2:12", ["subtract bool"]),
    ("unknown dtype", b"graph g(x: f16[3]) {\n  return x\n}\n", "1:12", ["unknown dtype 'f16'"]),
    ("reshape size", G.format("return reshape(x, shape=[2, 2])").encode(), "2:10", ["cannot reshape 3 elements"]),
    ("concat shapes", b"graph g(x: f32[3], y: f32[2, 2]) {\n  return concat(x, y)\n}\n", "2:10", ["concat operands must match"]),
    ("max over empty axis", b"graph g(x: f32[0, 3]) {\n  return max(x, axis=0)\n}\n", "2:10", ["empty axis"]),
    ("signature disagrees", b"graph g(x: f32[3]) -> f64[3] {\n  return x\n}\n", "1:23", ["signature says f64[3]"]),
    ("empty input range", b"graph g(x: f32[3] in [2, 1]) {\n  return x\n}\n", "1:9", ["range of 'x' is empty"]),
]


def fusec_in_process(*args):
    """The CLI's main() in this process: the same code path as `python -m fusec`, without paying
    a Python start-up per case. An escaping exception (a traceback) fails the test."""
    from contextlib import redirect_stderr, redirect_stdout
    from io import StringIO

    from fusec.cli.main import main

    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.mark.parametrize("name, source, where, fragments", SOURCE_CASES, ids=[c[0] for c in SOURCE_CASES])
def test_bad_source_exits_2_with_a_located_message(tmp_path, monkeypatch, name, source, where, fragments):
    (tmp_path / "bad.fg").write_bytes(source)
    monkeypatch.chdir(tmp_path)
    r = fusec_in_process("check", "bad.fg")
    assert_clean_error(r, *fragments, located=f"bad.fg:{where}", caret=bool(source.strip()))


SUBPROCESS_CASES = [c for c in SOURCE_CASES if c[0] in ("binary junk", "empty file", "extra brace", "deep parens", "unknown op", "shapes do not broadcast")]


@pytest.mark.parametrize("name, source, where, fragments", SUBPROCESS_CASES, ids=[c[0] for c in SUBPROCESS_CASES])
def test_bad_source_from_a_real_command_line(tmp_path, name, source, where, fragments):
    (tmp_path / "bad.fg").write_bytes(source)
    r = fusec("check", "bad.fg", cwd=tmp_path)
    assert_clean_error(r, *fragments, located=f"bad.fg:{where}", caret=bool(source.strip()))


@pytest.mark.parametrize("command", [["run"], ["fmt"], ["fmt", "-i"]])
def test_every_command_reports_the_same_located_error(tmp_path, command):
    source = G.format("return frob(x)").encode()
    (tmp_path / "bad.fg").write_bytes(source)
    r = fusec(*command, "bad.fg", cwd=tmp_path)
    assert_clean_error(r, "unknown op 'frob'", located="bad.fg:2:10")
    assert (tmp_path / "bad.fg").read_bytes() == source  # fmt -i left the file alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.fg"]  # and wrote nothing else


def test_a_byte_order_mark_is_accepted(tmp_path):
    (tmp_path / "bom.fg").write_bytes(b"\xef\xbb\xbf" + G.format("return x").encode())
    r = fusec("check", "bom.fg", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------------------ sizes


BIG = [
    ("huge input", "graph g(x: f32[100000, 100000, 1000]) {\n  return x\n}\n", "big.fg:1:9: error: input 'x'"),
    ("huge intermediate", "graph g(x: f32[3]) {\n  return iota(shape=[100000, 100000, 100000])\n}\n", "big.fg:2:10: error: the value of iota"),
    ("huge broadcast", "graph g(x: f32[3]) {\n  y = broadcast_to(x, shape=[99999999999, 99999999999, 3])\n  return y\n}\n", "big.fg:2:7: error: the value of broadcast_to 'y'"),
]


@pytest.mark.parametrize("name, source, fragment", BIG, ids=[b[0] for b in BIG])
def test_shapes_too_large_for_memory_are_refused_before_allocating(tmp_path, name, source, fragment):
    (tmp_path / "big.fg").write_text(source)
    # a 1 GiB address-space limit proves nothing was allocated: trying would raise MemoryError
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (2**32, 2**32)); "
    code = limit + "import sys; from fusec.cli.main import main; sys.exit(main(['run', 'big.fg']))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert_clean_error(r, fragment, "GiB", "limit")


def test_zero_size_tensors_run(tmp_path):
    (tmp_path / "z.fg").write_text("graph g<N=3>(x: f32[N, 4]) {\n  return sum(exp(x), axis=0), x * 2\n}\n")
    r = fusec("run", "z.fg", "--set", "N=0", "--out", "o.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "o.npz") as out:
        a, b = (out[k] for k in out.files)
    assert a.shape == (4,) and (a == 0).all()
    assert b.shape == (0, 4)


# ------------------------------------------------------------------------------------------ flags and files

S = "graph g<N=3>(x: f32[N], k: i32[N]) {\n  return x * k\n}\n"


@pytest.fixture
def s_fg(tmp_path):
    (tmp_path / "s.fg").write_text(S)
    return tmp_path


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--set", "N"], ["NAME=VALUE"]),
        (["--set", "=3"], ["NAME=VALUE"]),
        (["--set", "N=abc"], ["not an integer"]),
        (["--set", "N=1e3"], ["not an integer"]),
        (["--set", "N=-1"], ["non-negative"]),
        (["--set", "N=99999999999999999999999999"], ["too large"]),
        (["--set", "Q=3"], ["no dimension 'Q'"]),
        (["--seed", "-1"], ["non-negative"]),
        (["--seed", "abc"], ["invalid int value"]),
        (["--bogus"], ["unrecognized arguments"]),
    ],
)
def test_bad_flags(s_fg, args, fragments):
    assert_clean_error(fusec("run", "s.fg", *args, cwd=s_fg), *fragments)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "make, fragments",
    [
        (lambda d: d / "none.npz", ["no such file"]),
        (lambda d: _npz(d / "a.npz", x=np.ones(3), k=np.ones(3, np.int32)), ["input 'x' must be f32[3]", "f64"]),
        (lambda d: _npz(d / "a.npz", x=np.ones(4, np.float32), k=np.ones(3, np.int32)), ["input 'x'", "shape [4]"]),
        (lambda d: _npz(d / "a.npz", x=np.ones(3, np.float32)), ["no array named k"]),
        (lambda d: _npz(d / "a.npz", x=np.ones(3, np.complex64), k=np.ones(3, np.int32)), ["complex64"]),
        (lambda d: _npz(d / "a.npz", x=np.array([1, "a"], dtype=object), k=np.ones(3, np.int32)), ["holds Python objects"]),
        (lambda d: (np.save(d / "a.npy", np.ones(3)), d / "a.npy")[1], ["single .npy array"]),
        (lambda d: ((d / "t.npz").write_bytes(b"PK\x03\x04 truncated"), d / "t.npz")[1], ["not a valid .npz file of arrays"]),
        (lambda d: ((d / "dir.npz").mkdir(), d / "dir.npz")[1], ["is a directory"]),
        (lambda d: d / "s.fg", ["not a valid .npz file of arrays"]),
    ],
    ids=["missing", "wrong dtype", "wrong shape", "missing array", "complex", "pickled objects", "npy", "truncated", "directory", "not npz"],
)
def test_bad_inputs_files(s_fg, monkeypatch, make, fragments):
    path = make(s_fg)
    monkeypatch.chdir(s_fg)
    assert_clean_error(fusec_in_process("run", "s.fg", "--inputs", path), *fragments)


@pytest.mark.parametrize("target", ["missing_dir/o.npz", "adir"], ids=["no such directory", "a directory"])
def test_unwritable_out_leaves_nothing_behind(s_fg, target):
    (s_fg / "adir").mkdir()
    r = fusec("run", "s.fg", "--out", target, cwd=s_fg)
    assert_clean_error(r, "cannot write")
    assert sorted(p.name for p in s_fg.iterdir()) == ["adir", "s.fg"]
    assert list((s_fg / "adir").iterdir()) == []


def test_a_failed_run_keeps_the_previous_output_file(s_fg):
    assert fusec("run", "s.fg", "--out", "o.npz", cwd=s_fg).returncode == 0
    before = (s_fg / "o.npz").read_bytes()
    _npz(s_fg / "bad.npz", x=np.ones(3), k=np.ones(3, np.int32))
    assert_clean_error(fusec("run", "s.fg", "--inputs", "bad.npz", "--out", "o.npz", cwd=s_fg), "input 'x'")
    assert (s_fg / "o.npz").read_bytes() == before


def test_missing_file_and_directory(tmp_path):
    assert_clean_error(fusec("check", tmp_path / "missing.fg"), "no such file")
    assert_clean_error(fusec("run", tmp_path), "is a directory")


def test_nan_and_inf_inputs_are_computed_not_rejected(s_fg):
    x = np.array([np.nan, np.inf, -1.0], np.float32)
    _npz(s_fg / "in.npz", x=x, k=np.array([1, 0, 2], np.int32))
    r = fusec("run", "s.fg", "--inputs", "in.npz", "--out", "o.npz", cwd=s_fg)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no RuntimeWarning either
    assert "nan=2" in r.stdout  # inf * 0 is nan too
    with np.load(s_fg / "o.npz") as out:
        (y,) = (out[k] for k in out.files)
    assert np.isnan(y[0]) and np.isnan(y[1]) and y[2] == -2.0


# ------------------------------------------------------------------------------------------ the Python API


def test_api_compile_time_errors_are_located(tmp_path):
    import fusec
    from fusec.errors import FusecError

    (tmp_path / "bad.fg").write_text("graph g(x: f32[3], y: f32[4]) {\n  return x * y\n}\n")
    with pytest.raises(FusecError) as err:
        fusec.compile(tmp_path / "bad.fg", backend="numpy")
    assert str(err.value).startswith(f"{tmp_path / 'bad.fg'}:2:12: error: shapes [3] and [4] do not broadcast")


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_api_call_time_errors_name_the_input(backend):
    import fusec
    from fusec.errors import FusecInputError

    g = fusec.parse("graph g(x: f32[3], k: i32[3]) {\n  return x * k\n}\n")
    run = fusec.compile(g, backend=backend)
    x, k = np.ones(3, np.float32), np.ones(3, np.int32)
    assert (run(x, k) == 1).all()
    with pytest.raises(FusecInputError, match=r"input 'x' must be f32\[3\], got an array of dtype f64"):
        run(np.ones(3), k)
    with pytest.raises(FusecInputError, match=r"input 'k' must be i32\[3\], got shape \[4\]"):
        run(x, np.ones(4, np.int32))
    with pytest.raises(FusecInputError, match="takes 2 inputs"):
        run(x)
    # NaN and inf are computed, not rejected
    y = run(np.array([np.nan, np.inf, -np.inf], np.float32), np.array([1, 0, 2], np.int32))
    assert np.isnan(y[0]) and np.isnan(y[1]) and y[2] == -np.inf


def test_api_compile_refuses_buffers_that_cannot_fit_before_allocating():
    import fusec
    from fusec.errors import FusecInputError

    g = fusec.parse("graph g(x: f32[1]) {\n  y = broadcast_to(x, shape=[100000, 100000, 100])\n  return exp(y)\n}\n")
    with pytest.raises(FusecInputError, match="would take .* GiB"):
        fusec.compile(g, backend="numpy")


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_api_zero_size_tensors_compile_and_run(backend):
    import fusec

    g = fusec.parse("graph g<N=0>(x: f32[N, 5]) {\n  return sum(exp(x), axis=0), x * 2.0\n}\n")
    s, y = fusec.compile(g, backend=backend)(np.ones((0, 5), np.float32))
    assert s.shape == (5,) and (s == 0).all() and y.shape == (0, 5)
