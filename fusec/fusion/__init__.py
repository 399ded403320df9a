"""Layer 3: the fusion planner. Which ops share a kernel, why, and what the cost model predicts.

    from fusec.fusion import plan, explain
    p = plan(graph)                 # policy "auto": the best of greedy, postdom and table
    report = explain(p)             # kernels, groups, not_fused, bytes and predicted time
"""

from fusec.fusion.cost import KernelCost, group_cost
from fusec.fusion.expectations import check_expectations
from fusec.fusion.explain import compare, explain, format_compare, format_report
from fusec.fusion.kinds import FUSION_TABLE, verdict
from fusec.fusion.legality import MAX_GROUP_OPS, ContractViolation, GroupShape, analyze, validate_group
from fusec.fusion.machine import MachineModel, load_model, save_model
from fusec.fusion.plan import Group, NotFused, Plan, unfused_plan
from fusec.fusion.planner import POLICIES, plan, prepare

__all__ = [
    "FUSION_TABLE", "MAX_GROUP_OPS", "POLICIES", "ContractViolation", "Group", "GroupShape", "KernelCost",
    "MachineModel", "NotFused", "Plan", "analyze", "check_expectations", "compare", "explain", "format_compare",
    "format_report", "group_cost", "load_model", "plan", "prepare", "save_model", "unfused_plan",
    "validate_group", "verdict",
]
