"""Who said what about which event, and when: the bench's record of statuses.

paho calls ``on_status`` on its network thread and the publisher calls ``mark_published`` on
the bench thread; both go through one lock, and waiters block on its condition (no polling).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from edgeorder.protocol import State

__all__ = ["PhaseCounts", "StatusTracker"]


@dataclass
class PhaseCounts:
    """How many events of one phase were published, and reached each state (first time)."""

    expected: int
    published: int = 0
    states: Counter[str] = field(default_factory=Counter)

    def reached(self, state: State) -> int:
        return self.states[state.value]


class StatusTracker:
    """Timestamps (``time.monotonic()`` seconds) of publish and of each status per event_id.

    Only the first time an event reaches a state counts (a duplicate delivery re-publishes
    the current status; that is not a new transition). Statuses for unknown event ids
    (retained messages of earlier runs, other devices) are counted as ``foreign`` and ignored.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._phase_of: dict[str, str] = {}
        self._phases: dict[str, PhaseCounts] = {}
        self.published_at: dict[str, float] = {}
        self.state_at: dict[str, dict[str, float]] = {}
        self.order_id: dict[str, str] = {}
        self.reasons: Counter[str] = Counter()
        self.foreign = 0

    def begin_phase(self, name: str, event_ids: Iterable[str]) -> PhaseCounts:
        """Register the events of phase ``name`` before any of them is published."""
        ids = list(event_ids)
        with self._cond:
            counts = PhaseCounts(expected=len(ids))
            self._phases[name] = counts
            for event_id in ids:
                self._phase_of[event_id] = name
                self.state_at[event_id] = {}
            return counts

    def mark_published(self, event_id: str, at: float) -> None:
        with self._cond:
            self.published_at[event_id] = at
            self._phases[self._phase_of[event_id]].published += 1

    def on_status(
        self, event_id: str | None, state: str, order_id: str | None, reason: str | None, at: float
    ) -> None:
        """Record one status message received at monotonic time ``at``."""
        with self._cond:
            phase = self._phase_of.get(event_id) if event_id else None
            if phase is None or event_id is None:
                self.foreign += 1
                return
            seen = self.state_at[event_id]
            if state in seen:
                return
            seen[state] = at
            if order_id is not None and state == State.ORDERED.value:
                self.order_id[event_id] = order_id
            if reason:
                self.reasons[f"{state}: {reason}"] += 1
            counts = self._phases[phase]
            counts.states[state] += 1
            # Wake waiters when a state was reached by every event of the phase (the usual
            # end), not on every status: ~40,000 wake-ups of the bench's main thread per flood
            # cost the machine under test CPU. Anything else is seen at the next tick.
            if counts.states[state] >= counts.expected:
                self._cond.notify_all()

    def counts(self, phase: str) -> PhaseCounts:
        """A snapshot of one phase's counters."""
        with self._cond:
            live = self._phases[phase]
            return PhaseCounts(live.expected, live.published, Counter(live.states))

    def wait(
        self,
        phase: str,
        done: Callable[[PhaseCounts], bool],
        *,
        timeout: float,
        tick: float = 0.25,
        on_tick: Callable[[PhaseCounts], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> bool:
        """Block until ``done(counts)`` holds for ``phase``; False after ``timeout`` seconds.

        Wakes when a state was reached by every event of the phase and at least every ``tick``
        seconds (to call ``on_tick``, the progress bar, and to look at ``done`` again).
        """
        now = clock or time.monotonic
        deadline = now() + timeout
        next_tick = now() + tick
        with self._cond:
            while True:
                live = self._phases[phase]
                if done(live):
                    return True
                left = deadline - now()
                if left <= 0:
                    return False
                self._cond.wait(min(tick, left))
                if on_tick is not None and now() >= next_tick:
                    next_tick = now() + tick
                    on_tick(PhaseCounts(live.expected, live.published, Counter(live.states)))

    def phase_events(self, phase: str) -> list[str]:
        with self._cond:
            return [e for e, p in self._phase_of.items() if p == phase]

    def latencies(self, phase: str, state: State) -> list[float]:
        """Seconds from publish to ``state`` for every event of ``phase`` that got there."""
        with self._cond:
            out = []
            for event_id, p in self._phase_of.items():
                at = self.state_at[event_id].get(state.value)
                sent = self.published_at.get(event_id)
                if p == phase and at is not None and sent is not None:
                    out.append(at - sent)
            return out

    def times(self, phase: str, state: State) -> list[float]:
        """Monotonic times at which events of ``phase`` reached ``state``."""
        with self._cond:
            return [
                self.state_at[e][state.value]
                for e, p in self._phase_of.items()
                if p == phase and state.value in self.state_at[e]
            ]
