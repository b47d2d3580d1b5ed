"""The message router: decode, validate, hand to the writer, answer after the commit.

The router never awaits one message's commit before taking the next (that would make every
batch one message long): it submits the write and attaches the answer (status, metrics, ack)
to the write's future, which the writer resolves right after the group commit.

A write that fails (disk full, database locked, a bug) leaves its message unacknowledged, and a
broker redelivers an unacknowledged message only on a NEW connection: left alone it would wait
for a reconnect that may never come, holding one of the broker's in-flight slots. So the router
processes it again after a jittered, capped backoff for as long as its connection lasts (after
a reconnect the broker redelivers it itself, and the inbox dedups).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from edgeorder import protocol as p
from edgeorder.ingest.bus import Bus, Notice
from edgeorder.ingest.domain.devices import Device
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.mqtt.link import Inbound
from edgeorder.ingest.mqtt.statuses import StatusPublisher
from edgeorder.ingest.orders.outbox import retry_delay
from edgeorder.ingest.store import ledger
from edgeorder.ingest.store.device_cache import DeviceCache
from edgeorder.ingest.store.ledger import EventOutcome, StatusOut
from edgeorder.ingest.store.writer import Writer, WriterClosedError
from edgeorder.protocol.codec import peek_event_id

__all__ = ["Router"]

log = structlog.get_logger(__name__)


class Router:
    """Consumes ``inbound`` until cancelled; ``ack(message)`` is called once it is durable."""

    def __init__(
        self,
        *,
        writer: Writer,
        devices: DeviceCache,
        statuses: StatusPublisher,
        metrics: Metrics,
        bus: Bus,
        ack: Callable[[Inbound], None],
        on_outbox: Callable[[], None],
        stale_after_s: float,
        clock: Callable[[], datetime] = p.utcnow,
        is_current: Callable[[Inbound], bool] = lambda message: True,
        retry_base_s: float = 0.1,
        retry_max_s: float = 10.0,
    ) -> None:
        self._writer, self._devices, self._statuses = writer, devices, statuses
        self._metrics, self._bus, self._ack = metrics, bus, ack
        self._on_outbox, self._stale_after_s, self._clock = on_outbox, stale_after_s, clock
        self._is_current = is_current
        self._retry_base_s, self._retry_max_s = retry_base_s, retry_max_s
        self._pending: set[asyncio.Task[None]] = set()
        self._attempts: dict[tuple[int, int], int] = {}  # (generation, mid) -> failed writes
        self._timers: set[asyncio.TimerHandle] = set()
        self.retried = 0
        self._retrying = False  # while re-handling: the message was counted the first time

    async def run(self, inbound: asyncio.Queue[Inbound]) -> None:
        while True:
            message = await inbound.get()
            try:
                self.handle(message)
            except Exception as exc:  # a bug must not stop the stream
                log.exception("router.crashed_on_message", topic=message.topic)
                self._failed(message, exc)

    def close(self) -> None:
        """Shutdown: drop the pending re-tries (those messages stay unacknowledged, so the
        broker redelivers them to the next session)."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # --- acknowledgement and re-tries ------------------------------------------------------

    def _done(self, message: Inbound) -> None:
        """``message`` is on disk (or needs nothing): acknowledge it."""
        self._attempts.pop((message.generation, message.mid), None)
        self._ack(message)

    def _failed(self, message: Inbound, error: BaseException | None) -> None:
        """Its write failed: handle ``message`` again after a backoff (see the module doc)."""
        key = (message.generation, message.mid)
        if message.qos == 0 or not self._is_current(message):
            self._attempts.pop(key, None)  # QoS 0: lossy by contract; else redelivered anyway
            return
        attempts = self._attempts[key] = self._attempts.get(key, 0) + 1
        delay = retry_delay(attempts - 1, self._retry_base_s, self._retry_max_s)
        log.warning(
            "router.write_retry",
            topic=message.topic,
            attempts=attempts,
            retry_in_s=round(delay, 3),
            error=repr(error),
        )
        timer: asyncio.TimerHandle | None = None

        def again() -> None:
            assert timer is not None
            self._timers.discard(timer)
            self._again(message)

        timer = asyncio.get_running_loop().call_later(delay, again)
        self._timers.add(timer)

    def _again(self, message: Inbound) -> None:
        self.retried += 1
        self._retrying = True
        try:
            self.handle(message)
        except WriterClosedError:  # shutting down: the next session gets it
            self._attempts.pop((message.generation, message.mid), None)
        except Exception as exc:
            log.exception("router.crashed_on_message", topic=message.topic)
            self._failed(message, exc)
        finally:
            self._retrying = False

    def handle(self, message: Inbound) -> None:
        """Route one message (never raises for bad input)."""
        try:
            device_id, channel = p.parse_device_topic(message.topic)
        except p.TopicError as exc:
            self._count_received()
            self._reject(message, None, peek_event_id(message.payload), exc.code, exc.detail)
            return
        if channel is p.Channel.EVENTS:
            self._on_event(message, device_id)
        elif channel is p.Channel.PRESENCE:
            self._on_report(message, device_id, p.Presence, _presence_sql)
        elif channel is p.Channel.TELEMETRY:
            self._on_report(message, device_id, p.Telemetry, _telemetry_sql)
        elif channel is p.Channel.CONFIG_REPORTED:
            self._on_report(message, device_id, p.ConfigReported, _config_sql)
        else:  # status/config are ours; a device cannot publish them through the ACL
            self._done(message)

    # --- events ---------------------------------------------------------------------------

    def _count_received(self) -> None:
        if not self._retrying:
            self._metrics.received.inc()

    def _on_event(self, message: Inbound, device_id: str) -> None:
        self._count_received()
        try:
            event = p.decode_event(message.payload, topic_device_id=device_id)
        except p.PayloadError as exc:
            self._reject(message, device_id, peek_event_id(message.payload), exc.code, exc.detail)
            return
        device = self._devices.get(device_id)
        if device is None:  # maybe added by another process: look again, off the hot path
            task = asyncio.create_task(self._event_unknown(message, event))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return
        self._record(message, event, device)

    async def _event_unknown(self, message: Inbound, event: p.Event) -> None:
        try:
            self._record(message, event, await self._devices.lookup(event.device_id))
        except WriterClosedError:  # shutting down: the next session gets it
            return
        except Exception as exc:
            log.exception("router.lookup_failed", device_id=event.device_id)
            self._failed(message, exc)

    def _record(self, message: Inbound, event: p.Event, device: Device | None) -> None:
        now = self._clock()
        stale = self._stale_after_s
        future = self._writer.submit(
            lambda conn: ledger.record_event(conn, event, device, now=now, stale_after_s=stale)
        )
        future.add_done_callback(lambda f: self._recorded(message, event, f))

    def _recorded(
        self, message: Inbound, event: p.Event, future: asyncio.Future[EventOutcome]
    ) -> None:
        if future.cancelled() or future.exception() is not None:
            error = None if future.cancelled() else future.exception()
            log.error(
                "event.write_failed",
                device_id=event.device_id,
                event_id=event.event_id,
                error=repr(error),
            )
            self._failed(message, error)
            return
        outcome = future.result()
        self._statuses.publish([outcome.status])
        self._count(event, outcome)
        self._done(message)
        if outcome.outbox_created:
            self._on_outbox()
        if self._bus.wants("event"):
            status = outcome.status.status
            self._bus.publish(
                Notice(
                    "event",
                    event.device_id,
                    {
                        "event_id": event.event_id,
                        "state": status.state.value,
                        "duplicate": outcome.duplicate,
                    },
                )
            )

    def _count(self, event: p.Event, outcome: EventOutcome) -> None:
        m, status = self._metrics, outcome.status.status
        if outcome.duplicate:
            m.duplicates.inc()
            log.info(
                "event.duplicate",
                device_id=event.device_id,
                event_id=event.event_id,
                state=status.state.value,
            )
        elif outcome.rejection_code is not None:
            m.rejected.labels(outcome.rejection_code).inc()
            log.warning(
                "event.rejected",
                device_id=event.device_id,
                event_id=event.event_id,
                code=outcome.rejection_code,
                reason=status.reason,
            )
            self._bus.publish(
                Notice(
                    "rejection",
                    event.device_id,
                    {"code": outcome.rejection_code, "reason": status.reason},
                )
            )
        else:
            m.accepted.inc()
            if status.state is p.State.THROTTLED:
                m.throttled.inc()
            delay = (status.ts - event.ts).total_seconds()
            if delay >= 0:
                m.accepted_latency.observe(delay)

    # --- undecodable events -----------------------------------------------------------------

    def _reject(
        self, message: Inbound, device_id: str | None, event_id: str | None, code: str, detail: str
    ) -> None:
        now = self._clock()
        if not self._retrying:
            self._metrics.rejected.labels(code).inc()
        log.warning(
            "event.rejected",
            device_id=device_id,
            event_id=event_id,
            code=code,
            reason=detail,
            topic=message.topic,
            size=len(message.payload),
        )
        future = self._writer.submit(
            lambda conn: ledger.record_rejection(conn, device_id, event_id, code, detail, now)
        )
        future.add_done_callback(lambda f: self._rejected(message, device_id, code, detail, f))

    def _rejected(
        self,
        message: Inbound,
        device_id: str | None,
        code: str,
        detail: str,
        future: asyncio.Future[StatusOut | None],
    ) -> None:
        if future.cancelled() or future.exception() is not None:
            self._failed(message, None if future.cancelled() else future.exception())
            return
        out = future.result()
        if out is not None:
            self._statuses.publish([out])
        self._done(message)
        self._bus.publish(Notice("rejection", device_id, {"code": code, "reason": detail}))

    # --- presence, telemetry, config/reported ------------------------------------------------

    def _on_report(
        self,
        message: Inbound,
        device_id: str,
        model: Any,
        sql: Callable[[sqlite3.Connection, str, Any, datetime], None],
    ) -> None:
        try:
            report = p.decode(model, message.payload, max_bytes=p.MAX_EVENT_BYTES)
        except p.PayloadError as exc:
            log.warning(
                "report.invalid",
                device_id=device_id,
                topic=message.topic,
                code=exc.code,
                reason=exc.detail,
            )
            self._done(message)
            return
        if self._devices.get(device_id) is None:
            log.info("report.unknown_device", device_id=device_id, topic=message.topic)
            self._done(message)
            return
        now = self._clock()
        future = self._writer.submit(lambda conn: sql(conn, device_id, report, now))
        future.add_done_callback(lambda f: self._reported(message, device_id, report, f))

    def _reported(
        self, message: Inbound, device_id: str, report: Any, future: asyncio.Future[None]
    ) -> None:
        if future.cancelled() or future.exception() is not None:
            self._failed(message, None if future.cancelled() else future.exception())
            return
        self._done(message)
        kind = (
            "presence"
            if isinstance(report, p.Presence)
            else "telemetry"
            if isinstance(report, p.Telemetry)
            else "device"
        )
        self._bus.publish(Notice(kind, device_id, report.model_dump(mode="json")))


