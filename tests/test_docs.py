"""Every ```console block in docs/ and README.md runs, and prints what the doc says it prints.

A block holds `$ command` lines, each followed by its expected output (stdout then stderr). A line
`...` matches any number of lines; `[exit N]` as the last expected line states a non-zero exit code.
Commands run from the repository root with `fusec` meaning this checkout's CLI.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
from conftest import ROOT

DOCS = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
BLOCK = re.compile(r"```console\n(.*?)```", re.S)


def console_examples():
    for doc in DOCS:
        text = doc.read_text()
        for block in BLOCK.findall(text):
            command, expected = None, []
            for line in block.splitlines():
                if line.startswith("$ "):
                    if command is not None:
                        yield doc, command, expected
                    command, expected = line[2:], []
                else:
                    expected.append(line)
            if command is not None:
                yield doc, command, expected


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line-by-line equality where an `...` line stands for any run of lines (maybe none)."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0].rstrip() == actual[0].rstrip() and matches(expected[1:], actual[1:])


CASES = list(console_examples())


@pytest.mark.parametrize("doc, command, expected", CASES, ids=[f"{d.name}:{c[:40]}" for d, c, _ in CASES])
def test_console_example(doc, command, expected, tmp_path):
    argv = shlex.split(command)
    assert argv[0] == "fusec", f"{doc.name}: console examples must run fusec, got {command!r}"
    code = 0
    if expected and re.fullmatch(r"\[exit \d+\]", expected[-1].strip()):
        code = int(expected[-1].strip()[6:-1])
        expected = expected[:-1]
    result = subprocess.run([sys.executable, "-m", "fusec", *argv[1:]], capture_output=True, text=True, cwd=ROOT)
    actual = (result.stdout + result.stderr).splitlines()
    assert result.returncode == code, f"{doc.name}: `{command}` exited {result.returncode}:\n{result.stderr}"
    assert matches(expected, actual), f"{doc.name}: `{command}` printed:\n" + "\n".join(actual)


def test_docs_have_console_examples():
    assert any(doc.name == "language.md" for doc, _, _ in CASES)
