"""Layer 2: algebraic rewrite rules as data, a fixpoint driver, and a verifier for every rule.

    from fusec.rewrite import rewrite, standard_rules, verify_rule
    result = rewrite(graph)                        # exact + approx rules, fold, CSE, DCE
    print(result.graph); print(result.trace_text())
    verify_rule(standard_rules()[0]).passed        # checked against the interpreter

The rules live in fusec/rewrite/rules/*.rules; docs/rewrites.md explains the language and classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusec.lazy import lazy_names
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


__getattr__, __dir__ = lazy_names(__name__, dict.fromkeys(_VERIFY, "fusec.rewrite.verify"), globals(), __all__)


if TYPE_CHECKING:
    from fusec.rewrite.verify import Counterexample, VerifyResult, verify_rule, verify_rules
