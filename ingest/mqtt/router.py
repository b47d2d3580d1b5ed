"""The message router: decode, validate, hand to the writer, answer after the commit.

The router never awaits one message's commit before taking the next (that would make every
batch one message long): it submits the write and attaches the answer (status, metrics, ack)
to the write's future, which the writer resolves right after the group commit.

Every message, on any channel and whatever its payload, reaches exactly ONE final outcome, is
counted (``edgeorder_ingest_messages{channel,outcome}``) and acknowledged once:

- ``recorded``: written (an event accepted/throttled/..., a presence/telemetry/config report);
- ``duplicate``: an event already recorded (its current status is re-published);
- ``rejected``: bad payload, a business rule said no, or its handling failed deterministically
  (reason ``internal_error``); counted by reason in ``edgeorder_ingest_messages_rejected``,
  logged once, and for an event a ``rejected`` status goes to the device whenever the topic
  names a valid device id -- with ``event_id: null`` when the payload carries no valid ULID,
  so a bad id is never echoed;
- ``ignored``: nothing to do (the empty payload that clears a retained message; our own
  ``status``/``config`` channels);
- ``dropped``: a QoS 0 message (telemetry) whose write failed for a transient reason.

A failure while handling a message is classified (``store.writer.is_transient``). A transient
one (full disk, locked database, I/O error) leaves the message unacknowledged and hands it to
``Retries`` (capped backoff, then parked; ``failing()`` counts them). A deterministic one (bad
data, a bug) will fail the same way on every try: it is logged with its traceback and the
message is rejected as ``internal_error`` and acknowledged -- never retried.

A retained message that ingest rejected for its payload is cleared on the broker (an empty
retained publish on its topic; ingest's ACL may write every device topic): otherwise the
broker would hand the same poison to every new ingest session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, TypeVar

import structlog

from edgeorder import protocol as p
from edgeorder.ingest.bus import Bus, Notice
from edgeorder.ingest.domain import rules
from edgeorder.ingest.domain.devices import Device
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.mqtt.link import Inbound
from edgeorder.ingest.mqtt.retries import Retries, RetryPolicy
from edgeorder.ingest.mqtt.statuses import StatusPublisher
from edgeorder.ingest.store import ledger, reports
from edgeorder.ingest.store.device_cache import DeviceCache
from edgeorder.ingest.store.ledger import EventOutcome, StatusOut
from edgeorder.ingest.store.writer import Writer, WriterClosedError, is_transient
from edgeorder.protocol.codec import peek_event_id

__all__ = [
    "DROPPED",
    "DUPLICATE",
    "IGNORED",
    "INTERNAL_ERROR",
    "RECORDED",
    "REJECTED",
    "Router",
    "channel_of",
]

log = structlog.get_logger(__name__)
T = TypeVar("T")

RECORDED, DUPLICATE, REJECTED, IGNORED, DROPPED = (
    "recorded",
    "duplicate",
    "rejected",
    "ignored",
    "dropped",
)
INTERNAL_ERROR = "internal_error"
REASON_INTERNAL = "internal error: ingest could not process this message"
UNKNOWN_DEVICE = rules.CODES[rules.REASON_UNKNOWN_DEVICE]
_LOG_TOPIC_CHARS = 200  # a topic can be 64 KiB; a log line need not be
_LOG_REASON_CHARS = 500

_REPORTS: dict[p.Channel, Any] = {
    p.Channel.PRESENCE: p.Presence,
    p.Channel.TELEMETRY: p.Telemetry,
    p.Channel.CONFIG_REPORTED: p.ConfigReported,
}
_CHANNELS = frozenset(c.value for c in p.Channel)


def channel_of(topic: str) -> str:
    """The metrics label of ``topic``: its device channel, or ``unknown`` (bounded labels)."""
    prefix = p.TOPIC_ROOT + "/"
    if topic.startswith(prefix):
        suffix = topic[len(prefix) :].partition("/")[2]
        if suffix in _CHANNELS:
            return suffix
    return "unknown"


def _device_of(topic: str) -> str | None:
    """The topic's device id if it is a valid one (the device can then be addressed)."""
    try:
        return p.parse_device_topic(topic)[0]
    except p.TopicError:
        return None