def _presence_sql(
    conn: sqlite3.Connection, device_id: str, report: p.Presence, now: datetime
) -> None:
    conn.execute(
        "INSERT INTO presence (device_id, online, fw, ts, received_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, fw = excluded.fw, "
        "ts = excluded.ts, received_at = excluded.received_at",
        [device_id, int(report.online), report.fw, p.format_ts(report.ts), p.format_ts(now)],
    )


def _telemetry_sql(
    conn: sqlite3.Connection, device_id: str, report: p.Telemetry, now: datetime
) -> None:
    conn.execute(
        "INSERT INTO telemetry (device_id, uptime_s, queue_depth, dropped, fw, extra, "
        "received_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET "
        "uptime_s = excluded.uptime_s, queue_depth = excluded.queue_depth, "
        "dropped = excluded.dropped, fw = excluded.fw, extra = excluded.extra, "
        "received_at = excluded.received_at",
        [
            device_id,
            report.uptime_s,
            report.queue_depth,
            report.dropped,
            report.fw,
            json.dumps(report.model_extra or {}, default=str),
            p.format_ts(now),
        ],
    )


def _config_sql(
    conn: sqlite3.Connection, device_id: str, report: p.ConfigReported, now: datetime
) -> None:
    conn.execute(
        "INSERT INTO config_reported (device_id, version, ts, received_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (device_id) DO UPDATE SET version = excluded.version, ts = excluded.ts, "
        "received_at = excluded.received_at",
        [device_id, report.version, p.format_ts(report.ts), p.format_ts(now)],
    )
