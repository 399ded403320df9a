"""The CLI as a user meets it: check, fmt, run, --help, and clean errors (exit 2, no traceback)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT, small_sizes


def fusec(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "fusec", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def sets(path):
    return [a for k, v in small_sizes(path).items() for a in ("--set", f"{k}={v}")]


def assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for f in fragments:
        assert f in result.stderr, result.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_check_and_run_every_example(path):
    r = fusec("check", path, *sets(path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok: ")
    r = fusec("run", path, *sets(path), "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "min=" in r.stdout and "mean=" in r.stdout


def test_check_at_default_sizes():
    r = fusec("check", *[p for p in EXAMPLES if "chain" in p.stem])
    assert r.returncode == 0 and "f32[4096, 4096]" in r.stdout


def test_fmt_is_a_fixpoint(tmp_path):
    for path in EXAMPLES:
        once = fusec("fmt", path)
        assert once.returncode == 0, once.stderr
        f = tmp_path / path.name
        f.write_text(once.stdout)
        twice = fusec("fmt", f)
        assert twice.stdout == once.stdout
        assert fusec("fmt", f, "--check").returncode == 0


def test_fmt_in_place(tmp_path):
    f = tmp_path / "g.fg"
    f.write_text("graph g(x: f32[3]) {   y=x*2\n return y }")
    assert fusec("fmt", "-i", f).returncode == 0
    assert f.read_text() == "graph g(x: f32[3]) {\n  y = x * 2\n  return y\n}\n"


def test_run_with_inputs_and_out(tmp_path):
    src = tmp_path / "g.fg"
    src.write_text("graph g(x: f32[2, 2], y: f32[2]) { return x + y, sum(x) }")
    x = np.arange(4, dtype=np.float32).reshape(2, 2)
    np.savez(tmp_path / "in.npz", x=x, y=np.ones(2, np.float32))
    r = fusec("run", src, "--inputs", tmp_path / "in.npz", "--out", tmp_path / "out.npz")
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "out.npz") as out:
        np.testing.assert_array_equal(out[out.files[0]], x + 1)
        assert out[out.files[1]] == 6


def test_run_is_seeded(tmp_path):
    path = EXAMPLES[0]
    a = fusec("run", path, *sets(path), "--seed", "5").stdout
    b = fusec("run", path, *sets(path), "--seed", "5").stdout
    c = fusec("run", path, *sets(path), "--seed", "6").stdout
    assert a == b and a != c


@pytest.mark.parametrize("cmd", ["check", "fmt", "run"])
def test_help_on_every_command(cmd):
    r = fusec(cmd, "--help")
    assert r.returncode == 0 and "usage:" in r.stdout


@pytest.mark.parametrize(
    "text, fragments",
    [
        (b"\x00\x01\xff\xfe garbage", ["not UTF-8"]),
        (b"", ["bad.fg:1:1", "empty"]),
        (b"graph g(x: f32[3]) {\n  return x\n", ["bad.fg:2:11", "unexpected end of file"]),
        (b"graph g(x: f32[3]) {\n  return x }\n}\n", ["bad.fg:3:1", "unexpected '}'"]),
        (b"graph g(x: f32[3]) {\n  return frob(x)\n}\n", ["bad.fg:2:10", "unknown op 'frob'"]),
        (b"graph g(x: f32[3], y: f32[4]) {\n  return x * y\n}\n", ["bad.fg:2:12", "do not broadcast"]),
    ],
)
def test_user_errors_exit_2_with_a_located_message(tmp_path, text, fragments):
    f = tmp_path / "bad.fg"
    f.write_bytes(text)
    r = fusec("check", "bad.fg", cwd=tmp_path)
    assert_user_error(r, *fragments)


def test_bad_flags_and_files(tmp_path):
    assert_user_error(fusec("check", tmp_path / "missing.fg"), "no such file")
    assert_user_error(fusec("check", EXAMPLES[0], "--set", "N"), "NAME=VALUE")
    assert_user_error(fusec("check", EXAMPLES[0], "--set", "N=abc"), "not an integer")
    assert_user_error(fusec("check", EXAMPLES[0], "--set", "Q=3"), "no dimension 'Q'")
    assert_user_error(fusec("check", EXAMPLES[0], "--set", "N=3", "--set", "N=4"), "--set N is given twice")
    assert_user_error(fusec("run", EXAMPLES[0], "--inputs", tmp_path / "none.npz"), "no such file")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert_user_error(fusec("run", EXAMPLES[0], "--inputs", tmp_path / "junk.npz"), "not a valid .npz file of arrays")
    assert_user_error(fusec("frobnicate"), "invalid choice")
