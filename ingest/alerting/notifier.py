"""Sends the queued alert notifications: once per transition and channel, capped, retried.

Each pass leases the due rows (``store.alerts.claim_notifications``: of several workers, one
takes a row), then per channel looks at how many messages went out in the last period: within
the cap each row is its own message; past it the rest go out as **one summary** message (never
dropped silently); with no room left at all they wait until the period has room. A failed send
is retried with a doubling delay (``alert_notify_retry_s``, at most 10 minutes) up to
``alert_notify_attempts`` times, then given up; every failure is logged with its traceback and
counted in ``edgeorder_alert_notifications_total{channel,outcome}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial

import structlog

from edgeorder.ingest.alerting.channels import Channel
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.store import alerts as store
from edgeorder.ingest.store.reader import Reader
from edgeorder.ingest.store.writer import Writer
from edgeorder.kit import backoff

__all__ = ["MAX_RETRY_S", "Notifier", "plan", "retry_delay"]

log = structlog.get_logger(__name__)

MAX_RETRY_S = 600.0


def plan(due: int, budget: int) -> tuple[int, bool]:
    """(messages to send one by one, whether the rest go as one summary) for ``due`` queued
    messages when ``budget`` more may go out this period; ``(0, False)`` with no budget: wait."""
    if budget <= 0:
        return 0, False
    if due <= budget:
        return due, False
    return budget - 1, True


def retry_delay(attempts: int, base_s: float) -> float:
    """Delay before the next attempt after ``attempts`` failed ones (1-based), doubling up to
    ``MAX_RETRY_S`` (the kit's ceiling, no jitter: a row's retry time is stored, and each row is
    leased to one worker, so there is no herd to spread)."""
    return backoff.ceiling(max(0, attempts - 1), min(base_s, MAX_RETRY_S), MAX_RETRY_S)


class Notifier:
    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        writer: Writer,
        reader: Reader,
        metrics: Metrics,
        owner: str,
        attempts: int,
        retry_s: float,
        max_per_period: int,
        period_s: float,
        lease_s: float,
    ) -> None:
        self.channels = {c.name: c for c in channels}
        self._writer, self._reader, self._metrics = writer, reader, metrics
        self._owner, self._attempts, self._retry_s = owner, attempts, retry_s
        self._max, self._period_s, self._lease_s = max_per_period, period_s, lease_s

    async def run_once(self, now: datetime) -> int:
        """Send what is due; the number of rows handled."""
        if not self.channels:
            return 0
        claimed = await self._writer.run(
            partial(store.claim_notifications, owner=self._owner, now=now, lease_s=self._lease_s)
        )
        for name in sorted({n.channel for n in claimed}):
            rows = [n for n in claimed if n.channel == name]
            channel = self.channels.get(name)
            if channel is None:  # configured when queued, not any more: nowhere to send
                await self._give_up(rows, name, "the channel is not configured")
                continue
            await self._send_channel(channel, rows, now)
        return len(claimed)

    async def _send_channel(
        self, channel: Channel, rows: list[store.Notification], now: datetime
    ) -> None:
        since = now - timedelta(seconds=self._period_s)
        sent = await self._reader(partial(store.sent_since, channel=channel.name, since=since))
        single, summary = plan(len(rows), self._max - sent)
        for n in rows[:single]:
            try:
                await channel.send(n.transition, n.alert)
            except Exception as exc:
                log.exception("alerts.notify_failed", channel=channel.name, alert_id=n.alert["id"])
                await self._failed([n], channel.name, exc, now)
                continue
            await self._writer.run(partial(store.mark_sent, ids=[n.id], now=now))
            self._count(channel.name, "sent")
            log.info(
                "alerts.notified", channel=channel.name, alert_id=n.alert["id"],
                transition=n.transition,
            )  # fmt: skip
        rest = rows[single:]
        if summary:
            await self._summary(channel, rest, now)
        elif rest:  # no room this period: wait until the oldest message of it leaves
            retry_at = now + timedelta(seconds=min(self._period_s, MAX_RETRY_S))
            await self._writer.run(
                partial(store.mark_failed, ids=[n.id for n in rest], error="", retry_at=retry_at,
                        count=False)
            )  # fmt: skip
            self._count(channel.name, "deferred", len(rest))

    async def _summary(
        self, channel: Channel, rows: list[store.Notification], now: datetime
    ) -> None:
        try:
            await channel.send_summary([(n.transition, n.alert) for n in rows])
        except Exception as exc:
            log.exception("alerts.notify_failed", channel=channel.name, summary=len(rows))
            await self._failed(rows, channel.name, exc, now)
            return
        await self._writer.run(partial(store.mark_summarised, ids=[n.id for n in rows], now=now))
        self._count(channel.name, "summarised", len(rows))
        log.info("alerts.notified_summary", channel=channel.name, alerts=len(rows))

    async def _failed(
        self, rows: list[store.Notification], channel: str, exc: Exception, now: datetime
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        retry = [n for n in rows if n.attempts + 1 < self._attempts]
        done = [n for n in rows if n.attempts + 1 >= self._attempts]
        for n in retry:
            at = now + timedelta(seconds=retry_delay(n.attempts + 1, self._retry_s))
            await self._writer.run(partial(store.mark_failed, ids=[n.id], error=error, retry_at=at))
        self._count(channel, "failed", len(retry))
        if done:
            await self._give_up(done, channel, error)

    async def _give_up(self, rows: list[store.Notification], channel: str, error: str) -> None:
        await self._writer.run(
            partial(store.mark_failed, ids=[n.id for n in rows], error=error, retry_at=None)
        )
        self._count(channel, "gave_up", len(rows))
        log.error("alerts.notify_gave_up", channel=channel, ids=[n.id for n in rows], error=error)

    def _count(self, channel: str, outcome: str, n: int = 1) -> None:
        if n:
            self._metrics.alert_notifications.labels(channel, outcome).inc(n)

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
