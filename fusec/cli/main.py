"""The `fusec` entry point: builds the argument parser from the command modules and runs one command.

A user mistake (FusecError) prints one message and exits 2, never a traceback. Each command module
defines `register(subparsers)`; add its commands to COMMANDS.

Start-up time: importing every command module pulls in NumPy, networkx, lark and the whole compiler
(about half a second), which `fusec --help` does not need. So only the module of the command being
run is imported and registers its real parser; every other command is listed by its name and the
one-line help in COMMANDS (tests/test_latency.py checks that the two agree).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
import warnings

# command -> (module that registers it, one-line help), in the order `fusec --help` lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("fusec.cli.basic", "parse and type-check .fg files"),
    "fmt": ("fusec.cli.basic", "print a .fg file in canonical form"),
    "run": ("fusec.cli.basic", "run a graph and summarise its outputs"),
    "demo": ("fusec.cli.demo", "compile an example and show every stage"),
    "explain": ("fusec.cli.fusion", "show the fusion plan: kernels, costs, and why edges are not fused"),
    "calibrate": ("fusec.cli.fusion", "measure bandwidth and peak for the cost model"),
    "viz": ("fusec.cli.fusion", "draw the graph with one colour per kernel"),
    "tune": ("fusec.cli.tune", "search each kernel's schedules and store the fastest for compile"),
    "rules": ("fusec.cli.rules", "list, verify or prove the rewrite rules"),
    "rewrite": ("fusec.cli.rules", "apply the rewrite rules to a graph and print it"),
    "compile": ("fusec.cli.compile", "compile a graph and print the stages you ask for"),
    "import": ("fusec.cli.importer", "import an ONNX model as a .fg graph"),
    "bench": ("fusec.cli.bench", "time fused against unfused (and numexpr, torch.compile, jax.jit)"),
}
COMMAND_MODULES = list(dict.fromkeys(module for module, _ in COMMANDS.values()))

# Commands that load the compiler, build one program and exit. Most of their objects are the modules
# they import, which live until exit; Python's cyclic garbage collector scans those again and again
# (about a tenth of `fusec check`'s time), and a command this short leaves little cyclic garbage. So
# they run with the collector off. The long-running ones (tune, bench, demo, run, rules) keep it.
WITHOUT_GC = {"check", "fmt", "explain", "viz", "rewrite", "compile", "import"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser(commands: set[str] | None = None) -> argparse.ArgumentParser:
    """The full parser, or (with `commands`) one whose other commands are only listed by name and help.

    A listed-only command has no options of its own; it is never the one that runs (main asks for
    the real parser of the command it finds in argv).
    """
    parser = _Parser(prog="fusec", description="fusec: an operator-fusion compiler for AI compute graphs")
    from fusec import __version__

    parser.add_argument("--version", action="version", version=f"fusec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    wanted = {COMMANDS[c][0] for c in commands} if commands is not None else set(COMMAND_MODULES)
    registered: set[str] = set()
    for name, (module, help_text) in COMMANDS.items():
        if module not in wanted:
            sub.add_parser(name, help=help_text)
        elif module not in registered:
            importlib.import_module(module).register(sub)
            registered.add(module)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The command argv names (its first word that is not an option), if it is one of ours."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning on the command line is one plain line (`warning: ...`), not Python's
    `path/to/module.py:152: RuntimeWarning` followed by the source line."""
    try:
        print(f"warning: {message}", file=file if file is not None else sys.stderr)
    except OSError:  # stderr closed: a warning is not worth a traceback
        pass


def main(argv: list[str] | None = None) -> int:
    argv_is_the_process = argv is None  # the `fusec` command, not a call from Python
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(argv)
    parser = build_parser({command} if command else set())
    args = parser.parse_args(argv)
    from fusec.errors import FusecError

    shown_by, warnings.showwarning = warnings.showwarning, _show_warning
    collecting = gc.isenabled()
    if command in WITHOUT_GC:
        gc.disable()
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
    finally:
        warnings.showwarning = shown_by  # main() called from Python leaves the warnings module as it was
        if collecting:
            gc.enable()
        if argv_is_the_process and command in WITHOUT_GC:
            # the process exits next, and Python's exit would run the collector once over every object
            # the compiler and its imports made (a tenth of `fusec check`): frozen objects are skipped;
            # memory goes back to the system at exit either way
            gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
