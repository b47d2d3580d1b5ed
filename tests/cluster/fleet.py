"""A fleet of simulated devices for the multi-worker runs: many devices' presses through a few
MQTT connections, each press re-sent (same event_id, same bytes) until it has a final status,
as the agent does after a lost answer -- so a press whose worker was killed reaches another.

Statuses are applied as a device applies them (``protocol.State.rank``, as the agent does):
an event's state only moves up in rank; a lower one arriving later (a worker re-publishing the
current state of a duplicate while another moved it on) is counted as ``stale`` and ignored.
paho calls back on its own threads; everything goes through one condition, on which
``wait_final`` blocks (no polling).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from edgeorder.bench.counter import connect_client
from edgeorder.bench.events import PlannedEvent
from edgeorder.bench.load import StatusWatcher
from edgeorder.protocol import State

__all__ = ["Fleet", "Press"]

FINAL = frozenset({State.ORDERED, State.THROTTLED, State.REJECTED, State.FAILED})
"""Where a press of this run ends (the order core never ships: ``ordered`` is the last)."""


@dataclass
class Press:
    planned: PlannedEvent
    sent_at: float = 0.0
    sends: int = 0
    state: State | None = None
    order_id: str | None = None
    seen: list[str] = field(default_factory=list)


class Fleet:
    """``press(e)`` publishes; ``resend_due()`` re-sends what has no final state yet."""

    def __init__(self, host: str, port: int, *, resend_s: float = 2.0) -> None:
        self._resend_s = resend_s
        self._cond = threading.Condition()
        self.presses: dict[str, Press] = {}
        self.stale = 0
        self.foreign = 0
        self.resent = 0
        self._client = connect_client(host, port, f"fleet-{id(self):x}", inflight=200)
        self._watcher = StatusWatcher(host, port, self._on_status)

    def _on_status(
        self, event_id: str | None, state: str, order_id: str | None, _: str | None, at: float
    ) -> None:
        with self._cond:
            press = self.presses.get(event_id or "")
            if press is None:
                self.foreign += 1
                return
            new = State(state)
            press.seen.append(state)
            if press.state is not None and new.rank <= press.state.rank:
                if new.rank < press.state.rank:
                    self.stale += 1
                return
            press.state = new
            if order_id is not None:
                press.order_id = order_id
            self._cond.notify_all()

    def press(self, planned: PlannedEvent) -> None:
        with self._cond:
            press = self.presses.setdefault(planned.event_id, Press(planned))
        self._send(press)

    def _send(self, press: Press) -> None:
        press.sent_at = time.monotonic()
        press.sends += 1
        self._client.publish(press.planned.topic, press.planned.payload, qos=1)

    def resend_due(self) -> int:
        """Re-send every press without a final state whose last send is ``resend_s`` old."""
        now = time.monotonic()
        with self._cond:
            due = [
                p
                for p in self.presses.values()
                if (p.state not in FINAL) and now - p.sent_at >= self._resend_s
            ]
        for press in due:
            self._send(press)
        self.resent += len(due)
        return len(due)

    def unfinished(self) -> list[Press]:
        with self._cond:
            return [p for p in self.presses.values() if p.state not in FINAL]

    def wait_final(self, expected: int, timeout: float, *, resend: bool = True) -> bool:
        """Block until ``expected`` presses have a final state; re-send the others meanwhile."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                done = sum(p.state in FINAL for p in self.presses.values())
                left = deadline - time.monotonic()
                if done >= expected:
                    return True
                if left <= 0:
                    return False
                self._cond.wait(min(left, self._resend_s))
                if resend:
                    self._cond.release()
                    try:
                        self.resend_due()
                    finally:
                        self._cond.acquire()

    def states(self) -> Counter[str]:
        with self._cond:
            return Counter(p.state.value if p.state else "none" for p in self.presses.values())

    def close(self) -> None:
        self._watcher.close()
        self._client.disconnect()
        self._client.loop_stop()
