"""Layer 2: algebraic rewrite rules as data, a fixpoint driver, and a verifier for every rule.

    from fusec.rewrite import rewrite, standard_rules, verify_rule
    result = rewrite(graph)                        # exact + approx rules, fold, CSE, DCE
    print(result.graph); print(result.trace_text())
    verify_rule(standard_rules()[0]).passed        # checked against the interpreter

The rules live in fusec/rewrite/rules/*.rules; docs/rewrites.md explains the language and classes.
"""

from fusec.rewrite.driver import DEFAULT_CLASSES, RewriteResult, RewriteStep, rewrite
from fusec.rewrite.library import load_rules, rule_named, standard_rules
from fusec.rewrite.parse import load_rule_file, parse_rules
from fusec.rewrite.rule import CLASSES, Rule, Tolerance
from fusec.rewrite.verify import Counterexample, VerifyResult, verify_rule, verify_rules

__all__ = [
    "CLASSES", "DEFAULT_CLASSES", "Counterexample", "RewriteResult", "RewriteStep", "Rule", "Tolerance",
    "VerifyResult", "load_rule_file", "load_rules", "parse_rules", "rewrite", "rule_named", "standard_rules",
    "verify_rule", "verify_rules",
]
