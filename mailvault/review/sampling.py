"""The random sample: for each supervised person and period, ``percent`` of the messages
that person is party to, drawn with a generator seeded by the policy's recorded seed, the
person and the period, so the same seed over the same mail draws the same messages.

The size is exact: round(percent x pool / 100), halves rounded up, per person and period.
Over many pools the total is therefore within half a message per pool of percent x pool.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping


def sample_size(pool: int, percent: float) -> int:
    """How many of a pool of ``pool`` messages are drawn."""
    return min(pool, math.floor(pool * percent / 100 + 0.5))


def draw(pool: Iterable[int], percent: float, seed: int, person: str, period: str) -> list[int]:
    """The messages drawn from one person's pool of one period, in id order."""
    ordered = sorted(set(pool))
    size = sample_size(len(ordered), percent)
    if size == 0:
        return []
    generator = random.Random(f"{seed}:{person}:{period}")
    return sorted(generator.sample(ordered, size))


def draw_all(pools: Mapping[tuple[str, str], Iterable[int]], percent: float, seed: int,
             periods: Iterable[str]) -> set[int]:
    """Every message drawn from the pools of these periods."""
    wanted = set(periods)
    chosen: set[int] = set()
    for (person, period), pool in pools.items():
        if period in wanted:
            chosen.update(draw(pool, percent, seed, person, period))
    return chosen
