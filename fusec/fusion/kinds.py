"""Op kinds and the pairwise fusion table.

Every op in the op table has a kind (fusec.ir.ops.KINDS):

    elementwise  one output element from the same position of each input   add, exp, where
    broadcast    one input element feeds many output elements              broadcast_to, iota
    reduce       many input elements feed one output element               sum, max, mean
    layout       elements move, none is computed                           transpose, reshape, slice
    opaque       a kernel of its own with its own loop structure           matmul

The table says, for a producer kind and a consumer kind, whether the edge between them fuses
"always" (whenever the group contract allows it, the cost model only confirms), "never" (no kernel
shape holds the pair), or by "cost" (legal, but whether it pays depends on the sizes). Every policy
uses the table as its first filter; the table policy also grows its groups by it.
"""

from __future__ import annotations

from fusec.ir.graph import Graph

ALWAYS, COST, NEVER = "always", "cost", "never"

# (producer kind, consumer kind) -> (verdict, why). Rows: producer; columns: consumer.
FUSION_TABLE: dict[tuple[str, str], tuple[str, str]] = {
    ("elementwise", "elementwise"): (ALWAYS, "one pass computes both; the intermediate never reaches memory"),
    ("elementwise", "broadcast"): (COST, "the producer is recomputed at every point it is broadcast to"),
    ("elementwise", "reduce"): (ALWAYS, "a prologue: the reduction consumes values as they are computed"),
    ("elementwise", "layout"): (COST, "legal only where the producer's shape broadcasts to the layout's output"),
    ("elementwise", "opaque"): (NEVER, "a matmul has no prologue: it would recompute its operand K times"),
    ("broadcast", "elementwise"): (ALWAYS, "a broadcast is a load with zero strides"),
    ("broadcast", "broadcast"): (ALWAYS, "two broadcasts compose into one index map"),
    ("broadcast", "reduce"): (NEVER, "a reduce kernel holds elementwise ops only"),
    ("broadcast", "layout"): (COST, "legal only where the shapes line up"),
    ("broadcast", "opaque"): (NEVER, "a matmul has no prologue"),
    ("reduce", "elementwise"): (COST, "an epilogue: legal when it reads the result row by row"),
    ("reduce", "broadcast"): (NEVER, "a reduce kernel holds elementwise ops only"),
    ("reduce", "reduce"): (NEVER, "a reduction of a reduction iterates over a different space"),
    ("reduce", "layout"): (NEVER, "a reduce kernel holds elementwise ops only"),
    ("reduce", "opaque"): (NEVER, "a matmul has no prologue"),
    ("layout", "elementwise"): (ALWAYS, "the layout becomes an index map on the consumer's loads"),
    ("layout", "broadcast"): (COST, "legal only where the shapes line up"),
    ("layout", "reduce"): (NEVER, "a reduce kernel holds elementwise ops only"),
    ("layout", "layout"): (COST, "legal only where the shapes line up"),
    ("layout", "opaque"): (COST, "a transpose or reshape of an operand becomes its strides: BLAS reads it in place"),
    ("opaque", "elementwise"): (ALWAYS, "an epilogue applied to the hot output tile"),
    ("opaque", "broadcast"): (NEVER, "a matmul epilogue holds elementwise ops only"),
    ("opaque", "reduce"): (NEVER, "a matmul epilogue holds elementwise ops only"),
    ("opaque", "layout"): (NEVER, "a matmul epilogue holds elementwise ops only"),
    ("opaque", "opaque"): (NEVER, "a matmul kernel holds exactly one matmul"),
}

# The kind a whole group has when the table policy looks a group up as if it were one op.
GROUP_KIND_AS_OP = {"elementwise": "elementwise", "reduce": "reduce", "matmul": "opaque", "layout": "layout",
                    "opaque": "opaque"}


def verdict(producer_kind: str, consumer_kind: str) -> tuple[str, str]:
    """The table entry for an edge: (always|cost|never, why)."""
    return FUSION_TABLE[(producer_kind, consumer_kind)]


def edge_verdict(graph: Graph, producer: str, consumer: str) -> tuple[str, str]:
    return verdict(graph.node(producer).kind, graph.node(consumer).kind)


def table_markdown() -> str:
    """The table as Markdown, rows = producer kind, columns = consumer kind (for docs and explain)."""
    kinds = ["elementwise", "broadcast", "reduce", "layout", "opaque"]
    lines = ["| producer \\ consumer | " + " | ".join(kinds) + " |", "| --- |" + " --- |" * len(kinds)]
    for p in kinds:
        lines.append(f"| **{p}** | " + " | ".join(FUSION_TABLE[(p, c)][0] for c in kinds) + " |")
    return "\n".join(lines)
