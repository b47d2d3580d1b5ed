"""Messages whose handling failed for a reason that can pass, waiting to be tried again.

Only a transient failure comes here (``store.writer.is_transient``: a full disk, a locked
database, an I/O error); a deterministic one is rejected by the router at once. The message
stays unacknowledged meanwhile. A broker redelivers an unacknowledged message only on a NEW
connection, so left alone it would wait for a reconnect that may never come, holding one of the
broker's in-flight slots: the router handles it again itself, while its connection lasts.

The cap, and what happens after it, loses nothing:

- attempts 1..``max_attempts``: ``kit.backoff``'s full jitter from ``base_s`` up to ``max_s``;
- then the message is *parked*: still unacknowledged, tried again every ``parked_s`` (so a
  disk an operator frees recovers without a restart, at a cost of one write per parked
  message per interval). If ingest stops, the broker redelivers it to the next session.

``failing()`` is how many messages wait here (parked or not); ``/healthz`` reports it and the
``edgeorder_ingest_messages_failing`` gauge follows it. Logging follows state changes only, one
line each: a message starts failing, is parked, recovers, is given up to a reconnect.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from edgeorder.ingest.mqtt.link import Inbound
from edgeorder.kit.backoff import full_jitter

__all__ = ["Retries", "RetryPolicy"]

log = structlog.get_logger(__name__)

Key = tuple[int, int]  # (connection generation, message id)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how fast a failing message is tried again."""

    base_s: float = 0.1
    max_s: float = 10.0
    max_attempts: int = 8
    """Fast attempts (~25 s in all with the defaults) before the message is parked."""
    parked_s: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Wait before try ``attempt + 1`` (``attempt`` >= 1 failed tries so far)."""
        if attempt >= self.max_attempts:
            return self.parked_s
        return full_jitter(attempt - 1, self.base_s, self.max_s, rng.random)


@dataclass
class _Failing:
    message: Inbound
    attempts: int = 0
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def key(self) -> Key:
        return (self.message.generation, self.message.mid)


class Retries:
    """The failing messages of one router. Runs on the event loop only."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        on_change: Callable[[int, int], None] = lambda failing, parked: None,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._on_change = on_change
        self._rng = rng or random.Random()
        self._failing: dict[Key, _Failing] = {}
        self._closed = False
        self.attempts = 0
        """Retries run so far (every attempt after a message's first)."""

    def failing(self) -> int:
        """Messages whose handling failed and that wait for their next attempt."""
        return len(self._failing)

    def parked(self) -> int:
        return sum(1 for f in self._failing.values() if f.attempts >= self.policy.max_attempts)

    def is_failing(self, message: Inbound) -> bool:
        return (message.generation, message.mid) in self._failing

    def failed(
        self, message: Inbound, error: BaseException, again: Callable[[Inbound], None]
    ) -> None:
        """``message`` failed (transiently): ``again(message)`` after the policy's delay."""
        if self._closed:  # a write that was still running at shutdown: the broker redelivers
            return
        key = (message.generation, message.mid)
        entry = self._failing.get(key)
        if entry is None:
            entry = self._failing[key] = _Failing(message)
            log.warning("router.message_failing", topic=message.topic, exc_info=error)
        entry.attempts += 1
        if entry.attempts == self.policy.max_attempts:
            log.error(
                "router.message_parked",
                topic=message.topic,
                attempts=entry.attempts,
                retry_every_s=self.policy.parked_s,
                exc_info=error,
            )
        delay = self.policy.delay(entry.attempts, self._rng)
        entry.timer = asyncio.get_running_loop().call_later(delay, self._fire, key, again)
        self._changed()

    def _fire(self, key: Key, again: Callable[[Inbound], None]) -> None:
        entry = self._failing.get(key)
        if entry is None:
            return
        entry.timer = None
        self.attempts += 1
        again(entry.message)

    def settled(self, message: Inbound) -> None:
        """``message`` reached its final outcome: no more attempts."""
        entry = self._pop(message)
        if entry is not None:
            log.info("router.message_recovered", topic=message.topic, attempts=entry.attempts)

    def give_up(self, message: Inbound, why: str) -> None:
        """Stop trying ``message`` in this session (it stays unacknowledged, so the broker
        redelivers it on the next connection)."""
        entry = self._pop(message)
        if entry is not None:
            log.info("router.message_left_to_redelivery", topic=message.topic, why=why)

    def _pop(self, message: Inbound) -> _Failing | None:
        entry = self._failing.pop((message.generation, message.mid), None)
        if entry is not None:
            if entry.timer is not None:
                entry.timer.cancel()
            self._changed()
        return entry

    def close(self) -> None:
        """Shutdown: no more attempts (the messages stay unacknowledged: redelivered to the
        next session)."""
        self._closed = True
        for entry in self._failing.values():
            if entry.timer is not None:
                entry.timer.cancel()
        if self._failing:
            log.info("router.failing_at_shutdown", messages=len(self._failing))
        self._failing.clear()
        self._changed()

    def _changed(self) -> None:
        self._on_change(len(self._failing), self.parked())
