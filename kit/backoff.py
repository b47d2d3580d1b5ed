"""Capped exponential backoff with full jitter: the one retry-delay formula of every part.

Attempt ``n`` (0-based: the first retry is attempt 0) has a *ceiling*
``min(max_s, base_s * 2**n)``, and its delay is drawn uniformly from ``[0, ceiling]`` ("full
jitter", AWS Architecture Blog, "Exponential Backoff And Jitter"). Full jitter spreads a fleet
that lost its broker (or a batch of rows that failed together) over the whole window, so the
retries do not arrive in waves; "equal jitter" (``ceiling/2 + uniform(0, ceiling/2)``) keeps half
of every delay in lockstep; three of the five copies this replaced computed it (the agent's
while its docstring said "full jitter").

Where ``base_s`` is a promised minimum (the agent re-publishes "every ``retry_min_s`` ..
``retry_max_s``": a re-send sooner than that only duplicates a publish whose answer is on its
way), ``floored_jitter`` draws from ``[base_s, min(max_s, base_s * 2**(n+1))]`` instead: still
jittered over a window that doubles, never below the floor.

Pure: the random source is injected (``rand() -> [0, 1]``), so a test fixes it. Range checks
raise ``ValueError``; the exponent is clamped so a long outage cannot overflow a float.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

__all__ = ["Backoff", "ceiling", "delays", "floored_jitter", "full_jitter"]

Rand = Callable[[], float]
"""A random source with values in ``[0, 1]``; ``random.random`` unless a test injects one."""

_MAX_EXPONENT = 62  # 2**62 * any sane base is past every cap; a larger exponent adds nothing


def ceiling(attempt: int, base_s: float, max_s: float) -> float:
    """The upper bound of attempt ``attempt``'s delay: ``min(max_s, base_s * 2**attempt)``."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, not {attempt}")
    if not 0 < base_s <= max_s:
        raise ValueError(f"need 0 < base_s <= max_s, not base_s={base_s}, max_s={max_s}")
    return min(max_s, base_s * 2 ** min(attempt, _MAX_EXPONENT))


def full_jitter(attempt: int, base_s: float, max_s: float, rand: Rand = random.random) -> float:
    """The delay before retry ``attempt`` (0-based): uniform in ``[0, ceiling(attempt)]``."""
    return ceiling(attempt, base_s, max_s) * rand()


def floored_jitter(attempt: int, base_s: float, max_s: float, rand: Rand = random.random) -> float:
    """The delay before retry ``attempt`` (0-based) when ``base_s`` is a minimum: uniform in
    ``[base_s, ceiling(attempt + 1)]`` (``base_s`` itself once ``base_s == max_s``)."""
    high = ceiling(attempt + 1, base_s, max_s)
    return base_s + (high - base_s) * rand()


def delays(base_s: float, max_s: float, rand: Rand = random.random) -> Iterator[float]:
    """Endless delays ``full_jitter(0), full_jitter(1), ...`` (for a reconnect loop)."""
    attempt = 0
    while True:
        yield full_jitter(attempt, base_s, max_s, rand)
        attempt += 1


class Backoff:
    """The delays of one thing being retried, with a ``reset`` when it succeeded."""

    def __init__(
        self, base_s: float, max_s: float, *, rand: Rand = random.random, floor: bool = False
    ) -> None:
        """``floor``: ``base_s`` is a minimum (``floored_jitter``), else full jitter."""
        ceiling(0, base_s, max_s)  # range check now, not at the first failure
        self.base_s, self.max_s, self._rand = base_s, max_s, rand
        self._draw = floored_jitter if floor else full_jitter
        self.attempts = 0

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling (up to ``max_s``)."""
        delay = self._draw(self.attempts, self.base_s, self.max_s, self._rand)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0
