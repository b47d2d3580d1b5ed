"""What the LED is about, as pure state: the link, the last local press, the event still
awaiting its first status, and the latest status of one of the device's recent events.

The worker feeds it (``pressed``, ``made``, ``link``, ``status``) and asks ``choose(now)`` for
the pattern; driving the LED is the worker's job. Statuses of events older than the last
``RECENT_EVENTS`` only acknowledge them: an answer to a long-forgotten press must not light
the LED.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from edgeorder.protocol.led import Choice, LedInputs, choose_pattern
from edgeorder.protocol.values import State

__all__ = ["RECENT_EVENTS", "LedState"]

RECENT_EVENTS = 64
"""Statuses for these most recent events drive the LED (older retained ones only ack)."""


@dataclass
class LedState:
    """The LED's inputs and its current choice; times are the agent's monotonic seconds."""

    connected: bool = False
    press_at: float | None = None
    awaiting_id: str | None = None
    status: State | None = None
    status_at: float | None = None
    reason: str | None = None
    choice: Choice | None = None
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))

    def inputs(self) -> LedInputs:
        return LedInputs(
            self.connected,
            self.press_at,
            self.awaiting_id is not None,
            self.status,
            self.status_at,
            self.reason,
        )

    def pressed(self, at: float) -> None:
        """A local press: acknowledged on the LED at once."""
        self.press_at = at

    def made(self, event_id: str) -> None:
        """An event was stored: it is recent, and the LED waits for its first status."""
        self.recent.append(event_id)
        self.awaiting_id = event_id

    def link(self, connected: bool) -> None:
        self.connected = connected

    def is_recent(self, event_id: str) -> bool:
        return event_id in self.recent

    def status_for(self, event_id: str, state: State, at: float, reason: str | None = None) -> bool:
        """A status arrived; True if it concerns the LED (a recent event)."""
        if event_id not in self.recent:
            return False
        self.status, self.status_at, self.reason = state, at, reason
        if self.awaiting_id == event_id:
            self.awaiting_id = None
        return True

    def choose(self, now: float) -> Choice:
        """Re-choose the pattern for ``now`` and remember it."""
        self.choice = choose_pattern(self.inputs(), now)
        return self.choice

    @property
    def until(self) -> float | None:
        """When the current choice expires and must be made again (None: on change only)."""
        return self.choice.until if self.choice is not None else None
