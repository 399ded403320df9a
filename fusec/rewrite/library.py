"""The standard rule library: every `*.rules` file under fusec/rewrite/rules/, in file-name order.

Order matters: at a node, the driver tries the rules for that node's op in this order and applies
the first that matches. The files are numbered so recognition (which must see whole patterns)
comes before the identities that would take those patterns apart.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fusec.errors import FusecError
from fusec.rewrite.parse import load_rule_file, parse_rules
from fusec.rewrite.rule import Rule
from fusec.rewrite.rule_cache import cached_rules

RULES_DIR = Path(__file__).with_name("rules")


@lru_cache(maxsize=1)
def _standard() -> tuple[Rule, ...]:
    files = sorted(RULES_DIR.glob("*.rules"))
    return cached_rules(files, lambda: _parse_standard(files))  # parsed once, then kept in the cache dir


def _parse_standard(files: list[Path]) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    seen: dict[str, Rule] = {}
    for path in files:
        for rule in load_rule_file(path):
            if rule.name in seen:
                raise FusecError(f"rule '{rule.name}' is defined twice ({seen[rule.name].location} and {rule.location})")
            seen[rule.name] = rule
            rules.append(rule)
    return tuple(rules)


def standard_rules() -> list[Rule]:
    """The standard library's rules, in the order the driver tries them."""
    return list(_standard())


def load_rules(*sources: str | Path, text: str | None = None, standard: bool = False) -> list[Rule]:
    """Rules from rule files (paths) and/or rule text; with no arguments, the standard library.

    standard=True puts the standard library first. Rule names must be unique across all sources.
    """
    if not sources and text is None:
        return standard_rules()
    rules = standard_rules() if standard else []
    for src in sources:
        rules.extend(load_rule_file(src))
    if text is not None:
        rules.extend(parse_rules(text))
    seen: set[str] = set()
    for r in rules:
        if r.name in seen:
            raise FusecError(f"rule '{r.name}' is defined twice", r.location)
        seen.add(r.name)
    return rules


def rule_named(name: str, rules: list[Rule] | None = None) -> Rule:
    rules = standard_rules() if rules is None else rules
    for r in rules:
        if r.name == name:
            return r
    import difflib

    close = difflib.get_close_matches(name, [r.name for r in rules], n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise FusecError(f"no rule named '{name}'{hint}")
