"""Search strategies: which candidates of a space to measure next, within a budget.

A strategy is asked for batches: `next_batch(remaining, n)` returns up to n schedules from
`remaining` (the candidates not measured yet); the tuner builds a batch in parallel, measures it,
and reports each result back with `observe(schedule, seconds_or_None)`. The default schedule is
always measured first, outside any strategy, so every run can report a speedup.

    exhaustive  every candidate in order; refuses a space larger than the budget
    random      a seeded random sample (the same seed gives the same sample)
    model       a model-guided search. Candidates the analytic roofline model (fusec.tune.model)
                predicts more than PRUNE times slower than its best are pruned as hopeless before
                anything runs. The first batch covers the knob values: in analytic order, each pick
                is the candidate holding the most values not measured yet. From then on a model
                fitted on the measurements (one effect per knob value, on top of the analytic
                prediction; earlier runs of the kernel in the database count too) ranks the rest:
                each pick draws the model from its posterior (Thompson sampling, so a value it is
                unsure of still gets tried), and every other pick is a neighbour (one knob changed)
                of the NEIGHBOURHOOD fastest candidates measured: a local search around the best.
    auto        exhaustive if the space fits the budget, else model
"""

from __future__ import annotations

import random

from fusec.errors import FusecError
from fusec.fusion.machine import MachineModel
from fusec.loops.ir import LoopNest
from fusec.loops.schedule import Schedule
from fusec.tune.model import FittedModel, knob_values

STRATEGIES = ("auto", "exhaustive", "random", "model")
PRUNE = 4.0  # the model strategy drops candidates predicted this much slower than the best prediction
NEIGHBOURHOOD = 2  # the model strategy searches next to this many of the fastest measured candidates


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
        self.rng = random.Random(seed)
        self.tiebreak: dict[Schedule, float] = {}
        self.measured: list[tuple[float, Schedule]] = []  # (seconds, schedule) of this run's correct trials
        self.covered: set = set()  # knob values measured or picked so far

    def start(self, nest, candidates, budget):
        self.model = FittedModel(nest, self.machine)
        for s, seconds in self.history:
            self.model.add(s, seconds)
        for s in candidates:
            self.tiebreak[s] = self.rng.random()
        if candidates:
            best = min(self.model.analytic(s) for s in candidates)
            self.hopeless = {s for s in candidates if self.model.analytic(s) > PRUNE * best}

    def next_batch(self, remaining, n):
        assert self.model is not None
        alive = [s for s in remaining if s not in self.hopeless] or list(remaining)
        for s in alive:
            self.tiebreak.setdefault(s, self.rng.random())
        if not self.model.ready:
            return self._cover(alive, n)
        # each pick from its own draw of the fitted model's posterior (Thompson sampling: a knob value
        # the model is unsure of gets tried while it may still be best), alternately the best-drawn
        # candidate next to one of the fastest measured (one knob changed) and the best-drawn overall
        incumbents = [b for _, b in sorted(self.measured, key=lambda m: m[0])[:NEIGHBOURHOOD]]
        near = {s for s in alive if any(_distance(s, b) == 1 for b in incumbents)}
        picked: list[Schedule] = []
        pool = list(alive)
        while pool and len(picked) < n:
            score = self.model.sample(self.rng)
            local = [s for s in pool if s in near] if len(picked) % 2 == 0 else []
            choice = min(local or pool, key=lambda s: (score(s), self.tiebreak[s]))
            picked.append(choice)
            pool.remove(choice)
        return picked

    def _cover(self, ranked_by: list[Schedule], n: int) -> list[Schedule]:
        """Before the model can be fitted: in analytic order, each pick the candidate that holds the
        most knob values not measured yet, so the first trials see every value of every knob they can."""
        ranked = sorted(ranked_by, key=lambda s: (self.model.analytic(s), self.tiebreak[s]))
        picked: list[Schedule] = []
        covered = set(self.covered)
        while len(picked) < n and len(picked) < len(ranked):
            pos = max(range(len(ranked)), key=lambda k: (ranked[k] not in picked,
                                                          len(set(knob_values(ranked[k])) - covered), -k))
            picked.append(ranked[pos])
            covered |= set(knob_values(ranked[pos]))
        return picked

    def observe(self, schedule, seconds):
        self.covered |= set(knob_values(schedule))
        if seconds is not None and self.model is not None:
            self.model.add(schedule, seconds)
            self.measured.append((seconds, schedule))

    @property
    def pruned(self) -> int:
        return len(self.hopeless)


def _distance(a: Schedule, b: Schedule) -> int:
    """How many knobs two schedules set differently."""
    return sum(x != y for x, y in zip(knob_values(a), knob_values(b))) + abs(len(a.tiles) - len(b.tiles))


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
