"""Every press of the device from stored to settled, as pure state: which events to publish
now (new ones until a status answers them, open ones to ask for their outcome), what a status
means for its press, and the bounds on asking (``ask_for_s``, ``ask_max_open``).

The agent's worker does the I/O around it: it records in the outbox what this decides (a new
state, a press given up) before telling the tracker, and publishes what ``run_due`` hands it.
The phases and the rules are described in ``agent.presses`` and ``agent/README.md``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from edgeorder.agent.config import OutboxConfig
from edgeorder.agent.presses import PressBook, Verdict
from edgeorder.agent.republish import RepublishSchedule
from edgeorder.kit.backoff import Backoff
from edgeorder.protocol.device import DeviceStatus
from edgeorder.protocol.values import State, ulid_time

__all__ = ["Due", "PressTracker"]


@dataclass
class Due:
    """What one ``run_due`` did: new events re-published, open presses asked about, and
    open presses past ``ask_for_s`` (given up: the caller records that)."""

    published: int = 0
    asked: int = 0
    expired: list[str] = field(default_factory=list)


class PressTracker:
    """Both republish schedules and the press book of one device."""

    def __init__(
        self,
        config: OutboxConfig,
        *,
        wall: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self._wall = wall
        # floor: the config promises a re-send "every retry_min_s .. retry_max_s", never sooner
        self._unacked = RepublishSchedule(
            lambda: Backoff(config.retry_min_s, config.retry_max_s, rand=rand, floor=True),
            rand=rand,
        )
        self._asks = RepublishSchedule(
            lambda: Backoff(config.ask_min_s, config.ask_max_s, rand=rand, floor=True),
            rand=rand,
        )
        self._book = PressBook(config.keep_settled)

    # -- what there is -------------------------------------------------------------------

    @property
    def unacknowledged(self) -> int:
        """Events no status has answered yet."""
        return len(self._unacked)

    @property
    def open(self) -> int:
        """Presses acknowledged, their outcome still asked for."""
        return len(self._asks)

    def state(self, event_id: str) -> State | None:
        return self._book.state(event_id)

    def is_settled(self, event_id: str) -> bool:
        return self._book.is_settled(event_id)

    def next_at(self) -> float | None:
        times = [t for t in (self._unacked.next_at(), self._asks.next_at()) if t is not None]
        return min(times, default=None)

    # -- changes -------------------------------------------------------------------------

    def load(
        self,
        unsettled: Iterable[tuple[str, bytes, State | None]],
        settled: Iterable[tuple[str, State | None]],
        now: float,
    ) -> None:
        """The outbox's presses at start-up, oldest first: ``(event_id, payload, state)``
        of the unsettled ones (published again, or asked about), ``(event_id, state)`` of
        the settled ones kept."""
        self._book.load((event_id, state, True) for event_id, state in settled)
        for event_id, payload, state in unsettled:
            self._book.record(event_id, state, settled=False)
            if state is None:
                self._unacked.track(event_id, payload, now)
            else:
                self._ask(event_id, payload, now)

    def made(self, event_id: str, payload: bytes, now: float) -> None:
        """A new event, stored: publish it now, and again until a status answers it."""
        self._book.made(event_id)
        self._unacked.track(event_id, payload, now)

    def dropped(self, event_id: str) -> None:
        """The outbox dropped it (overflow): forget it."""
        self._unacked.forget(event_id)
        self._book.forget(event_id)

    def judge(self, status: DeviceStatus) -> Verdict:
        return self._book.judge(status)

    def to_give_up_for(self, event_id: str) -> str | None:
        """The open press to give up (``ask_max_open``) before ``event_id`` may open."""
        oldest = self._asks.oldest()
        if event_id not in self._unacked or oldest is None:
            return None
        return oldest if len(self._asks) >= self.config.ask_max_open else None

    def advance(self, event_id: str, state: State, *, settled: bool, now: float) -> None:
        """A newer ``state`` for the press (``judge`` said ADVANCE; the outbox has it): its
        first status ends its re-publishing, a settling one ends the asks."""
        self._book.record(event_id, state, settled=settled)
        payload = self._unacked.forget(event_id)
        if settled:
            self._asks.forget(event_id)
        elif payload is not None:  # acknowledged, the outcome still to come: now open
            self._ask(event_id, payload, now)

    def give_up(self, event_id: str) -> None:
        """Stop asking for an open press: settled at the last state heard."""
        self._asks.forget(event_id)
        self._book.record(event_id, self._book.state(event_id), settled=True)

    def connected(self, now: float) -> None:
        """After a connect: everything unacknowledged is due at once, and every open press
        soon (spread over ``ask_min_s``): statuses queued for the device may have been lost
        with the broker."""
        self._unacked.all_due(now)
        self._asks.all_due(now, spread_s=self.config.ask_min_s)

    def run_due(self, now: float, send: Callable[[bytes], bool]) -> Due:
        """Hand ``send`` every event due by ``now``: unacknowledged ones, then open presses
        (asking for their outcome by publishing them again)."""
        new = self._unacked.run_due(now, send)
        asked = self._asks.run_due(now, send)
        for event_id in asked.expired:
            self._book.record(event_id, self._book.state(event_id), settled=True)
        return Due(new.sent, asked.sent, asked.expired)

    def _ask(self, event_id: str, payload: bytes, now: float) -> None:
        """Ask about an open press, after a first backoff step, until ``ask_for_s`` after it
        was made (its ULID says when; a Pi without a real-time clock may have stamped it far
        off, so its age is clamped)."""
        ask_for_s = self.config.ask_for_s
        age_s = min(max(0.0, self._wall() - ulid_time(event_id)), ask_for_s)
        self._asks.track(event_id, payload, now, wait=True, until=now + ask_for_s - age_s)
