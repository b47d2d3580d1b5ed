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
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

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
from edgeorder.ingest.store.buffer import (
    DISCARDED,
    buffer_depth,
    discard,
    last_history_id,
    operator_statuses,
    retry_now,
)
from edgeorder.ingest.store.database import Conn
from edgeorder.ingest.store.device_cache import DeviceCache
from edgeorder.ingest.store.ledger import OutboxRow, StatusOut
from edgeorder.ingest.store.writer import Writer
from edgeorder.kit.backoff import full_jitter

__all__ = [
    "DISCARDED",
    "WORKER",
    "OutboxWorker",
    "buffer_depth",
    "discard",
    "last_history_id",
    "operator_statuses",
    "retry_now",
]

WORKER = "outbox-worker"
"""``source`` of the worker's own ``outbox`` notices (which must not wake the worker again)."""

log = structlog.get_logger(__name__)

Outcome = OrderResult | PlatformError
"""What the platform answered for one row: the order, or why not."""


class OutboxWorker:
    """Runs until cancelled; ``wake()`` after new rows or an operator action.

    Rows are leased before they go to the platform (``ledger.claim_due``, as ``owner`` for
    ``lease_s``): on a ledger that several workers share, no two call the platform for the
    same row at once, and the rows of a killed worker are taken over once its leases ran out.
    ``sweep_s`` bounds how long an idle worker waits before it looks again (rows another worker
    recorded, leases that ran out); None: only wake-ups and due times (a ledger of its own).
    """

    def __init__(
        self,
        *,
        writer: Writer,
        read: Callable[[Callable[[Conn], Any]], Any],
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
        owner: str = "local",
        lease_s: float = 60.0,
        sweep_s: float | None = None,
    ) -> None:
        self._bus = bus
        self._platform = platform  # hears of every answer and transient failure (/healthz)
        self._writer, self._read, self._connector = writer, read, connector
        self._devices, self._statuses, self._metrics = devices, statuses, metrics
        self._profile = default_profile
        self._base, self._max = retry_base_s, retry_max_s
        self._limit, self._clock = concurrency, clock
        self._owner, self._lease_s, self._sweep_s = owner, lease_s, sweep_s
        # checked once: isinstance against a runtime Protocol walks its attributes each time
        self._batch: BatchConnector | None = (
            connector if isinstance(connector, BatchConnector) and connector.batch_max > 1 else None
        )
        self._assigned = isinstance(connector, AssignedOrdersConnector) and bool(
            connector.finalizes_assigned_orders
        )
        self._wake = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        # rows whose attempt crashed (e.g. the commit after the platform call failed): their
        # lease is still this worker's, so without a hold they would be re-sent at once
        self._held: dict[int, tuple[datetime, int]] = {}  # id -> (not before, crashes)
        self._failing = 0  # dispatches in a row that could not reach the database

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                timeout = await self._dispatch_guarded()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
                # lands as the wake-up completes (the service's shutdown then hung here)
                try:
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        finally:
            await self._cancel_inflight()

    async def _dispatch_guarded(self) -> float | None:
        """A dispatch; when the database cannot be reached, the next try after a capped,
        jittered backoff (logged when it starts and when it ends, not each time)."""
        try:
            timeout = await self._dispatch()
        except asyncio.CancelledError:
            raise
        except Exception:
            if self._failing == 0:
                log.exception("outbox.dispatch_failed")
            self._failing += 1
            return full_jitter(self._failing - 1, self._base, self._max)
        if self._failing:
            log.info("outbox.dispatch_recovered", failed=self._failing)
            self._failing = 0
        if self._sweep_s is not None:
            timeout = self._sweep_s if timeout is None else min(timeout, self._sweep_s)
        return timeout

    async def _dispatch(self) -> float | None:
        """Lease due rows for the free slots and start them; seconds until a row next becomes
        due or free of its lease (or None).

        With a ``BatchConnector`` the due ``create`` rows go out in groups of up to its
        ``batch_max`` (one request each); every other row gets a call of its own."""
        now = self._clock()
        free = self._limit - len(self._inflight)
        rows: list[OutboxRow] = []
        if free > 0:
            busy = [*self._inflight, *(i for i in self._held if self._is_held(i, now))]
            rows = await self._writer.run(
                lambda c: ledger.claim_due(c, self._owner, now, self._lease_s, free, busy)
            )
        next_wake, depth = await self._read(
            lambda conn: (ledger.next_wake(conn, now), buffer_depth(conn))
        )
        self._metrics.buffer_depth.set(depth)
        batch_max = self._batch.batch_max if self._batch is not None else 1
        group: list[OutboxRow] = []
        for row in rows:
            if batch_max > 1 and row.op == "create":
                group.append(row)
                if len(group) >= batch_max:
                    self._start(group)
                    group = []
            else:
                self._start([row])
        if group:
            self._start(group)
        wakes = [t for t in (next_wake, self._next_release(now)) if t is not None]
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
        delay = full_jitter(crashes - 1, self._base, self._max)
        self._held[row.id] = (self._clock() + timedelta(seconds=delay), crashes)
        log.warning(
            "outbox.attempt_held", outbox_id=row.id, crashes=crashes, retry_in_s=round(delay, 3)
        )

    async def _cancel_inflight(self) -> None:
        """Shutdown: abandon calls in flight; their rows stay pending (safe to retry: the
        platform's idempotency key, and "may exist" for a row leased before) and their leases
        are given up, so another worker takes them at once, not after ``lease_s``."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            released = await self._writer.run(lambda c: ledger.release_leases(c, self._owner))
        except Exception:  # the database is away: the leases simply run out
            log.exception("outbox.leases_kept")
        else:
            if released:
                log.info("outbox.leases_released", rows=released)

    async def _process(self, rows: list[OutboxRow]) -> None:
        try:
            outcomes = await self._call(rows)
            now = self._clock()
            delays = [
                full_jitter(r.attempts, self._base, self._max)
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
            requests = [self._request(r) for r in rows]
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
            ),
            key=row.device_id,  # two workers never take the same assigned order
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
        conn: Conn,
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
    def _settle_assignment(conn: Conn, row: OutboxRow, outcome: Outcome, now: datetime) -> None:
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

    @staticmethod
    def _may_exist(row: OutboxRow) -> bool:
        """Might an earlier call for this row have reached the platform? When it was attempted
        before, or leased before this lease (a worker, this one or another, may have died or
        crashed mid-call)."""
        return row.attempts > 0 or row.claims > 1
