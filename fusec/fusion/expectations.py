"""Fusion assertions: `assert kernels <= 2` in a .fg file, checked against a plan."""

from __future__ import annotations

from fusec.errors import FusecError
from fusec.fusion.plan import Plan


def check_expectations(plan: Plan) -> list[str]:
    """Raise FusecError (located at the assert) for the first expectation the plan breaks.

    Returns one line per expectation that holds, for a report.
    """
    held = []
    for exp in plan.graph.expectations:
        if exp.what != "kernels":
            raise FusecError(f"unknown assertion '{exp.what}' (only 'kernels' can be asserted)", exp.loc)
        actual = plan.kernels
        if not exp.holds(actual):
            groups = " | ".join(" ".join(grp.nodes) for grp in plan.groups)
            raise FusecError(
                f"expected kernels {exp.cmp} {exp.value}, but the {plan.policy} plan has {actual}: {groups}", exp.loc
            )
        held.append(f"kernels {exp.cmp} {exp.value} (plan: {actual})")
    return held
