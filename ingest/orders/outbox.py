"""The order-outbox worker, and the operator's buffer actions (retry now, discard).

Due rows go to the connector with ``Idempotency-Key = event_id``, many at once (bounded; in
groups of one request where the platform takes several). The answers of one call are recorded
in one writer job (one commit). A transient failure keeps the row (``queued`` once) with capped,
jittered exponential backoff;
a permanent one marks the event ``failed`` with the platform's reason. Rows live in SQLite,
so they survive restarts; the platform's idempotency key makes a retry after a crash safe.

A platform without such a key looks for the order before creating it, but only when an earlier
attempt may have reached it (``OrderRequest.may_exist``): a row attempted before, a row this
worker started and lost track of (a crash of the attempt), or any row older than this worker
(the previous process may have died mid-call).

A platform that only finalizes existing orders (e-vendi, an ``AssignedOrdersConnector``) gets
the order the operator assigned to the device: claimed for the row's event in its own commit
before the call (``ingest.store.evendi_assignments``), closed or failed in the same commit as
the row's outcome; with none assigned the event is ``rejected``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils
import structlog

from edgeorder import protocol as p
from edgeorder.ingest.bus import Bus, Notice
from edgeorder.ingest.connectors.base import (
    AssignedOrdersConnector,
    BatchConnector,
    Connector,
    OrderRequest,
    OrderResult,
    PermanentError,
    PlatformError,
    RejectedError,
    TransientError,
)
from edgeorder.ingest.health import PlatformMonitor
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.mqtt.statuses import StatusPublisher
from edgeorder.ingest.store import evendi_assignments, ledger
from edgeorder.ingest.store.db import atomic
from edgeorder.ingest.store.device_cache import DeviceCache
from edgeorder.ingest.store.ledger import OutboxRow, StatusOut
from edgeorder.ingest.store.writer import Writer

__all__ = [
    "DISCARDED",
    "WORKER",
    "OutboxWorker",
    "buffer_depth",
    "discard",
    "last_history_id",
    "operator_statuses",
    "retry_delay",
    "retry_now",
]

DISCARDED = "discarded by an operator"
WORKER = "outbox-worker"
"""``source`` of the worker's own ``outbox`` notices (which must not wake the worker again)."""

log = structlog.get_logger(__name__)

Outcome = OrderResult | PlatformError
"""What the platform answered for one row: the order, or why not."""


