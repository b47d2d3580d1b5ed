"""Webhook delivery: one task per subscriber, in order, retried with backoff.

Deliveries are rows of the outbox table, written in the same transaction as the order change.
After such a commit the handler calls ``notify(subscriber ids)``; at start-up the outbox is
scanned once. Each subscriber with pending deliveries gets one worker task that posts them
oldest first; a failure is retried (capped exponential backoff with jitter, persisted, so a
restart keeps the schedule) before the next delivery of that subscriber is tried. Nothing
here ever blocks an API request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from functools import partial

import aiohttp
import structlog

from edgeorder.kit.backoff import full_jitter
from edgeorder.kit.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from edgeorder.ordercore.settings import Settings
from edgeorder.ordercore.store import webhooks as wh
from edgeorder.ordercore.store.db import Reader, Writer
from edgeorder.ordercore.targets import GuardedResolver, refused_target

__all__ = ["Dispatcher"]

log = structlog.get_logger("ordercore.webhooks")


class Dispatcher:
    """Runs one worker per subscriber with pending deliveries."""

    def __init__(
        self,
        settings: Settings,
        reader: Reader,
        writer: Writer,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._reader = reader
        self._writer = writer
        self._clock = clock
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._cursor: dict[int, int] = {}  # last delivery id handled per subscriber
        # Subscribers notified since their worker last looked: a worker that finds nothing
        # and exits while one of these arrives is started again by its done-callback.
        self._dirty: set[int] = set()
        self._session: aiohttp.ClientSession | None = None
        self._stopping = False

    async def start(self) -> None:
        """Open the HTTP client and resume every subscriber with pending deliveries."""
        timeout = aiohttp.ClientTimeout(total=self._settings.webhook_timeout_s)
        connector = aiohttp.TCPConnector(resolver=GuardedResolver())  # names: ordercore.targets
        self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        self.notify(await self._reader.run(wh.pending_subscribers))

    def notify(self, webhook_ids: Iterable[int]) -> None:
        """New deliveries were committed for these subscribers."""
        for webhook_id in webhook_ids:
            self._dirty.add(webhook_id)
            if webhook_id not in self._workers and not self._stopping:
                self._spawn(webhook_id)

    async def stop(self) -> None:
        """Cancel every worker; undelivered deliveries stay in the outbox for the next start."""
        self._stopping = True
        tasks = list(self._workers.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    def _spawn(self, webhook_id: int) -> None:
        task = asyncio.create_task(self._serve(webhook_id), name=f"webhook-{webhook_id}")
        self._workers[webhook_id] = task

        def done(t: asyncio.Task[None]) -> None:
            self._workers.pop(webhook_id, None)
            if t.cancelled():
                return
            if t.exception() is not None:
                log.error("webhook_worker_crashed", webhook=webhook_id, exc_info=t.exception())
                self._dirty.discard(webhook_id)  # no hot loop on a persistent error
            if webhook_id in self._dirty and not self._stopping:
                self._spawn(webhook_id)

        task.add_done_callback(done)

    async def _serve(self, webhook_id: int) -> None:
        self._dirty.discard(webhook_id)
        sub = await self._reader.run(partial(wh.subscriber, webhook_id=webhook_id))
        if sub is None:
            return
        while True:
            self._dirty.discard(webhook_id)
            after = self._cursor.get(webhook_id, 0)
            batch = await self._reader.run(
                partial(wh.pending_deliveries, webhook_id=webhook_id, after_id=after)
            )
            if not batch:
                return
            # Marks are not awaited one by one: the next POST goes out while the writer
            # group-commits them; the in-memory cursor keeps them from being fetched again.
            marks: list[asyncio.Future[None]] = []
            for delivery in batch:
                if await self._deliver_until_done(sub, delivery):
                    mark = partial(wh.mark_delivered, delivery_id=delivery.id, now=self._clock())
                    marks.append(asyncio.ensure_future(self._writer.run(mark)))
                self._cursor[webhook_id] = delivery.id
            await asyncio.gather(*marks)

    async def _deliver_until_done(self, sub: wh.Subscriber, delivery: wh.Delivery) -> bool:
        """POST until a 2xx (True) or until given up / dropped (False, already recorded)."""
        refused = refused_target(sub.url)  # a subscription made before the check existed
        if refused is not None:  # no retry can reach it: given up at once
            log.error("webhook_gave_up", delivery=delivery.id, url=sub.url, error=refused)
            gave_up = partial(wh.mark_failed_attempt, delivery_id=delivery.id, error=refused)
            await self._writer.run(partial(gave_up, next_ts=None))
            return False
        attempts, due = delivery.attempts, delivery.next_attempt_ts
        while True:
            wait = due - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)  # a scheduled retry, not a readiness poll
            error = await self._post(sub, delivery)
            attempts += 1
            if error is None:
                return True
            if attempts >= self._settings.webhook_max_attempts:
                log.error("webhook_gave_up", delivery=delivery.id, url=sub.url, error=error)
                gave_up = partial(wh.mark_failed_attempt, delivery_id=delivery.id, error=error)
                await self._writer.run(partial(gave_up, next_ts=None))
                return False
            delay = full_jitter(
                attempts - 1,
                self._settings.webhook_backoff_base_s,
                self._settings.webhook_backoff_max_s,
            )
            due = self._clock() + delay
            log.warning(
                "webhook_retry", delivery=delivery.id, url=sub.url, error=error, delay=delay
            )
            failed = partial(wh.mark_failed_attempt, delivery_id=delivery.id, error=error)
            if not await self._writer.run(partial(failed, next_ts=due)):
                return False  # dropped: the subscriber was deleted

    async def _post(self, sub: wh.Subscriber, delivery: wh.Delivery) -> str | None:
        """POST one delivery; None on a 2xx answer, else the reason it failed."""
        assert self._session is not None
        body = delivery.body.encode()
        timestamp = int(self._clock())  # this attempt's time: a late retry is not "old"
        headers = {
            "Content-Type": "application/json",
            "X-Edgeorder-Event": delivery.event,
            "X-Edgeorder-Delivery": str(delivery.id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(sub.secret, body, timestamp),
        }
        try:
            async with self._session.post(sub.url, data=body, headers=headers) as resp:
                await resp.read()
                return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"
