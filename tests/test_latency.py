"""The lean start-up and call paths stay correct (their timings are measured in bench/, not here)."""

from __future__ import annotations

import argparse
import subprocess
import sys

from fusec.cli.main import COMMANDS, build_parser


def _listed(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help for a in action._choices_actions}
    raise AssertionError("the parser has no subcommands")


def test_the_command_table_matches_what_the_modules_register():
    # `fusec --help` lists COMMANDS without importing the modules: the two must say the same
    assert _listed(build_parser()) == {name: help_text for name, (_, help_text) in COMMANDS.items()}
    assert list(_listed(build_parser(set()))) == list(COMMANDS)


def test_help_imports_no_command_module_and_no_numpy():
    code = (
        "import sys\n"
        "from fusec.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'networkx', 'lark', 'fusec.api', 'fusec.cli.basic') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out, out


def test_a_command_gets_its_real_options():
    parser = build_parser({"run"})
    args = parser.parse_args(["run", "x.fg", "--set", "N=4"])
    assert args.sizes == ["N=4"] and callable(args.handler)


def test_the_public_names_load_on_first_use():
    import fusec

    assert callable(fusec.compile) and fusec.FusecError.__name__ == "FusecError"
    assert set(fusec.__all__) <= set(dir(fusec))


def test_compiling_a_file_again_reuses_its_kernels_but_not_its_buffers(tmp_path):
    import numpy as np

    import fusec

    path = tmp_path / "g.fg"
    path.write_text("graph g<N=4>(x: f32[N]) {\n  y = exp(x) + 1\n  return y\n}\n")
    a = fusec.compile(path, backend="numpy")
    same = fusec.compile(path, backend="numpy")
    assert same.stages is a.stages and same.pool is not a.pool and same._executor is not a._executor
    assert fusec.compile(path, backend="numpy", sizes={"N": 8}).stages is not a.stages  # other options
    assert fusec.compile(path, backend="numpy", rewrite=None).stages is not a.stages
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_allclose(same(x), np.exp(x) + 1, rtol=1e-6)
    path.write_text("graph g<N=4>(x: f32[N]) {\n  y = exp(x) + 2\n  return y\n}\n")  # an edited file
    np.testing.assert_allclose(fusec.compile(path, backend="numpy")(x), np.exp(x) + 2, rtol=1e-6)
