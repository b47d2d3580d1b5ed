"""Click classification: a pure state machine over button edges and an injected clock.

Feed it ``pressed(t)``/``released(t)`` with edge times in seconds and call ``tick(t)`` at
``deadline()``; each call returns the clicks it decided. Rules:

- a press held ``long_press_ms`` is ``long`` the moment the hold passes (never also ``single``);
- a second press starting within ``double_window_ms`` of the first release is ``double``;
- otherwise ``single`` once the double window has passed;
- a release followed by a press within ``bounce_ms`` is contact bounce: the same press goes on,
  so bounce never yields a ``double`` (nor an extra ``single``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from edgeorder.protocol.values import Click

__all__ = ["ClickClassifier", "ClickTimings"]


@dataclass(frozen=True)
class ClickTimings:
    bounce_s: float = 0.020
    double_window_s: float = 0.400
    long_press_s: float = 1.500

    @classmethod
    def from_ms(cls, bounce_ms: int, double_window_ms: int, long_press_ms: int) -> ClickTimings:
        return cls(bounce_ms / 1000, double_window_ms / 1000, long_press_ms / 1000)


class _Phase(Enum):
    IDLE = "idle"
    DOWN = "down"  # button held
    UP = "up"  # released, waiting for bounce / a second press


class ClickClassifier:
    """One button's click state machine. Not thread-safe: owned by the agent's worker."""

    def __init__(self, timings: ClickTimings | None = None) -> None:
        self.timings = timings or ClickTimings()
        self._phase = _Phase.IDLE
        self._presses = 0  # presses in the current gesture (1 or 2)
        self._down_at = 0.0
        self._up_at = 0.0
        self._long_fired = False

    @property
    def busy(self) -> bool:
        """True while a gesture is undecided (held, or waiting for its window)."""
        return self._phase is not _Phase.IDLE

    def deadline(self) -> float | None:
        """When ``tick`` must next be called, or None if nothing is pending."""
        t = self.timings
        if self._phase is _Phase.DOWN:
            return None if self._long_fired or self._presses > 1 else self._down_at + t.long_press_s
        if self._phase is _Phase.UP:
            if self._long_fired or self._presses > 1:
                return self._up_at + t.bounce_s
            return self._up_at + max(t.double_window_s, t.bounce_s)
        return None

    def tick(self, now: float) -> list[Click]:
        """Decide what is due at ``now``."""
        due = self.deadline()
        if due is None or now < due:
            return []
        if self._phase is _Phase.DOWN:
            self._long_fired = True
            return [Click.LONG]
        return self._finish()

    def pressed(self, now: float) -> list[Click]:
        """A falling (press) edge at ``now``."""
        out = self.tick(now)
        if self._phase is _Phase.UP:
            if now - self._up_at < self.timings.bounce_s:
                self._phase = _Phase.DOWN  # bounce: the same press goes on
                return out
            self._presses += 1  # within the double window (tick would have ended it otherwise)
        elif self._phase is _Phase.IDLE:
            self._presses, self._long_fired = 1, False
        else:
            return out  # a second press edge while down: ignore
        self._phase, self._down_at = _Phase.DOWN, now
        return out

    def released(self, now: float) -> list[Click]:
        """A rising (release) edge at ``now``."""
        out = self.tick(now)
        if self._phase is _Phase.DOWN:
            self._phase, self._up_at = _Phase.UP, now
        return out

    def _finish(self) -> list[Click]:
        if self._long_fired:
            click: list[Click] = []
        else:
            click = [Click.DOUBLE if self._presses > 1 else Click.SINGLE]
        self._phase, self._presses, self._long_fired = _Phase.IDLE, 0, False
        return click
