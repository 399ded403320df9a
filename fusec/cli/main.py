"""The `fusec` entry point: builds the argument parser from the command modules and runs one command.

A user mistake (FusecError) prints one message and exits 2, never a traceback. Each command module
defines `register(subparsers)`; add new ones to COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fusec.errors import FusecError

COMMAND_MODULES = [
    "fusec.cli.basic",  # check, fmt, run
    "fusec.cli.demo",  # demo
    "fusec.cli.fusion",  # explain, calibrate, viz
    "fusec.cli.tune",  # tune
    "fusec.cli.rules",  # rules list, rules verify, rewrite
    "fusec.cli.compile",  # compile
    "fusec.cli.bench",  # bench
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fusec", description="fusec: an operator-fusion compiler for AI compute graphs")
    from fusec import __version__

    parser.add_argument("--version", action="version", version=f"fusec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except FusecError as err:
        print(str(err), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
