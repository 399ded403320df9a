"""Where the random-graph generator's decisions come from.

The generator asks a `Chooser` for every integer, choice and coin flip. Hypothesis drives it in
property tests (`HypothesisChooser`, which shrinks failures for free); a seeded RNG drives it in
long fuzzing sessions (`RandomChooser`, which records each decision), and `ReplayChooser` replays a
record, shortened or simplified, to shrink a failing graph. Kept apart from the generator because
it knows nothing about graphs.
"""

from __future__ import annotations

import random


class Chooser:
    """Where the generator's random decisions come from."""

    def integer(self, low: int, high: int) -> int:  # inclusive
        raise NotImplementedError

    def choice(self, seq):
        seq = list(seq)
        return seq[self.integer(0, len(seq) - 1)]

    def boolean(self, percent_true: int = 50) -> bool:
        return self.integer(0, 99) < percent_true

    def subset(self, seq, at_least: int = 0) -> list:
        seq = list(seq)
        picked = [x for x in seq if self.boolean(50)]
        while len(picked) < at_least:
            rest = [x for x in seq if x not in picked]
            picked.append(self.choice(rest))
        return [x for x in seq if x in picked]


class HypothesisChooser(Chooser):
    def __init__(self, draw):
        self.draw = draw

    def integer(self, low: int, high: int) -> int:
        from hypothesis import strategies as st

        return self.draw(st.integers(low, high))


class RandomChooser(Chooser):
    """A seeded RNG that records its choices, so a failing graph can be replayed and shrunk."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.record: list[int] = []

    def integer(self, low: int, high: int) -> int:
        v = self.rng.randint(low, high)
        self.record.append(v - low)  # recorded relative to `low`: 0 is always the simplest choice
        return v


class ReplayChooser(Chooser):
    """Replays recorded choices; past the end (or out of range) it takes the simplest one."""

    def __init__(self, record: list[int]):
        self.record = list(record)
        self.i = 0

    def integer(self, low: int, high: int) -> int:
        v = self.record[self.i] if self.i < len(self.record) else 0
        self.i += 1
        return low + min(max(v, 0), high - low)
