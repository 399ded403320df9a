"""`fusec demo` walks every stage and checks both backends against the interpreter."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_demo_shows_every_stage_and_agrees():
    r = subprocess.run(
        [sys.executable, "-m", "fusec", "demo", "softmax", "--set", "N=33", "--set", "D=70"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for step in ("[1] parse", "[2] rewrite", "[3] plan", "[4] lower", "[5] generate", "[6] run"):
        assert step in out
    assert "1 kernel" in out
    assert "outputs agree with the interpreter" in out
    assert "numpy backend" in out and "c backend" in out


def test_demo_unknown_example_is_a_user_error():
    r = subprocess.run([sys.executable, "-m", "fusec", "demo", "nosuchthing"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "no example matches 'nosuchthing'" in r.stderr and "Traceback" not in r.stderr
