"""docs/cli.md names every command and every long option the CLI has."""

from __future__ import annotations

import argparse

from conftest import ROOT

from fusec.cli.main import build_parser


def subcommands(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from subcommands(sub, f"{prefix}{name} ")


def test_every_command_and_option_is_documented():
    doc = (ROOT / "docs" / "cli.md").read_text()
    missing = []
    for name, sub in subcommands(build_parser()):
        if f"fusec {name}" not in doc:
            missing.append(f"command 'fusec {name}'")
        for action in sub._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt != "--help" and opt not in doc:
                    missing.append(f"'fusec {name} {opt}'")
    assert not missing, "docs/cli.md does not mention: " + ", ".join(missing)
