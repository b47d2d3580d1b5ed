"""Jittered exponential backoff ("full jitter"), pure apart from the injected random source."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays ``min_s, 2*min_s, 4*min_s, ...`` capped at ``max_s``, each scaled by a random
    factor in ``[0.5, 1.0]`` so a fleet that lost its broker does not reconnect in lockstep."""

    def __init__(
        self, min_s: float, max_s: float, *, rand: Callable[[], float] = random.random
    ) -> None:
        self.min_s, self.max_s, self._rand = min_s, max_s, rand
        self.attempts = 0

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the base."""
        base = min(self.max_s, self.min_s * (2 ** min(self.attempts, 32)))
        self.attempts += 1
        return base * (0.5 + 0.5 * self._rand())

    def reset(self) -> None:
        self.attempts = 0
