"""The rewrite driver: rules, constant folding, CSE and DCE, applied to a fixpoint.

    result = rewrite(graph)                 # exact + approx rules (the default)
    print(result.graph)                     # a new Graph; the input is not changed
    for step in result.trace: print(step)   # which rule fired where, in which iteration

How it stays fast: rules are indexed by the op at their pattern's root, so a node is only tried
against rules that could match it; and the work is a worklist, not repeated sweeps. Iteration 1
visits every node, consumers before producers ("maximal munch": the whole GELU pattern at its root is
seen before `x ** 3 -> x * x * x` changes a piece of it). When something changes, constant
expressions the rule built are folded at once, and the new nodes and the consumers of the change (up
to the depth of the deepest pattern) go on the list for the next iteration.

Why it stops: each iteration visits a finite list, and there are at most `max_iterations` of them.
If rules keep firing until then (two rules that undo each other), the result says converged=False.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fusec.errors import FusecError
from fusec.ir.graph import Graph, Node
from fusec.ir.printer import format_scalar
from fusec.rewrite.apply import NotApplicable, can_take_place, instantiate, take_place
from fusec.rewrite.match import BITWISE_COMMUTATIVE, Matcher, could_match
from fusec.rewrite.rule import CLASSES, PNamed, POp, Rule

DEFAULT_CLASSES = ("exact", "approx")
DEFAULT_MAX_ITERATIONS = 32

# pseudo-rule names in the trace for the driver's own simplifications
FOLD = "constant-fold"
CSE = "cse"


@dataclass(frozen=True)
class RewriteStep:
    """One change: which rule (or fold/cse) fired at which node, in which iteration, and what became what."""

    rule: str
    node: str
    iteration: int
    before: str
    after: str

    def __str__(self) -> str:
        return f"[{self.iteration}] {self.rule} at {self.node}: {self.before} => {self.after}"

    def to_json(self) -> dict:
        return {"rule": self.rule, "node": self.node, "iteration": self.iteration, "before": self.before, "after": self.after}


@dataclass
class RewriteResult:
    graph: Graph
    trace: list[RewriteStep] = field(default_factory=list)
    iterations: int = 0
    converged: bool = True
    removed: int = 0  # nodes that dead-code elimination removed

    def fired(self) -> dict[str, int]:
        """How often each rule fired, in the order they first fired."""
        counts: dict[str, int] = {}
        for step in self.trace:
            counts[step.rule] = counts.get(step.rule, 0) + 1
        return counts

    def trace_text(self) -> str:
        lines = [str(s) for s in self.trace]
        state = "converged" if self.converged else "stopped at the iteration bound"
        lines.append(f"{len(self.trace)} rewrites in {self.iterations} iterations ({state}); {self.removed} dead nodes removed")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.trace_text()


def _pattern_depth(p: Any) -> int:
    if isinstance(p, PNamed):
        return _pattern_depth(p.pattern)
    if isinstance(p, POp):
        return 1 + max((_pattern_depth(a) for a in p.args), default=0)
    return 0


def check_classes(classes: Iterable[str] | str) -> tuple[str, ...]:
    """The rule classes to enable: an iterable of names, or one comma-separated string."""
    if isinstance(classes, str):
        classes = classes.split(",")
    out = tuple(dict.fromkeys(c.strip() for c in classes if c.strip()))
    for c in out:
        if c not in CLASSES:
            raise FusecError(f"unknown rule class '{c}' (classes: {', '.join(CLASSES)})")
    return out


def _value_key(value: Any) -> tuple:
    """A hashable key that tells -0.0 from 0.0 and makes every nan equal."""
    if isinstance(value, float):
        if math.isnan(value):
            return ("nan",)
        return ("float", value, math.copysign(1.0, value))
    return (type(value).__name__, value)


def _attr_key(attrs: dict[str, Any]) -> tuple:
    return tuple((k, _value_key(v) if isinstance(v, float) else v) for k, v in sorted(attrs.items()))


class _Rewriter:
    def __init__(self, graph: Graph, rules: Sequence[Rule], max_iterations: int):
        self.g = graph
        self.max_iterations = max_iterations
        self.by_op: dict[str, list[Rule]] = defaultdict(list)
        for r in rules:
            self.by_op[r.pattern.op].append(r)
        self.depth = max((_pattern_depth(r.pattern) for r in rules), default=1)
        self.matcher = Matcher(graph)
        self.candidates: dict[tuple, list[Rule]] = {}
        self.trace: list[RewriteStep] = []
        self.cse: dict[tuple, str] = {}
        self.iteration = 0
        self.next: dict[str, None] = {}  # an ordered set: the next iteration's worklist
        self.removed = 0
        self.labels: dict[str, str] = {}  # a temporary's (`%N`) name in the trace, once given
        self.taken: set[str] = set()  # the labels given so far
        self.owners: dict[str, str] = {}  # a temporary -> the named value its chain of first consumers feeds

    # ------------------------------------------------------------------------ the loop

    def run(self) -> tuple[int, bool]:
        # Consumers first: a pattern rooted high in the graph (all of GELU) is seen whole before a
        # rule lower down (x ** 3 -> x * x * x) changes a piece of it.
        work = [n.name for n in reversed(self.g.nodes()) if n.op != "input"]
        while work:
            if self.iteration == self.max_iterations:
                return self.iteration, False
            self.iteration += 1
            self.next = {}
            for name in work:
                if name in self.g.nx:
                    self.visit(name)
            work = list(self.next)
        return self.iteration, True

    def visit(self, name: str) -> None:
        node = self._node(name)
        if node.op == "const":
            return
        if self._fold(node) or self._cse(node):
            return
        for rule in self._candidates(node):
            if self._try_rule(rule, node):
                return

    def _candidates(self, node: Node) -> list[Rule]:
        """The rules whose pattern top fits this node: by its op and its operands' ops, cached."""
        key = (node.op, self.matcher.operand_ops(node.name))
        rules = self.candidates.get(key)
        if rules is None:
            rules = self.candidates[key] = [r for r in self.by_op.get(node.op, ()) if could_match(r, *key)]
        return rules

    # ------------------------------------------------------------------------ the three kinds of change

    def _try_rule(self, rule: Rule, node: Node) -> bool:
        for bindings in self.matcher.matches(rule, node.name):
            try:
                new, created = instantiate(self.g, rule, bindings, node.name)
            except NotApplicable:
                continue
            if new == node.name or not can_take_place(self.g, node.name, new):
                self._discard(created)
                continue
            where, before = self._label(node.name), self._describe(node)
            after = self._describe(self._node(new), set(created)) if new in created else self._label(new)
            survivor = self._replace(node, new, created)
            self.trace.append(RewriteStep(rule.name, where, self.iteration, before, after))
            for c in created:  # fold new constant expressions at once, so the next node up sees a constant
                if c in self.g.nx and c != survivor:
                    if not self._fold(self._node(c)):
                        self._push(c)
            self._push(survivor)
            return True
        return False

    def _fold(self, node: Node) -> bool:
        """An elementwise op whose operands are all constants becomes a constant."""
        g = self.g
        if node.kind != "elementwise" or not node.args or node.type.shape != ():
            return False
        operands = []
        for a in node.args:
            arg = self._node(a)
            if arg.op != "const":
                return False
            operands.append(np.asarray(arg.attrs["value"], dtype=arg.type.dtype.numpy))
        with np.errstate(all="ignore"):  # the interpreter computes nan and inf silently too
            value = np.asarray(node.opdef.numpy(operands, node.attrs)).astype(node.type.dtype.numpy).item()
        try:
            new = g.const(value, node.type.dtype)
        except FusecError:
            return False
        where, before = self._label(node.name), self._describe(node)
        survivor = self._replace(node, new, [new])
        self.trace.append(RewriteStep(FOLD, where, self.iteration, before, format_scalar(value)))
        self._push(survivor)
        return True

    def _cse(self, node: Node) -> bool:
        """A node computing exactly what an earlier node computes is replaced by it.

        Constants are compared by value, not merged: a literal stays inline where it is used.
        """
        if node.op in ("const", "input"):  # two inputs are two different values, whatever their ops say
            return False
        key = self._key_of(node.name)
        other = self.cse.get(key)
        if other is None or other == node.name or other not in self.g.nx or self._key_of(other) != key:
            self.cse[key] = node.name
            return False
        keep, drop = other, node.name
        if drop in self.g.outputs:
            if keep in self.g.outputs or keep in self.g.inputs:
                return False  # two outputs that are equal keep their own names
            keep, drop = drop, keep
        dropped = self._node(drop)
        where, before = self._label(drop), self._describe(dropped)  # before _replace removes them
        survivor = self._replace(dropped, keep)
        self.cse[key] = survivor
        self.trace.append(RewriteStep(CSE, where, self.iteration, before, self._label(survivor)))
        self._push(survivor)
        return True

    def _key_of(self, name: str) -> tuple:
        """What a node computes: its op, its operands (constants by value) and its attributes."""
        node = self._node(name)
        args = tuple(self._arg_key(a) for a in node.args)
        if node.op in BITWISE_COMMUTATIVE:
            args = tuple(sorted(args))
        return (node.op, args, _attr_key(node.attrs))

    def _arg_key(self, name: str) -> tuple:
        node = self._node(name)
        if node.op == "const":
            return ("c", node.type.dtype.name, _value_key(node.attrs["value"]))
        return ("n", name)

    # ------------------------------------------------------------------------ graph bookkeeping

    def _node(self, name: str) -> Node:
        return self.g.nx._node[name]["node"]  # networkx's node dict (the public view is slower)

    def _replace(self, old: Node, new: str, created: list[str] = ()) -> str:
        """Put `new` in old's place, then remove whatever became dead. Returns the surviving name."""
        survivor = take_place(self.g, old.name, new, created)
        self._remove_dead(old.name if old.name in self.g.nx and old.name != survivor else None, old.args)
        for c in self.g.nx.successors(survivor):
            self._push_consumers(c, self.depth)
        return survivor

    def _remove_dead(self, name: str | None, args: tuple[str, ...]) -> None:
        g = self.g
        stack = [name] if name is not None else []
        stack.extend(args)
        while stack:
            n = stack.pop()
            if n not in g.nx or n in g.inputs or n in g.outputs or any(True for _ in g.nx.successors(n)):
                continue
            node_args = self._node(n).args
            g.nx.remove_node(n)
            self.removed += 1
            stack.extend(node_args)

    def _discard(self, created: list[str]) -> None:
        for c in reversed(created):
            if c in self.g.nx and not any(True for _ in self.g.nx.successors(c)) and c not in self.g.outputs:
                self.g.nx.remove_node(c)

    def _push(self, name: str) -> None:
        if name in self.g.nx:
            self.next[name] = None

    def _push_consumers(self, name: str, depth: int) -> None:
        """Queue `name` and its consumers up to `depth` levels: patterns rooted there may now match."""
        frontier, seen = [name], set()
        for _ in range(depth):
            following = []
            for n in frontier:
                if n not in seen:
                    seen.add(n)
                    self.next[n] = None
                    following.extend(self.g.nx.successors(n))
            frontier = following
            if not frontier:
                break

    def _label(self, name: str) -> str:
        """How the trace names a value: the user's name, or for a temporary (`%N`, which the printed
        graph writes inline) a name after the named value it feeds and its op, as the planner names
        temporaries: `v_hat_div` for the division inside `v_hat = v_new / 0.00995`."""
        if not name.startswith("%"):
            return name
        if name not in self.labels:
            owner = self._owner(name)
            op = self._node(name).op
            stem = f"{owner}_{'c' if op == 'const' else op}" if not owner.startswith("%") else op
            label, k = stem, 2
            while label in self.g.nx or label in self.taken:
                label, k = f"{stem}_{k}", k + 1
            self.labels[name] = label
            self.taken.add(label)
        return self.labels[name]

    def _owner(self, name: str) -> str:
        """The named value a temporary's chain of first consumers reaches. Memoised, since walking the
        rest of a long chain for every temporary on it is quadratic; a chain a later rewrite changes
        keeps its first owner, which only affects how the trace names a temporary."""
        chain, owner = [], name
        while owner.startswith("%") and owner not in self.owners and owner not in chain and self.g.consumers(owner):
            chain.append(owner)
            owner = self.g.consumers(owner)[0]
        owner = self.owners.get(owner, owner)
        for t in chain:
            self.owners[t] = owner
        return owner

    def _describe(self, node: Node, inline: set[str] = frozenset(), depth: int = 3) -> str:
        """A node as one line of text, `mul(mul(x, 3.0), 0.5)`: constants, temporaries (to `depth`
        levels) and the `inline` nodes are spelled out; named values are shown by name."""

        def arg(a: str) -> str:
            n = self._node(a)
            if n.op == "const":
                return format_scalar(n.attrs["value"])
            if depth > 1 and n.op != "input" and (a in inline or a.startswith("%")):
                return self._describe(n, inline, depth - 1)
            return self._label(a)

        if node.op == "const":
            return format_scalar(node.attrs["value"])
        attrs = [f"{s.name}={node.attrs[s.name]!r}" for s in node.opdef.attrs if node.attrs[s.name] != s.default]
        return f"{node.op}({', '.join([arg(a) for a in node.args] + attrs)})"


def rewrite(
    graph: Graph,
    classes: Iterable[str] | str = DEFAULT_CLASSES,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    rules: Sequence[Rule] | None = None,
) -> RewriteResult:
    """Rewrite `graph` with the enabled rule classes (and fold, CSE, DCE) until nothing changes.

    classes: which rule classes to use; "unsafe" is off unless named; none at all leaves only
    folding, CSE and DCE. rules: the rules to draw
    from (default: the standard library). Returns a RewriteResult; `graph` itself is not changed.
    """
    classes = check_classes(classes)
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
        raise FusecError(f"max_iterations must be a positive integer, got {max_iterations!r}")
    if rules is None:
        from fusec.rewrite.library import standard_rules

        rules = standard_rules()
    active = [r for r in rules if r.cls in classes]
    g = graph.copy()
    rw = _Rewriter(g, active, max_iterations)
    iterations, converged = rw.run()
    removed = rw.removed + g.dead_code_elimination()
    g.verify()
    return RewriteResult(g, rw.trace, iterations, converged, removed)