def retry_delay(
    attempts: int, base_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Delay before attempt ``attempts + 1``: jittered in [base, min(max, base * 2^attempts)]."""
    ceiling = min(max_s, base_s * (2 ** min(attempts, 30)))
    return (rng or random).uniform(min(base_s, ceiling), ceiling)


def retry_now(db: sqlite_utils.Database, outbox_id: int, *, actor: str = "system") -> bool:
    """Make a pending row due at once; True if it was pending. Then wake the worker with
    ``bus.publish(Notice("outbox"))``."""
    now = p.format_ts(p.utcnow())
    with atomic(db.conn):
        cursor = db.execute(
            "UPDATE order_outbox SET next_attempt_at = ?, updated_at = ? "
            "WHERE id = ? AND state = 'pending'",
            [now, now, outbox_id],
        )
        if cursor.rowcount:
            _audit(db, actor, "outbox.retry_now", outbox_id, now)
    return bool(cursor.rowcount)


def discard(db: sqlite_utils.Database, outbox_id: int, *, actor: str = "system") -> bool:
    """Give up a pending row: no order will be made; the event becomes ``failed``."""
    now = p.format_ts(p.utcnow())
    with atomic(db.conn):
        row = db.execute(
            "UPDATE order_outbox SET state = 'discarded', updated_at = ? "
            "WHERE id = ? AND state = 'pending' RETURNING inbox_id",
            [now, outbox_id],
        ).fetchone()
        if row is None:
            return False
        event = db.execute(
            "UPDATE inbox SET state = 'failed', reason = ?, updated_at = ? WHERE id = ? "
            "RETURNING device_id, event_id",
            [DISCARDED, now, row[0]],
        ).fetchone()
        evendi_assignments.abandon(
            db.conn,
            event[1],
            f"{DISCARDED}; a closeOrder call had started: check the order on e-vendi, "
            "then requeue it",
        )
        # source 'operator': the running service publishes it to the device (operator_statuses)
        db.execute(
            "INSERT INTO status_history (device_id, event_id, state, reason, source, at) "
            "VALUES (?, ?, 'failed', ?, 'operator', ?)",
            [event[0], event[1], DISCARDED, now],
        )
        _audit(db, actor, "outbox.discard", outbox_id, now)
    return True


def operator_statuses(conn: sqlite3.Connection, after_id: int) -> tuple[int, list[StatusOut]]:
    """Statuses operators caused (discards) after history row ``after_id``, to publish; and the
    last row id seen."""
    rows = conn.execute(
        "SELECT id, device_id, event_id, state, order_id, reason, at FROM status_history "
        "WHERE id > ? AND source = 'operator' ORDER BY id",
        [after_id],
    ).fetchall()
    last = last_history_id(conn)
    outs = [
        StatusOut(
            r[1],
            p.Status(
                event_id=r[2],
                state=p.State(r[3]),
                order_id=r[4],
                reason=r[5],
                ts=datetime.fromisoformat(r[6]),
            ),
            history_ids=(r[0],),
        )
        for r in rows
    ]
    return max(last, after_id), outs


def last_history_id(conn: sqlite3.Connection) -> int:
    """The newest ``status_history`` row id (0 when empty)."""
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM status_history").fetchone()[0])


def _audit(db: sqlite_utils.Database, actor: str, action: str, outbox_id: int, now: str) -> None:
    ids = db.execute(
        "SELECT device_id, event_id FROM order_outbox WHERE id = ?", [outbox_id]
    ).fetchone()
    db.execute(
        "INSERT INTO audit (at, actor, action, device_id, event_id, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [now, actor, action, ids[0], ids[1], str(outbox_id)],
    )


def buffer_depth(conn: sqlite3.Connection) -> int:
    """Pending order-outbox rows."""
    row = conn.execute("SELECT COUNT(*) FROM order_outbox WHERE state = 'pending'").fetchone()
    return int(row[0])


class OutboxWorker:
    """Runs until cancelled; ``wake()`` after new rows or an operator action."""

    def __init__(
        self,
        *,
        writer: Writer,
        read: Callable[[Callable[[sqlite3.Connection], Any]], Any],
        connector: Connector,
        devices: DeviceCache,
        statuses: StatusPublisher,
        metrics: Metrics,
        default_profile: dict[str, Any],
        retry_base_s: float,
        retry_max_s: float,
        concurrency: int = 256,
        clock: Callable[[], datetime] = p.utcnow,
        bus: Bus | None = None,
        platform: PlatformMonitor | None = None,
    ) -> None:
        self._bus = bus
        self._platform = platform  # hears of every answer and transient failure (/healthz)
        self._writer, self._read, self._connector = writer, read, connector
        self._devices, self._statuses, self._metrics = devices, statuses, metrics
        self._profile = default_profile
        self._base, self._max = retry_base_s, retry_max_s
        self._limit, self._clock = concurrency, clock
        # checked once: isinstance against a runtime Protocol walks its attributes each time
        self._batch: BatchConnector | None = (
            connector if isinstance(connector, BatchConnector) and connector.batch_max > 1 else None
        )
        self._assigned = isinstance(connector, AssignedOrdersConnector) and bool(
            connector.finalizes_assigned_orders
        )
        # rows that existed before this worker (the previous process may have died mid-call)
        # and rows whose call started here but was never recorded: both may exist already
        self._older_than: int | None = None
        self._tried: set[int] = set()
        self._wake = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        # rows finished while a dispatch read ran: that read may predate their commit
        self._finished: set[int] = set()
        # rows whose attempt crashed (e.g. the commit after the platform call failed): they
        # stay due in SQL, so without a hold they would be re-sent at once, again and again
        self._held: dict[int, tuple[datetime, int]] = {}  # id -> (not before, crashes)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                timeout = await self._dispatch()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
                # lands as the wake-up completes (the service's shutdown then hung here)
                try:
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        finally:
            await self._cancel_inflight()

    async def _dispatch(self) -> float | None:
        """Start due rows in free slots; seconds until the next future row is due (or None).

        With a ``BatchConnector`` the due ``create`` rows go out in groups of up to its
        ``batch_max`` (one request each); every other row gets a call of its own."""
        now = self._clock()
        free = self._limit - len(self._inflight)
        self._finished.clear()
        first = self._older_than is None
        rows, next_due, depth, last_id = await self._read(
            lambda conn: (
                ledger.due_outbox(conn, now, free + len(self._inflight)),
                _next_due(conn, now),
                buffer_depth(conn),
                _last_outbox_id(conn) if first else None,
            )
        )
        if first:
            self._older_than = last_id
        self._metrics.buffer_depth.set(depth)
        batch_max = self._batch.batch_max if self._batch is not None else 1
        group: list[OutboxRow] = []
        for row in rows:
            if (
                row.id in self._inflight
                or row.id in self._finished
                or self._is_held(row.id, now)
                or len(self._inflight) + len(group) >= self._limit
            ):
                continue
            if batch_max > 1 and row.op == "create":
                group.append(row)
                if len(group) >= batch_max:
                    self._start(group)
                    group = []
            else:
                self._start([row])
        if group:
            self._start(group)
        wakes = [t for t in (next_due, self._next_release(now)) if t is not None]
        if not wakes:
            return None
        return max(0.0, (min(wakes) - self._clock()).total_seconds())

    def _start(self, rows: list[OutboxRow]) -> None:
        task = asyncio.create_task(self._process(rows))
        for row in rows:
            self._inflight[row.id] = task

    def _is_held(self, row_id: int, now: datetime) -> bool:
        held = self._held.get(row_id)
        return held is not None and held[0] > now

    def _next_release(self, now: datetime) -> datetime | None:
        return min((until for until, _ in self._held.values() if until > now), default=None)

    def _hold(self, row: OutboxRow) -> None:
        """The attempt crashed: keep the row back for a growing, jittered delay."""
        crashes = self._held.get(row.id, (self._clock(), 0))[1] + 1
        delay = retry_delay(crashes - 1, self._base, self._max)
        self._held[row.id] = (self._clock() + timedelta(seconds=delay), crashes)
        log.warning(
            "outbox.attempt_held", outbox_id=row.id, crashes=crashes, retry_in_s=round(delay, 3)
        )

    async def _cancel_inflight(self) -> None:
        """Shutdown: abandon calls in flight; their rows stay pending (safe to retry)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _process(self, rows: list[OutboxRow]) -> None:
        try:
            outcomes = await self._call(rows)
            now = self._clock()
            delays = [
                retry_delay(r.attempts, self._base, self._max)
                if isinstance(o, TransientError)
                else 0.0
                for r, o in zip(rows, outcomes, strict=True)
            ]
            settled = await self._writer.run(
                lambda c: [
                    self._settle(c, row, outcome, now, delay)
                    for row, outcome, delay in zip(rows, outcomes, delays, strict=True)
                ]
            )
            for row, outcome, delay, outs in zip(rows, outcomes, delays, settled, strict=True):
                self._held.pop(row.id, None)
                self._tried.discard(row.id)  # recorded: ``attempts`` says it from now on
                self._account(row, outcome, outs, now, delay)
                self._statuses.publish(outs)
                if self._bus is not None:
                    self._bus.publish(
                        Notice(
                            "outbox",
                            row.device_id,
                            {
                                "source": WORKER,
                                "id": row.id,
                                "event_id": row.event_id,
                                "states": [o.status.state.value for o in outs],
                            },
                        )
                    )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "outbox.attempt_crashed",
                outbox_ids=[r.id for r in rows],
                event_ids=[r.event_id for r in rows],
            )
            for row in rows:
                self._hold(row)
        finally:
            for row in rows:
                self._inflight.pop(row.id, None)
                self._finished.add(row.id)
            # Refill in batches: under load a dispatch (a read of the due rows on a thread) per
            # finished call cost more than the call's own bookkeeping. Every row in flight
            # finishes, and the last ones always wake the worker, so nothing due is left behind.
            if len(self._inflight) <= self._limit // 2:
                self._wake.set()

    async def _call(self, rows: list[OutboxRow]) -> list[Outcome]:
        """The platform's answer for each row (an error is an answer too); a call that failed
        as a whole is every row's answer."""
        row = rows[0]
        try:
            if self._assigned and row.op == "create":
                return [await self._finalize_assigned(row)]
            if row.op == "cancel":
                assert row.target_order_id is not None
                return [
                    await self._connector.cancel_order(
                        row.target_order_id, idempotency_key=row.event_id
                    )
                ]
            requests = [self._request(r) for r in rows]  # before they count as tried
            self._tried.update(r.id for r in rows)
            if self._batch is not None:
                return await self._batch.create_orders(requests)
            return [await self._connector.create_order(requests[0])]
        except PlatformError as exc:
            return [exc] * len(rows)

    async def _finalize_assigned(self, row: OutboxRow) -> Outcome:
        """Claim the device's next assigned order for this row's event (its own commit, before
        the call, so a retry knows a call started) and have the platform finalize it."""
        now = self._clock()
        claim = await self._writer.run(
            lambda c: evendi_assignments.claim(
                c, device_id=row.device_id, sku=row.sku, event_id=row.event_id, now=now
            )
        )
        if claim is None:
            return RejectedError(
                f"no pending e-vendi order is assigned to device {row.device_id} "
                f"for {row.sku}: assign one (edgeorder evendi assign)",
                code="no_assigned_order",
            )
        if claim.state != "claimed":  # settled in an earlier commit; nothing left to call
            return PermanentError(f"e-vendi order {claim.order_id} is {claim.state}")
        request = dataclasses.replace(
            self._request(row), order_id=claim.order_id, may_exist=claim.attempts_before > 0
        )
        return await self._connector.create_order(request)

    def _settle(
        self,
        conn: sqlite3.Connection,
        row: OutboxRow,
        outcome: Outcome,
        now: datetime,
        delay: float,
    ) -> list[StatusOut]:
        """Record one row's outcome (writer thread, inside the group's transaction)."""
        if self._assigned and row.op == "create":
            self._settle_assignment(conn, row, outcome, now)
        if isinstance(outcome, RejectedError):
            return ledger.mark_rejected(
                conn, row, reason=outcome.reason, code=outcome.code, now=now
            )
        if isinstance(outcome, TransientError):
            return ledger.mark_transient(
                conn,
                row,
                error=outcome.reason,
                next_attempt_at=now + timedelta(seconds=delay),
                now=now,
            )
        if isinstance(outcome, PlatformError):
            return ledger.mark_failed(conn, row, reason=outcome.reason, now=now)
        if row.op == "cancel":
            return ledger.mark_cancelled(conn, row, now=now)
        status = outcome.platform_status if isinstance(outcome.platform_status, int) else None
        outs = ledger.mark_created(
            conn,
            row,
            order_id=outcome.order_id,
            state=outcome.state,
            platform_status=status,
            amount=outcome.amount,
            currency=outcome.currency,
            now=now,
        )
        if outcome.settled:
            ledger.settle_order(conn, outcome.order_id, now)
        return outs

    @staticmethod
    def _settle_assignment(
        conn: sqlite3.Connection, row: OutboxRow, outcome: Outcome, now: datetime
    ) -> None:
        """The claimed e-vendi order follows the row: closed with the order, failed with a
        refusal (an operator checks and requeues it), kept claimed for a retry."""
        if isinstance(outcome, OrderResult):
            evendi_assignments.mark_closed(conn, row.event_id, now)
        elif isinstance(outcome, PermanentError) and not isinstance(outcome, RejectedError):
            evendi_assignments.mark_failed(conn, row.event_id, outcome.reason, now)

    def _account(
        self, row: OutboxRow, outcome: Outcome, outs: list[StatusOut], now: datetime, delay: float
    ) -> None:
        """Metrics and log lines of one settled row (after its commit)."""
        if self._platform is not None:
            if isinstance(outcome, TransientError):
                self._platform.failed(outcome.reason)
            else:
                self._platform.answered()
        if isinstance(outcome, TransientError):
            self._metrics.platform_retries.inc()
            log.info(
                "outbox.retry",
                outbox_id=row.id,
                event_id=row.event_id,
                reason=outcome.reason,
                attempts=row.attempts + 1,
                retry_in_s=round(delay, 3),
            )
            return
        if isinstance(outcome, RejectedError):
            self._metrics.rejected.labels(reason=outcome.code).inc()
            log.info(
                "outbox.rejected",
                outbox_id=row.id,
                event_id=row.event_id,
                device_id=row.device_id,
                reason=outcome.reason,
            )
            return
        if isinstance(outcome, PlatformError):
            self._metrics.orders_failed.inc()
            log.warning(
                "outbox.refused",
                outbox_id=row.id,
                event_id=row.event_id,
                op=row.op,
                reason=outcome.reason,
                status=outcome.status,
            )
            return
        if row.op != "create" or not outs:
            return  # a cancel, or already recorded (the platform replayed its answer to our key)
        self._metrics.orders_created.inc()
        elapsed = (now - datetime.fromisoformat(row.event_ts)).total_seconds()
        if elapsed >= 0:
            self._metrics.ordered_latency.observe(elapsed)
        # debug, not info: one line per order cost ~4% of ingest's CPU under load; the
        # orders_created metric and the dashboard already count them
        log.debug(
            "outbox.ordered",
            event_id=row.event_id,
            device_id=row.device_id,
            order_id=outcome.order_id,
            attempts=row.attempts + 1,
        )

    def _request(self, row: OutboxRow) -> OrderRequest:
        device = self._devices.get(row.device_id)
        profile = {**self._profile, **(device.profile if device else {})}
        return OrderRequest(
            idempotency_key=row.event_id,
            device_id=row.device_id,
            sku=row.sku or "",
            quantity=row.quantity or 1,
            test=row.test,
            profile=profile,
            may_exist=self._may_exist(row),
            recorded_at=datetime.fromisoformat(row.queued_at) if row.queued_at else None,
        )

    def _may_exist(self, row: OutboxRow) -> bool:
        """Might an earlier call for this row have reached the platform?"""
        return (
            row.attempts > 0
            or self._older_than is None
            or row.id <= self._older_than
            or row.id in self._tried
        )


def _last_outbox_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM order_outbox").fetchone()[0])


def _next_due(conn: sqlite3.Connection, now: datetime) -> datetime | None:
    row = conn.execute(
        "SELECT MIN(next_attempt_at) FROM order_outbox WHERE state = 'pending' "
        "AND next_attempt_at > ?",
        [p.format_ts(now)],
    ).fetchone()
    return datetime.fromisoformat(row[0]) if row and row[0] else None
