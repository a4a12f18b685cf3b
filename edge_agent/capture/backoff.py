"""Exponential backoff with jitter for reopening sources.

A dead camera costs no CPU and many cameras don't retry in step.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays min_s, 2*min_s, 4*min_s … capped at max_s, each multiplied by a random factor in [1-jitter, 1+jitter]."""

    def __init__(self, min_s: float, max_s: float, jitter: float = 0.2, rng: random.Random | None = None) -> None:
        if min_s <= 0 or max_s < min_s:
            raise ValueError(f"backoff needs 0 < min_s <= max_s, got min_s={min_s}, max_s={max_s}")
        if not 0 <= jitter < 1:
            raise ValueError(f"backoff jitter must be in [0, 1), got {jitter}")
        self.min_s = min_s
        self.max_s = max_s
        self.jitter = jitter
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failed attempt."""
        base = min(self.max_s, self.min_s * (2.0 ** min(self.attempts, 60)))
        self.attempts += 1
        if self.jitter:
            base *= self._rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return min(base, self.max_s * (1.0 + self.jitter))

    def reset(self) -> None:
        """Call after a success: the next failure waits min_s again."""
        self.attempts = 0
