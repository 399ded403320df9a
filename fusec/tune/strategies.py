"""Search strategies: which candidates of a space to measure next, within a budget.

A strategy is asked for batches: `next_batch(remaining, n)` returns up to n schedules from
`remaining` (the candidates not measured yet); the tuner builds a batch in parallel, measures it,
and reports each result back with `observe(schedule, seconds_or_None)`. The default schedule is
always measured first, outside any strategy, so every run can report a speedup.

    exhaustive  every candidate in order; refuses a space larger than the budget
    random      a seeded random sample (the same seed gives the same sample)
    model       ranked by predicted time: first the analytic roofline model (fusec.tune.model),
                taking the best-predicted candidate of each kind of inner loop and threading
                first; then, once enough measurements exist, a model fitted on them (and on
                earlier runs of the same kernel from the database). Candidates predicted more than PRUNE times
                slower than the best prediction are pruned as hopeless before anything runs.
    auto        exhaustive if the space fits the budget, else model
"""

from __future__ import annotations

import random

from fusec.errors import FusecError
from fusec.fusion.machine import MachineModel
from fusec.loops.ir import LoopNest
from fusec.loops.schedule import Schedule
from fusec.tune.model import FittedModel

STRATEGIES = ("auto", "exhaustive", "random", "model")
PRUNE = 4.0  # the model strategy drops candidates predicted this much slower than the best prediction


class Strategy:
    name = "?"

    def start(self, nest: LoopNest, candidates: list[Schedule], budget: int) -> None:
        """Called once with the whole space (the default excluded) before the first batch."""

    def next_batch(self, remaining: list[Schedule], n: int) -> list[Schedule]:
        raise NotImplementedError

    def observe(self, schedule: Schedule, seconds: float | None) -> None:
        """A measured result (None: the candidate failed)."""

    @property
    def pruned(self) -> int:
        return 0


class Exhaustive(Strategy):
    name = "exhaustive"

    def start(self, nest, candidates, budget):
        if len(candidates) + 1 > budget:
            raise FusecError(
                f"{nest.name}: the space has {len(candidates) + 1} candidates, more than the budget of {budget}; "
                "raise --budget or use --strategy random or model"
            )

    def next_batch(self, remaining, n):
        return remaining[:n]


class RandomSearch(Strategy):
    name = "random"

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)

    def next_batch(self, remaining, n):
        return self.rng.sample(remaining, min(n, len(remaining)))


class ModelGuided(Strategy):
    name = "model"

    def __init__(self, machine: MachineModel | None = None, history: list[tuple[Schedule, float]] = (), seed: int = 0):
        self.machine = machine
        self.history = list(history)
        self.model: FittedModel | None = None
        self.hopeless: set[Schedule] = set()
        self.rng = random.Random(seed)  # breaks ties between equal predictions
        self.tiebreak: dict[Schedule, float] = {}

    def start(self, nest, candidates, budget):
        self.model = FittedModel(nest, self.machine)
        for s, seconds in self.history:
            self.model.add(s, seconds)
        if candidates:
            best = min(self.model.analytic(s) for s in candidates)
            self.hopeless = {s for s in candidates if self.model.analytic(s) > PRUNE * best}

    def next_batch(self, remaining, n):
        assert self.model is not None
        alive = [s for s in remaining if s not in self.hopeless]
        for s in alive:
            self.tiebreak.setdefault(s, self.rng.random())
        ranked = sorted(alive, key=lambda s: (self.model(s), self.tiebreak[s]))
        if self.model.ready:
            return ranked[:n]
        # too few measurements to fit: the best-predicted candidate of each kind of inner loop and
        # threading first, so the fitted model sees every knob that changes the code's character
        # (the analytic model cannot know how busy the cores are, or what a vector width buys)
        picked, kinds = [], set()
        for s in ranked:
            kind = (s.parallel, s.vectorize, s.unroll, s.simdlen, s.stream, s.threads)
            if kind not in kinds:
                kinds.add(kind)
                picked.append(s)
        picked += [s for s in ranked if s not in set(picked)]
        return picked[:n]

    def observe(self, schedule, seconds):
        if seconds is not None and self.model is not None:
            self.model.add(schedule, seconds)

    @property
    def pruned(self) -> int:
        return len(self.hopeless)


def make_strategy(name: str, space_size: int, budget: int, seed: int = 0, machine: MachineModel | None = None,
                  history: list[tuple[Schedule, float]] = ()) -> Strategy:
    """The strategy called `name` ("auto" picks exhaustive when the space fits the budget)."""
    if name == "auto":
        name = "exhaustive" if space_size <= budget else "model"
    if name == "exhaustive":
        return Exhaustive()
    if name == "random":
        return RandomSearch(seed)
    if name == "model":
        return ModelGuided(machine, history, seed)
    raise FusecError(f"unknown strategy {name!r} (expected one of {', '.join(STRATEGIES)})")
