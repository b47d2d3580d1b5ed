"""What the device knows of each of its recent presses, as pure state: the latest state heard
for every event it made, whether that state settles the press, and the rule that an event's
state never moves backwards.

A press (any event the device made) goes through three phases:

- *unacknowledged*: stored in the outbox, no status heard yet; re-published with backoff;
- *open*: a status arrived (``accepted``/``queued``) but its outcome is still to come; the
  device asks again with backoff, by re-publishing the same event (ingest answers a repeat
  with the event's current status: ARCHITECTURE.md, exactly-once chain step 2);
- *settled*: the outcome is known (``settles``); the device stops asking.

Statuses are judged by the state's rank (``protocol.State.rank``): one whose rank is not
above the last state heard for its event is stale or a repeat and changes nothing. A broker
restarted from an older snapshot re-delivers old queued statuses, and a re-asked event is
answered again; neither may move the LED backwards.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from enum import Enum

from edgeorder.protocol.device import DeviceStatus
from edgeorder.protocol.values import State

__all__ = ["PressBook", "Verdict", "settles"]


def settles(status: DeviceStatus) -> bool:
    """True when no status the device waits for will follow ``status``.

    From ``ordered`` on, the press's outcome is known (an order exists); later lifecycle
    changes (paid, shipped, delivered, cancelled) still arrive as pushes and are recorded, but
    an order lives for days and asking for it would cost the fleet traffic for no LED change.
    ``throttled``/``rejected``/``failed`` are final. An ``accepted`` that carries a ``reason``
    is ingest saying it recorded the press and will do nothing more with it (``no action
    mapped``). A plain ``accepted`` or ``queued`` leaves the press open.
    """
    if status.state.rank >= State.ORDERED.rank:
        return True
    return status.state is State.ACCEPTED and status.reason is not None


class Verdict(Enum):
    """What a status means for the press it names."""

    ADVANCE = "advance"  # a newer state: record it, show it
    REPEAT = "repeat"  # the state already known (re-sent, or answered again)
    STALE = "stale"  # an older state than one already heard, or a second final one
    UNKNOWN = "unknown"  # not one of this device's recent presses


class PressBook:
    """The latest state (None: no status yet) of every unsettled press and of the last
    ``keep_settled`` settled ones; older settled presses are forgotten (their statuses are
    then ``UNKNOWN``)."""

    def __init__(self, keep_settled: int) -> None:
        self.keep_settled = keep_settled
        self._open: dict[str, State | None] = {}
        self._settled: OrderedDict[str, State | None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open) + len(self._settled)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._open or event_id in self._settled

    def load(self, rows: Iterable[tuple[str, State | None, bool]]) -> None:
        """Rows ``(event_id, state, settled)`` of the outbox, oldest first."""
        for event_id, state, settled in rows:
            self.record(event_id, state, settled=settled)

    def made(self, event_id: str) -> None:
        """A new press, not yet acknowledged."""
        self._open[event_id] = None

    def state(self, event_id: str) -> State | None:
        if event_id in self._open:
            return self._open[event_id]
        return self._settled.get(event_id)

    def is_settled(self, event_id: str) -> bool:
        return event_id in self._settled

    def judge(self, status: DeviceStatus) -> Verdict:
        """What ``status`` means for its press (pure: nothing changes here)."""
        event_id = status.event_id
        if event_id is None or event_id not in self:
            return Verdict.UNKNOWN
        known = self.state(event_id)
        if known is None or status.state.rank > known.rank:
            return Verdict.ADVANCE
        return Verdict.REPEAT if status.state is known else Verdict.STALE

    def record(self, event_id: str, state: State | None, *, settled: bool) -> None:
        """Remember ``state`` for ``event_id`` (the caller judged it an advance)."""
        if not settled:
            self._open[event_id] = state
            return
        self._open.pop(event_id, None)
        self._settled[event_id] = state
        self._settled.move_to_end(event_id)
        while len(self._settled) > self.keep_settled:
            self._settled.popitem(last=False)

    def forget(self, event_id: str) -> None:
        """The outbox dropped the press (overflow): nothing more is known of it."""
        self._open.pop(event_id, None)
        self._settled.pop(event_id, None)
