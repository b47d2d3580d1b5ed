"""Threshold crossing with hysteresis and minimum dwell: a pure state machine, injected clock.

With ``direction="below"`` (a level that runs down): the trigger is armed; once readings stay
below ``threshold`` for ``min_dwell_s`` it fires once and disarms. It re-arms only after
readings stay at or above ``threshold + hysteresis`` for ``min_dwell_s`` (a refill). Noise
around the threshold therefore never fires twice. ``direction="above"`` mirrors all of this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["SensorTrigger", "TriggerSettings"]


@dataclass(frozen=True)
class TriggerSettings:
    threshold: float
    hysteresis: float = 0.0
    min_dwell_s: float = 0.0
    direction: Literal["below", "above"] = "below"


class SensorTrigger:
    """Feed ``reading(value, now)``; it returns True exactly when an event should be made."""

    def __init__(self, settings: TriggerSettings) -> None:
        self.settings = settings
        self.armed = True
        self._since: float | None = None  # when readings started to qualify for a change

    def _low(self, value: float) -> bool:
        s = self.settings
        return value < s.threshold if s.direction == "below" else value > s.threshold

    def _refilled(self, value: float) -> bool:
        s = self.settings
        if s.direction == "below":
            return value >= s.threshold + s.hysteresis
        return value <= s.threshold - s.hysteresis

    def reading(self, value: float, now: float) -> bool:
        """One reading at ``now`` (seconds). True if this reading completes a crossing."""
        qualifies = self._low(value) if self.armed else self._refilled(value)
        if not qualifies:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        if now - self._since < self.settings.min_dwell_s:
            return False
        self._since = None
        self.armed = not self.armed
        return not self.armed  # fired when it just disarmed; a re-arm is silent
