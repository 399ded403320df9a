"""Every command and code block in docs/ and README.md runs.

Fenced blocks are run by language:

* ```console: `$ command` lines, each followed by its expected output (stdout then stderr). A line
  `...` matches any number of lines; `[exit N]` as the last expected line states a non-zero exit
  code. `fusec` means this checkout's CLI.
* ```python: the blocks of one file run in order in one fresh namespace, as a reader would type
  them. A block that starts with `>>>` is a doctest (ELLIPSIS on): its printed output is checked.
* ```bash / ```sh: each line that is not a comment is a shell command that must exit 0, with this
  checkout's `fusec` and `python` first on PATH.

Everything runs in a fresh temporary directory holding links to examples/, docs/, bench/ and the
rest of the checkout, so relative paths work and files a command writes do not land in the tree.
A block that must not run says so after its language (```console no-run) and is counted, so such
blocks stay few. A block that needs an optional extra (z3, matplotlib, onnx, dask) is skipped,
with the reason shown, when the extra is absent: it says `requires=z3` after its language, or is
recognised by what it runs (KNOWN_NEEDS). Each tutorial chapter is one test that runs all its
blocks in order, end to end.
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT

DOCS = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
TUTORIAL = ROOT / "docs" / "tutorial"
CHAPTERS = ["01_ir", "02_rewrites", "03_fusion", "04_loops", "05_codegen", "06_autotuning", "07_benchmarking"]
FENCE = re.compile(r"^([ \t]*)```([A-Za-z]*)([^\n]*)\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)  # may be indented (in a list)
RUN = {"console", "python", "bash", "sh"}
MAX_NO_RUN = 12  # blocks marked no-run across all docs: keep them few

# what a block runs -> the module it needs and the extra that installs it
KNOWN_NEEDS = {
    "rules prove": ("z3", "prove"),
    "prove_rule": ("z3", "prove"),
    "--plot": ("matplotlib", "plot"),
    "matplotlib": ("matplotlib", "plot"),
    "fusec import": ("onnx", "onnx"),
    "from_onnx": ("onnx", "onnx"),
    "dask": ("dask", "dask"),
}
EXTRA_OF = {module: extra for module, extra in KNOWN_NEEDS.values()}


@dataclass
class Block:
    doc: Path
    line: int
    lang: str
    flags: list[str]
    text: str

    @property
    def no_run(self) -> bool:
        return "no-run" in self.flags

    def missing_extra(self) -> str | None:
        """Why this block cannot run here (an optional module is absent), or None."""
        needs = {f.split("=", 1)[1] for f in self.flags if f.startswith("requires=")}
        needs = {m for n in needs for m in n.split(",")}
        needs |= {module for marker, (module, _) in KNOWN_NEEDS.items() if marker in self.text}
        for module in sorted(needs):
            if importlib.util.find_spec(module) is None:
                return f"{self.doc.name}:{self.line}: needs {module} (pip install 'fusec[{EXTRA_OF.get(module, module)}]')"
        return None


def blocks_of(doc: Path) -> list[Block]:
    text = doc.read_text()
    found = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        body = textwrap.dedent(m.group(4)) if m.group(1) else m.group(4)
        found.append(Block(doc, line, m.group(2), m.group(3).split(), body))
    return found


def console_commands(block: Block):
    """(command, expected lines) for each `$ ` line of a console block."""
    command, expected = None, []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            if command is not None:
                yield command, expected
            command, expected = line[2:], []
        else:
            expected.append(line)
    if command is not None:
        yield command, expected


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line-by-line equality where an `...` line stands for any run of lines (maybe none)."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0].rstrip() == actual[0].rstrip() and matches(expected[1:], actual[1:])


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A temporary directory that looks like the checkout (links to its top-level entries)."""
    for entry in ROOT.iterdir():
        if not entry.name.startswith("."):
            (tmp_path / entry.name).symlink_to(entry)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def shell_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def run_console(block: Block, command: str, expected: list[str], cwd: Path) -> None:
    argv = shlex.split(command)
    where = f"{block.doc.name}:{block.line}"
    assert argv[0] == "fusec", f"{where}: console examples must run fusec, got {command!r}"
    code = 0
    if expected and re.fullmatch(r"\[exit \d+\]", expected[-1].strip()):
        code = int(expected[-1].strip()[6:-1])
        expected = expected[:-1]
    result = subprocess.run([sys.executable, "-m", "fusec", *argv[1:]], capture_output=True, text=True, cwd=cwd)
    actual = (result.stdout + result.stderr).splitlines()
    assert result.returncode == code, f"{where}: `{command}` exited {result.returncode}:\n{result.stderr}"
    assert matches(expected, actual), f"{where}: `{command}` printed:\n" + "\n".join(actual)


