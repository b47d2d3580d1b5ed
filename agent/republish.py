"""When to publish each stored event again: a schedule with one backoff per event.

Pure apart from the ``send`` function handed to ``run_due``: the worker owns the MQTT link
and the clock, this module only decides what is due. An event stays here from the moment it is
stored until a status for it arrives (``forget``); every publish schedules the next one with
jittered exponential backoff, so a broker that swallowed a publish (or an ingest that was away)
gets it again, ever more rarely, never in lockstep with the rest of the fleet.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from edgeorder.agent.backoff import Backoff

__all__ = ["BUSY_RETRY_S", "RepublishSchedule"]

BUSY_RETRY_S = 1.0
"""When paho refused a publish (its queue is full), try that event again this soon."""


@dataclass
class _Entry:
    payload: bytes
    backoff: Backoff
    due: float


class RepublishSchedule:
    """Stored events by ``event_id`` and a heap of their due times (stale heap entries, for
    events forgotten or rescheduled since, are skipped when popped)."""

    def __init__(self, new_backoff: Callable[[], Backoff]) -> None:
        self._new_backoff = new_backoff
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def track(self, event_id: str, payload: bytes, due: float) -> None:
        """Publish ``event_id`` at ``due`` (and again with backoff until forgotten)."""
        self._entries[event_id] = _Entry(payload, self._new_backoff(), due)
        heapq.heappush(self._heap, (due, event_id))

    def forget(self, event_id: str) -> bool:
        """Stop publishing ``event_id``; True if it was scheduled."""
        return self._entries.pop(event_id, None) is not None

    def all_due(self, now: float) -> None:
        """Everything is due at ``now`` (after a connect: what was in flight may be lost)."""
        for event_id, entry in self._entries.items():
            entry.due = now
            heapq.heappush(self._heap, (now, event_id))

    def next_at(self) -> float | None:
        """The earliest due time (may be a stale heap entry: waking early is harmless)."""
        return self._heap[0][0] if self._heap else None

    def run_due(self, now: float, send: Callable[[bytes], bool]) -> int:
        """``send`` every event due by ``now`` and schedule its next publish; the number sent.

        ``send`` returns False when the publish could not be queued: that event is tried again
        after ``BUSY_RETRY_S`` without growing its backoff.
        """
        sent = 0
        while self._heap and self._heap[0][0] <= now:
            due, event_id = heapq.heappop(self._heap)
            entry = self._entries.get(event_id)
            if entry is None or entry.due != due:
                continue  # forgotten, or rescheduled since
            if send(entry.payload):
                sent += 1
                entry.due = now + entry.backoff.next()
            else:
                entry.due = now + BUSY_RETRY_S
            heapq.heappush(self._heap, (entry.due, event_id))
        return sent
