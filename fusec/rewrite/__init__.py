"""Layer 2: algebraic rewrite rules as data, a fixpoint driver, and a verifier for every rule.

    from fusec.rewrite import rewrite, standard_rules, verify_rule
    result = rewrite(graph)                        # exact + approx rules, fold, CSE, DCE
    print(result.graph); print(result.trace_text())
    verify_rule(standard_rules()[0]).passed        # checked against the interpreter

The rules live in fusec/rewrite/rules/*.rules; docs/rewrites.md explains the language and classes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from fusec.rewrite.driver import DEFAULT_CLASSES, RewriteResult, RewriteStep, rewrite
from fusec.rewrite.library import load_rules, rule_named, standard_rules
from fusec.rewrite.parse import load_rule_file, parse_rules
from fusec.rewrite.rule import CLASSES, Rule, Tolerance

# the verifier (with the interpreter and random inputs it runs) loads on first use (PEP 562): the
# compiler applies rules, it does not verify them
_VERIFY = {"Counterexample", "VerifyResult", "verify_rule", "verify_rules"}

__all__ = [
    "CLASSES", "DEFAULT_CLASSES", "Counterexample", "RewriteResult", "RewriteStep", "Rule", "Tolerance",
    "VerifyResult", "load_rule_file", "load_rules", "parse_rules", "rewrite", "rule_named", "standard_rules",
    "verify_rule", "verify_rules",
]


def __getattr__(name: str):
    if name not in _VERIFY:
        raise AttributeError(f"module 'fusec.rewrite' has no attribute '{name}'")
    value = getattr(importlib.import_module("fusec.rewrite.verify"), name)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from fusec.rewrite.verify import Counterexample, VerifyResult, verify_rule, verify_rules