def _error_of(future: asyncio.Future[Any]) -> BaseException | None:
    return asyncio.CancelledError() if future.cancelled() else future.exception()


class Router:
    """Consumes ``inbound`` until cancelled; ``ack(message)`` is called once per message, at
    its final outcome (after the commit, when there is something to write)."""

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
        future_after_s: float = rules.DEFAULT_FUTURE_S,
        clock: Callable[[], datetime] = p.utcnow,
        is_current: Callable[[Inbound], bool] = lambda message: True,
        retry: RetryPolicy | None = None,
        clear_retained: Callable[[str], object] | None = None,
        telemetry_keep_s: float = reports.TELEMETRY_KEEP_S,
    ) -> None:
        self._writer, self._devices, self._statuses = writer, devices, statuses
        self._telemetry_keep_s = telemetry_keep_s
        self._metrics, self._bus, self._ack = metrics, bus, ack
        self._on_outbox, self._clock = on_outbox, clock
        self._stale_after_s, self._future_after_s = stale_after_s, future_after_s
        self._is_current = is_current
        self._clear_retained = clear_retained
        self._retries = Retries(retry, on_change=self._failing_changed)
        self._pending: set[asyncio.Task[None]] = set()
        self._dead: dict[tuple[int, int], tuple[str, str | None]] = {}  # rejecting as internal
        self._dropping = 0  # QoS 0 messages dropped since the last successful write
        self._retrying = False  # while re-handling: the message was counted the first time

    @property
    def retried(self) -> int:
        """Attempts made again after a transient failure, so far."""
        return self._retries.attempts

    def failing(self) -> int:
        """How many messages failed for a transient reason and wait for a retry (still
        unacknowledged). 0 when all is well: the number a health check reports."""
        return self._retries.failing()

    async def run(self, inbound: asyncio.Queue[Inbound]) -> None:
        while True:
            self.handle(await inbound.get())

    def close(self) -> None:
        """Shutdown: drop the pending re-tries (those messages stay unacknowledged, so the
        broker redelivers them to the next session)."""
        self._retries.close()

    def handle(self, message: Inbound) -> None:
        """Route one message to its final outcome (never raises)."""
        self._guarded(message, lambda: self._route(message))

    # --- failures: classify, retry what can pass, reject the rest -------------------------

    def _guarded(self, message: Inbound, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:
            self._failed(message, exc)

    def _failed(self, message: Inbound, error: BaseException, event: p.Event | None = None) -> None:
        """Handle a failure; never raises (a failure of that, e.g. at shutdown, is logged and
        leaves the message unacknowledged: the broker redelivers it to the next session)."""
        try:
            self._classify(message, error, event)
        except Exception:
            log.exception("router.failure_not_handled", topic=_short(message.topic))

    def _classify(self, message: Inbound, error: BaseException, event: p.Event | None) -> None:
        channel = channel_of(message.topic)
        if isinstance(error, WriterClosedError | asyncio.CancelledError):
            self._retries.give_up(message, "shutting down")  # the next session gets it
            return
        if is_transient(error):
            self._metrics.write_failures.labels(channel, "transient").inc()
            if message.qos == 0:
                self._drop(message, channel, error)
            elif not self._is_current(message):
                self._retries.give_up(message, "reconnected")  # redelivered on this one
            else:
                self._retries.failed(message, error, self._again)
            return
        self._metrics.write_failures.labels(channel, "deterministic").inc()
        self._dead_letter(message, channel, error, event)

    def _again(self, message: Inbound) -> None:
        if not self._is_current(message):
            self._retries.give_up(message, "reconnected")
            return
        dead = self._dead.get((message.generation, message.mid))
        self._retrying = True
        try:
            if dead is None:
                self.handle(message)
            else:  # its rejection as internal_error failed transiently: write that again
                self._guarded(
                    message, lambda: self._reject(message, "events", *dead, INTERNAL_ERROR, "")
                )
        finally:
            self._retrying = False

    def _dead_letter(
        self, message: Inbound, channel: str, error: BaseException, event: p.Event | None
    ) -> None:
        """A deterministic failure: the same message would fail the same way again."""
        key = (message.generation, message.mid)
        device_id = _device_of(message.topic)
        if key in self._dead:  # rejecting it failed too: finish without a status
            log.error("router.dead_letter_failed", topic=_short(message.topic), exc_info=error)
            self._finish(message, channel, REJECTED, INTERNAL_ERROR)
            return
        event_id = event.event_id if event is not None else peek_event_id(message.payload)
        if event_id is not None and not p.is_ulid(event_id):  # never build a status on it
            event_id = None
        log.error(
            "router.dead_letter",
            topic=_short(message.topic),
            device_id=device_id,
            event_id=event_id,
            size=len(message.payload),
            exc_info=error,
        )
        if channel == p.Channel.EVENTS.value and device_id is not None:
            self._dead[key] = (device_id, event_id)
            self._reject(message, channel, device_id, event_id, INTERNAL_ERROR, "")
        else:
            self._finish(message, channel, REJECTED, INTERNAL_ERROR)

    def _drop(self, message: Inbound, channel: str, error: BaseException) -> None:
        """QoS 0 is lossy by contract: a transient failure is its final outcome. Logged when
        dropping starts, not per message (telemetry keeps coming while a disk is full)."""
        if self._dropping == 0:
            log.warning("router.qos0_dropping", topic=_short(message.topic), exc_info=error)
        self._dropping += 1
        self._finish(message, channel, DROPPED)

    def _failing_changed(self, failing: int, parked: int) -> None:
        self._metrics.failing.set(failing)
        self._metrics.parked.set(parked)

    # --- the final outcome ------------------------------------------------------------------

    def _finish(
        self, message: Inbound, channel: str, outcome: str, reason: str | None = None
    ) -> None:
        """Count ``message``'s outcome and acknowledge it: called once per message."""
        self._metrics.messages.labels(channel, outcome).inc()
        if outcome == REJECTED:
            self._metrics.messages_rejected.labels(channel, reason or "rejected").inc()
        elif outcome == RECORDED and self._dropping:
            log.info("router.qos0_recovered", dropped=self._dropping)
            self._dropping = 0
        self._dead.pop((message.generation, message.mid), None)
        self._retries.settled(message)
        self._ack(message)

    def _after_commit(self, message: Inbound, step: Callable[[], None]) -> None:
        """What follows a durable write (publish, counters, bus) must not undo its outcome:
        a failure here is logged, and the message is still acknowledged by the caller."""
        try:
            step()
        except Exception:
            log.exception("router.after_commit_failed", topic=_short(message.topic))

    def _when_done(
        self,
        message: Inbound,
        future: asyncio.Future[T],
        then: Callable[[T], None],
        event: p.Event | None = None,
    ) -> None:
        def done(f: asyncio.Future[T]) -> None:
            error = _error_of(f)
            try:
                if error is not None:
                    self._failed(message, error, event)
                else:
                    then(f.result())
            except Exception:  # a bug in the outcome itself: never leave it unanswered
                log.exception("router.outcome_failed", topic=_short(message.topic))

        future.add_done_callback(done)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # --- routing ----------------------------------------------------------------------------

    def _route(self, message: Inbound) -> None:
        try:
            device_id, channel = p.parse_device_topic(message.topic)
        except p.TopicError as exc:
            label = channel_of(message.topic)
            event_id = None
            if label == p.Channel.EVENTS.value:
                self._count_received()
                event_id = peek_event_id(message.payload)
            self._reject(message, label, None, event_id, exc.code, exc.detail)
            return
        if channel is p.Channel.EVENTS:
            self._on_event(message, device_id)
        elif channel in _REPORTS:
            self._on_report(message, device_id, channel)
        else:  # status/config are ours; a device cannot publish them through the ACL
            self._finish(message, channel.value, IGNORED)

    # --- events ---------------------------------------------------------------------------

    def _count_received(self) -> None:
        if not self._retrying:
            self._metrics.received.inc()

    def _on_event(self, message: Inbound, device_id: str) -> None:
        self._count_received()
        if not message.payload:  # a retained event cleared (by us, or by its device): no event
            self._finish(message, p.Channel.EVENTS.value, IGNORED)
            return
        try:
            event = p.decode_event(message.payload, topic_device_id=device_id)
        except p.PayloadError as exc:
            event_id = peek_event_id(message.payload)
            self._reject(message, "events", device_id, event_id, exc.code, exc.detail)
            return
        device = self._devices.get(device_id)
        if device is None:  # maybe added by another process: look again, off the hot path
            self._spawn(self._event_unknown(message, event))
            return
        self._record(message, event, device)

    async def _event_unknown(self, message: Inbound, event: p.Event) -> None:
        try:
            device = await self._devices.lookup(event.device_id)
            self._record(message, event, device)
        except Exception as exc:
            self._failed(message, exc, event)

    def _record(self, message: Inbound, event: p.Event, device: Device | None) -> None:
        now = self._clock()
        stale, future_s = self._stale_after_s, self._future_after_s
        future = self._writer.submit(
            lambda conn: ledger.record_event(
                conn, event, device, now=now, stale_after_s=stale, future_after_s=future_s
            ),
            key=event.device_id,  # a shared database locks the device for the throttle
        )
        self._when_done(message, future, lambda out: self._recorded(message, event, out), event)

    def _recorded(self, message: Inbound, event: p.Event, outcome: EventOutcome) -> None:
        self._after_commit(message, lambda: self._answer(event, outcome))
        if outcome.duplicate:
            self._finish(message, "events", DUPLICATE)
        elif outcome.rejection_code is not None:
            self._finish(message, "events", REJECTED, outcome.rejection_code)
        else:
            self._finish(message, "events", RECORDED)
        if outcome.outbox_created:
            self._on_outbox()

    def _answer(self, event: p.Event, outcome: EventOutcome) -> None:
        self._statuses.publish([outcome.status])
        self._count(event, outcome)
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
            reason = outcome.rejection_reason or status.reason
            log.warning(
                "event.rejected",
                device_id=event.device_id,
                event_id=event.event_id,
                code=outcome.rejection_code,
                reason=reason,
            )
            self._bus.publish(
                Notice(
                    "rejection", event.device_id, {"code": outcome.rejection_code, "reason": reason}
                )
            )
        else:
            m.accepted.inc()
            if status.state is p.State.THROTTLED:
                m.throttled.inc()
            delay = (status.ts - event.ts).total_seconds()
            if delay >= 0:
                m.accepted_latency.observe(delay)

    # --- rejections before the ledger ---------------------------------------------------------

    def _reject(
        self,
        message: Inbound,
        channel: str,
        device_id: str | None,
        event_id: str | None,
        code: str,
        detail: str,
    ) -> None:
        """Reject ``message`` (undecodable, bad topic, unknown device, internal error). An
        event's rejection is recorded (``rejections`` + a status where the device can be
        addressed); a report's is only counted and logged."""
        if code == INTERNAL_ERROR:
            detail = REASON_INTERNAL
        if channel != p.Channel.EVENTS.value:
            self._rejected(message, channel, device_id, None, code, detail, None)
            return
        now = self._clock()
        future = self._writer.submit(
            lambda conn: ledger.record_rejection(conn, device_id, event_id, code, detail, now)
        )
        self._when_done(
            message,
            future,
            lambda out: self._rejected(message, channel, device_id, event_id, code, detail, out),
        )

    def _rejected(
        self,
        message: Inbound,
        channel: str,
        device_id: str | None,
        event_id: str | None,
        code: str,
        detail: str,
        out: StatusOut | None,
    ) -> None:
        if code != INTERNAL_ERROR:  # router.dead_letter said it already, with its traceback
            self._log_rejection(message, channel, device_id, event_id, code, detail)
        if channel == p.Channel.EVENTS.value:
            self._after_commit(
                message, lambda: self._answer_rejection(device_id, code, detail, out)
            )
        if message.retain and device_id is not None and code != UNKNOWN_DEVICE:
            self._after_commit(message, lambda: self._clear(message, channel))
        self._finish(message, channel, REJECTED, code)

    @staticmethod
    def _log_rejection(
        message: Inbound,
        channel: str,
        device_id: str | None,
        event_id: str | None,
        code: str,
        detail: str,
    ) -> None:
        log.warning(
            "event.rejected" if channel == p.Channel.EVENTS.value else "report.rejected",
            device_id=device_id,
            event_id=event_id,
            code=code,
            reason=detail[:_LOG_REASON_CHARS],
            topic=_short(message.topic),
            size=len(message.payload),
            retained=message.retain,
        )

    def _answer_rejection(
        self, device_id: str | None, code: str, detail: str, out: StatusOut | None
    ) -> None:
        self._metrics.rejected.labels(code).inc()
        if out is not None:
            self._statuses.publish([out])
        self._bus.publish(Notice("rejection", device_id, {"code": code, "reason": detail}))

    def _clear(self, message: Inbound, channel: str) -> None:
        """The broker would hand this retained poison to every new session: clear it."""
        if self._clear_retained is None:
            return
        self._clear_retained(message.topic)
        self._metrics.retained_cleared.labels(channel).inc()
        log.info("router.retained_cleared", topic=_short(message.topic))

    # --- presence, telemetry, config/reported ------------------------------------------------

    def _on_report(self, message: Inbound, device_id: str, channel: p.Channel) -> None:
        if not message.payload:  # a retained report was cleared (by us, or by its device)
            self._finish(message, channel.value, IGNORED)
            return
        try:
            report = p.decode(_REPORTS[channel], message.payload, max_bytes=p.MAX_EVENT_BYTES)
        except p.PayloadError as exc:
            self._reject(message, channel.value, device_id, None, exc.code, exc.detail)
            return
        if self._devices.get(device_id) is None:  # maybe just added: look again, off the path
            self._spawn(self._report_unknown(message, device_id, channel, report))
            return
        self._write_report(message, device_id, channel, report)

    async def _report_unknown(
        self, message: Inbound, device_id: str, channel: p.Channel, report: Any
    ) -> None:
        try:
            if await self._devices.lookup(device_id) is None:
                reason = rules.REASON_UNKNOWN_DEVICE
                self._reject(message, channel.value, device_id, None, UNKNOWN_DEVICE, reason)
            else:
                self._write_report(message, device_id, channel, report)
        except Exception as exc:
            self._failed(message, exc)

    def _write_report(
        self, message: Inbound, device_id: str, channel: p.Channel, report: Any
    ) -> None:
        now = self._clock()
        future = self._writer.submit(
            lambda conn: reports.record(
                conn, channel, device_id, report, now, telemetry_keep_s=self._telemetry_keep_s
            ),
            key=device_id,  # workers' batches lock the device's report rows in one order
        )
        self._when_done(
            message, future, lambda _: self._reported(message, device_id, channel, report)
        )

    def _reported(self, message: Inbound, device_id: str, channel: p.Channel, report: Any) -> None:
        kind = {p.Channel.PRESENCE: "presence", p.Channel.TELEMETRY: "telemetry"}.get(
            channel, "device"
        )
        self._after_commit(
            message,
            lambda: self._bus.publish(Notice(kind, device_id, report.model_dump(mode="json"))),
        )
        self._finish(message, channel.value, RECORDED)


def _short(topic: str) -> str:
    return topic if len(topic) <= _LOG_TOPIC_CHARS else topic[:_LOG_TOPIC_CHARS] + "..."
