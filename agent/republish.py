"""When to publish each stored event again: a schedule with one backoff per event.

Pure apart from the ``send`` function handed to ``run_due`` and the injected random source:
the worker owns the MQTT link and the clock, this module only decides what is due. The agent
keeps two: events no status has answered yet (re-sent until one does), and open presses
(re-sent, more slowly, to ask for their outcome until it is known). Every publish schedules
the next one with jittered exponential backoff, so a broker that swallowed a publish (or an
ingest that was away) gets it again, ever more rarely, never in lockstep with the fleet; an
entry given a deadline is dropped once that passes (``run_due`` reports it).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from edgeorder.kit.backoff import Backoff

__all__ = ["BUSY_RETRY_S", "DueRun", "RepublishSchedule"]

BUSY_RETRY_S = 1.0
"""When paho refused a publish (its queue is full), try that event again this soon."""


@dataclass
class _Entry:
    payload: bytes
    backoff: Backoff
    due: float
    until: float | None = None


@dataclass
class DueRun:
    """What one ``run_due`` did: publishes made, and entries dropped at their deadline."""

    sent: int = 0
    expired: list[str] = field(default_factory=list)


class RepublishSchedule:
    """Stored events by ``event_id`` and a heap of their due times (stale heap entries, for
    events forgotten or rescheduled since, are skipped when popped)."""

    def __init__(
        self, new_backoff: Callable[[], Backoff], *, rand: Callable[[], float] = random.random
    ) -> None:
        self._new_backoff = new_backoff
        self._rand = rand
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def track(
        self,
        event_id: str,
        payload: bytes,
        now: float,
        *,
        wait: bool = False,
        until: float | None = None,
    ) -> None:
        """Publish ``event_id`` at ``now`` (``wait``: after a first backoff delay) and again
        with backoff until forgotten, or until ``until`` has passed."""
        backoff = self._new_backoff()
        due = now + backoff.next() if wait else now
        self._entries[event_id] = _Entry(payload, backoff, due, until)
        heapq.heappush(self._heap, (due, event_id))

    def forget(self, event_id: str) -> bytes | None:
        """Stop publishing ``event_id``; its payload if it was scheduled, else None."""
        entry = self._entries.pop(event_id, None)
        return None if entry is None else entry.payload

    def oldest(self) -> str | None:
        """The entry tracked longest ago (None when empty)."""
        return next(iter(self._entries), None)

    def all_due(self, now: float, *, spread_s: float = 0.0) -> None:
        """Everything is due again, each at a random time in ``[now, now + spread_s]``, with
        its backoff started afresh (after a connect: what was in flight may be lost; the
        spread keeps a fleet that reconnects at once from asking at once)."""
        for event_id, entry in self._entries.items():
            entry.backoff.reset()
            entry.due = now + spread_s * self._rand()
            heapq.heappush(self._heap, (entry.due, event_id))

    def next_at(self) -> float | None:
        """The earliest due time (None: nothing scheduled)."""
        heap = self._heap
        while heap and self._is_stale(*heap[0]):
            heapq.heappop(heap)  # forgotten or rescheduled since it was pushed
        return heap[0][0] if heap else None

    def _is_stale(self, due: float, event_id: str) -> bool:
        entry = self._entries.get(event_id)
        return entry is None or entry.due != due

    def run_due(self, now: float, send: Callable[[bytes], bool]) -> DueRun:
        """``send`` every event due by ``now`` and schedule its next publish.

        ``send`` returns False when the publish could not be queued: that event is tried again
        after ``BUSY_RETRY_S`` without growing its backoff. An entry due past its ``until`` is
        dropped instead of sent, and listed in the result's ``expired``.
        """
        run = DueRun()
        while self._heap and self._heap[0][0] <= now:
            due, event_id = heapq.heappop(self._heap)
            if self._is_stale(due, event_id):
                continue
            entry = self._entries[event_id]
            if entry.until is not None and now >= entry.until:
                del self._entries[event_id]
                run.expired.append(event_id)
                continue
            if send(entry.payload):
                run.sent += 1
                entry.due = now + entry.backoff.next()
            else:
                entry.due = now + BUSY_RETRY_S
            heapq.heappush(self._heap, (entry.due, event_id))
        return run