def run_shell(block: Block, cwd: Path) -> None:
    for line in block.text.splitlines():
        command = line.strip()
        if not command or command.startswith("#"):
            continue
        result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=cwd, env=shell_env())
        assert result.returncode == 0, f"{block.doc.name}:{block.line}: `{command}` exited {result.returncode}:\n{result.stdout}{result.stderr}"


def run_python(block: Block, namespace: dict) -> None:
    name = f"{block.doc.name}:{block.line}"
    if block.text.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(block.text, namespace, name, str(block.doc), block.line)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test, clear_globs=False)
        namespace.update(test.globs)
        assert runner.failures == 0, f"{name}: the doctest's output differs (see the report above)"
    else:
        exec(compile(block.text, name, "exec"), namespace)


def run_blocks(blocks: list[Block], cwd: Path) -> None:
    """Run blocks in order, python ones sharing one namespace (in this process)."""
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks:
        if block.lang == "console":
            for command, expected in console_commands(block):
                run_console(block, command, expected, cwd)
        elif block.lang == "python":
            run_python(block, namespace)
        else:
            run_shell(block, cwd)


def run_in_child(doc: Path, langs: set[str], cwd: Path) -> None:
    """Run a doc's blocks of these languages in a fresh Python process (python blocks may register
    ops or set globals; none of that may leak into the test session). Skips when an extra is absent."""
    blocks = [b for b in runnable(doc) if b.lang in langs]
    for block in blocks:
        reason = block.missing_extra()
        if reason:
            pytest.skip(reason)
    result = subprocess.run(
        [sys.executable, __file__, str(doc), *sorted(langs)], capture_output=True, text=True, cwd=cwd, env=shell_env()
    )
    assert result.returncode == 0, f"{doc.name} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


def runnable(doc: Path) -> list[Block]:
    return [b for b in blocks_of(doc) if b.lang in RUN and not b.no_run]


REFERENCE = [d for d in DOCS if TUTORIAL not in d.parents]
CONSOLE = [(b, c, e) for d in REFERENCE for b in runnable(d) if b.lang == "console" for c, e in console_commands(b)]
SHELL = [d for d in REFERENCE if any(b.lang in ("bash", "sh") for b in runnable(d))]
PYTHON = [d for d in REFERENCE if any(b.lang == "python" for b in runnable(d))]


@pytest.mark.parametrize("block, command, expected", CONSOLE, ids=[f"{b.doc.name}:{c[:40]}" for b, c, _ in CONSOLE])
def test_console_example(block, command, expected, workspace):
    reason = block.missing_extra()
    if reason:
        pytest.skip(reason)
    run_console(block, command, expected, workspace)


@pytest.mark.parametrize("doc", SHELL, ids=[d.name for d in SHELL])
def test_shell_examples(doc, workspace):
    """A file's shell blocks, in order, in one directory (a later block may use a file an earlier one wrote)."""
    blocks = [b for b in runnable(doc) if b.lang in ("bash", "sh")]
    for block in blocks:
        reason = block.missing_extra()
        if reason:
            pytest.skip(reason)
    for block in blocks:
        run_shell(block, workspace)


@pytest.mark.parametrize("doc", PYTHON, ids=[d.name for d in PYTHON])
def test_python_examples(doc, workspace):
    """A file's python blocks, in order, in one fresh namespace."""
    run_in_child(doc, {"python"}, workspace)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_tutorial_chapter_runs_end_to_end(chapter, workspace):
    doc = TUTORIAL / f"{chapter}.md"
    assert doc.is_file(), f"the tutorial has no chapter {doc.name}"
    blocks = runnable(doc)
    assert any(b.lang == "console" for b in blocks), f"{doc.name}: a chapter shows commands the learner runs"
    run_in_child(doc, RUN, workspace)


def test_tutorial_has_exactly_the_seven_chapters():
    assert sorted(p.stem for p in TUTORIAL.glob("*.md")) == CHAPTERS


def test_no_run_blocks_are_few_and_marked():
    no_run = [f"{b.doc.relative_to(ROOT)}:{b.line}" for d in DOCS for b in blocks_of(d) if b.no_run]
    assert len(no_run) <= MAX_NO_RUN, f"{len(no_run)} blocks are marked no-run (at most {MAX_NO_RUN}): {no_run}"


def test_docs_have_examples_of_each_kind():
    assert any(b.doc.name == "language.md" for b, _, _ in CONSOLE)
    assert ROOT / "README.md" in PYTHON, "the README's Python snippet runs"


if __name__ == "__main__":  # `python tests/test_docs.py DOC LANG...`: run DOC's blocks of those languages here
    doc, langs = Path(sys.argv[1]), set(sys.argv[2:])
    run_blocks([b for b in runnable(doc) if b.lang in langs], Path.cwd())
