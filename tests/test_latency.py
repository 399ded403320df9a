"""The lean start-up and call paths stay correct (their timings are measured in bench/, not here)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from fusec.cli.main import COMMANDS, build_parser

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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


# --- the grammar cache (fusec/frontend/grammar_cache.py): parser tables saved once, loaded after

GRAMMAR = 'start: item+\nitem: NAME "=" NUMBER ";"\n%import common.CNAME -> NAME\n%import common.NUMBER\n%import common.WS\n%ignore WS\n'
OPTIONS = {"parser": "lalr", "propagate_positions": True}


def _built_again(monkeypatch):
    """From here on, building tables is a test failure: only loading from the cache is allowed."""
    from lark import Lark

    from fusec.frontend import grammar_cache

    class NoBuild(Lark):
        def __init__(self, *args, **kwargs):
            raise AssertionError("the tables were built again instead of loaded from the cache")

    monkeypatch.setattr(grammar_cache, "Lark", NoBuild)


def _cached(tmp_path, text=GRAMMAR, imports=(), **extra):
    from fusec.frontend.grammar_cache import cached_lark

    return cached_lark(tmp_path / "toy.lark", text, imports, {**OPTIONS, **extra}, directory=tmp_path / "cache")


def _entries(tmp_path):
    return sorted((tmp_path / "cache" / "grammars").glob("toy-*.lark"))


def test_grammar_tables_are_saved_once_and_loaded_after(tmp_path, monkeypatch):
    built = _cached(tmp_path)
    assert len(_entries(tmp_path)) == 1
    _built_again(monkeypatch)
    loaded = _cached(tmp_path)
    text = "a = 1;\n  b=2.5;"
    assert loaded.parse(text) == built.parse(text)
    tree = loaded.parse(text)
    assert (tree.children[1].meta.line, tree.children[1].meta.column) == (2, 3)  # positions kept


def test_the_fg_and_rules_parsers_read_the_same_from_the_cache(tmp_path, monkeypatch):
    from pathlib import Path

    from fusec.frontend import syntax
    from fusec.frontend.grammar_cache import cached_lark

    root = Path(syntax.__file__).resolve().parent
    sources = {root / "fusec.lark": sorted(EXAMPLES.glob("*.fg")), root.parent / "rewrite" / "rules.lark": sorted((root.parent / "rewrite" / "rules").glob("*.rules"))}
    for grammar, files in sources.items():
        options = dict(parser="lalr", propagate_positions=True, maybe_placeholders=False, import_paths=[str(root)], source_path=str(grammar))
        imports = sorted(root.glob("*.lark"))
        fresh = cached_lark(grammar, grammar.read_text(), imports, options, directory=tmp_path)
        with monkeypatch.context() as m:
            _built_again(m)
            loaded = cached_lark(grammar, grammar.read_text(), imports, options, directory=tmp_path)
        assert files
        for path in files:
            assert loaded.parse(path.read_text()) == fresh.parse(path.read_text()), path


def test_a_lexer_callback_is_given_again_when_loading(tmp_path, monkeypatch):
    seen = []
    _cached(tmp_path, lexer_callbacks={"NUMBER": lambda tok: seen.append(("first", str(tok))) or tok})
    _built_again(monkeypatch)
    loaded = _cached(tmp_path, lexer_callbacks={"NUMBER": lambda tok: seen.append(("loaded", str(tok))) or tok})
    loaded.parse("a = 7;")
    assert seen == [("loaded", "7")]


def test_a_changed_grammar_misses_the_cache(tmp_path):
    _cached(tmp_path)
    changed = GRAMMAR.replace('"="', '":="')
    parser = _cached(tmp_path, text=changed)
    assert parser.parse("a := 1;").data == "start"
    assert len(_entries(tmp_path)) == 2


def test_a_changed_imported_grammar_or_option_changes_the_key(tmp_path):
    from fusec.frontend.grammar_cache import grammar_key

    shared = tmp_path / "expr.lark"
    shared.write_text("x: NAME\n")
    key = grammar_key(GRAMMAR, [shared], OPTIONS)
    assert grammar_key(GRAMMAR, [shared], OPTIONS) == key
    assert grammar_key(GRAMMAR, [shared], {**OPTIONS, "propagate_positions": False}) != key
    assert grammar_key(GRAMMAR, [shared], {**OPTIONS, "lexer_callbacks": {"X": print}}) == key  # not part of the tables
    shared.write_text("x: NAME | NUMBER\n")
    assert grammar_key(GRAMMAR, [shared], OPTIONS) != key


@pytest.mark.parametrize("damage", ["garbage", "truncated", "payload", "empty"])
def test_a_corrupt_grammar_cache_file_is_rebuilt_with_a_warning(tmp_path, monkeypatch, damage):
    _cached(tmp_path)
    [entry] = _entries(tmp_path)
    data = entry.read_bytes()
    header, _, payload = data.partition(b"\n")
    damaged = {
        "garbage": b"not a cache file at all",
        "truncated": data[: len(data) // 2],
        "payload": header + b"\n" + payload[:-10] + b"0123456789",
        "empty": b"",
    }[damage]
    entry.write_bytes(damaged)
    with pytest.warns(RuntimeWarning, match="corrupt grammar cache file .*rebuilding it"):
        parser = _cached(tmp_path)
    assert parser.parse("a = 1;").data == "start"
    assert entry.read_bytes() != damaged  # rebuilt in place: the next process loads it quietly
    _built_again(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _cached(tmp_path)


def test_a_valid_looking_file_lark_cannot_load_is_rebuilt_with_a_warning(tmp_path):
    import hashlib

    _cached(tmp_path)
    [entry] = _entries(tmp_path)
    key = entry.read_bytes().partition(b" ")[0].decode()
    payload = b"\x80\x05K\x01."  # a pickle of the integer 1, with a correct checksum
    entry.write_bytes(f"{key} {hashlib.sha256(payload).hexdigest()}\n".encode() + payload)
    with pytest.warns(RuntimeWarning, match="corrupt grammar cache file"):
        assert _cached(tmp_path).parse("a = 1;").data == "start"


def test_an_unwritable_cache_directory_only_costs_the_build(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parser = _cached(tmp_path)
    assert parser.parse("a = 1;").data == "start"


def test_fg_comments_survive_a_parser_loaded_from_the_cache(tmp_path):
    # a new process with an empty cache builds the tables; a second one loads them: both keep comments
    code = "import fusec, sys; from fusec.ir.printer import print_graph; print(print_graph(fusec.load(sys.argv[1])))"
    env = {**os.environ, "FUSEC_CACHE_DIR": str(tmp_path)}
    outs = [subprocess.run([sys.executable, "-c", code, str(EXAMPLES / "04_layernorm.fg")], capture_output=True, text=True, env=env, check=True).stdout
            for _ in range(2)]
    assert list((tmp_path / "grammars").glob("fusec-*.lark"))
    assert outs[0] == outs[1] and "# Layer normalisation" in outs[0]


# --- the rule cache (fusec/rewrite/rule_cache.py): the standard library parsed once


def _rule_files(tmp_path, text="rule twice_is_add exact x * 2 -> x + x\n"):
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "10_a.rules").write_text(text)
    return [folder / "10_a.rules"]


def _parsed(files):
    from fusec.rewrite.parse import load_rule_file

    return tuple(r for f in files for r in load_rule_file(f))


def _no_parse():
    raise AssertionError("the rules were parsed again instead of loaded from the cache")


def test_the_standard_library_from_the_cache_equals_a_fresh_parse(tmp_path):
    from fusec.rewrite.library import RULES_DIR
    from fusec.rewrite.rule_cache import cached_rules

    files = sorted(RULES_DIR.glob("*.rules"))
    fresh = cached_rules(files, lambda: _parsed(files), directory=tmp_path)
    assert len(fresh) > 50
    assert cached_rules(files, _no_parse, directory=tmp_path) == fresh


def test_a_changed_rule_file_misses_the_rule_cache(tmp_path):
    from fusec.rewrite.rule_cache import cached_rules

    files = _rule_files(tmp_path)
    [first] = cached_rules(files, lambda: _parsed(files), directory=tmp_path)
    _rule_files(tmp_path, "rule thrice exact x * 3 -> x + x + x\n")
    [second] = cached_rules(files, lambda: _parsed(files), directory=tmp_path)
    assert (first.name, second.name) == ("twice_is_add", "thrice")


@pytest.mark.parametrize("damage", ["garbage", "checksum", "not rules"])
def test_a_corrupt_rule_cache_file_is_rebuilt_with_a_warning(tmp_path, damage):
    import hashlib
    import pickle

    from fusec.rewrite.rule_cache import cached_rules

    files = _rule_files(tmp_path)
    expected = cached_rules(files, lambda: _parsed(files), directory=tmp_path)
    [entry] = (tmp_path / "rules").glob("library-*.pickle")
    key = entry.read_bytes().partition(b" ")[0].decode()
    payload = {"garbage": b"\x80\x05junk", "checksum": None, "not rules": pickle.dumps(("a", "b"))}[damage]
    if payload is None:
        entry.write_bytes(entry.read_bytes()[:-3] + b"xyz")
    else:
        entry.write_bytes(f"{key} {hashlib.sha256(payload).hexdigest()}\n".encode() + payload)
    with pytest.warns(RuntimeWarning, match="corrupt rule cache file"):
        assert cached_rules(files, lambda: _parsed(files), directory=tmp_path) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cached_rules(files, _no_parse, directory=tmp_path) == expected  # rebuilt: read quietly now


def test_a_mistake_in_a_rule_file_is_still_reported_with_the_cache(tmp_path):
    from fusec.errors import FusecError
    from fusec.rewrite.rule_cache import cached_rules

    files = _rule_files(tmp_path, "rule broken exact x * -> x\n")
    for _ in range(2):  # a failed parse is never cached
        with pytest.raises(FusecError, match="10_a.rules:1"):
            cached_rules(files, lambda: _parsed(files), directory=tmp_path)


def test_a_short_command_runs_without_the_collector_and_gives_it_back(capsys):
    import gc

    from fusec.cli.main import main

    assert gc.isenabled()
    assert main(["check", str(EXAMPLES / "01_chain.fg")]) == 0
    assert gc.isenabled()
    gc.disable()
    try:
        assert main(["fmt", str(EXAMPLES / "01_chain.fg")]) == 0
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def test_check_and_fmt_load_only_the_stages_they_run():
    code = (
        "import sys\n"
        "from fusec.cli.main import main\n"
        "main([sys.argv[1], sys.argv[2]])\n"
        "later = ('fusec.codegen', 'fusec.loops', 'fusec.tune', 'fusec.api', 'fusec.runtime.build')\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith(later)))\n"
        "print('PIPELINE', 'fusec.pipeline' in sys.modules)\n"
    )
    check = subprocess.run([sys.executable, "-c", code, "check", str(EXAMPLES / "03_softmax.fg")], capture_output=True, text=True, check=True).stdout
    assert "LOADED []" in check and "PIPELINE True" in check, check
    fmt = subprocess.run([sys.executable, "-c", code, "fmt", str(EXAMPLES / "03_softmax.fg")], capture_output=True, text=True, check=True).stdout
    assert "LOADED []" in fmt and "PIPELINE False" in fmt, fmt
