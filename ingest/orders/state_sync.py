"""Order status changes from the platform: signed webhooks, and a polling fallback.

Two webhook routes: ``/webhooks/ordercore`` (the built-in order core, signed with ingest's own
secret, the new state in the body) and ``/webhooks/{platform}`` for a ``WebhookConnector``
(Nuvemshop: signed with the app's secret, the body names the order, whose state is read from
the platform). Every delivery is verified first; a forged or malformed one is refused,
logged and counted (``edgeorder_ingest_webhooks_total{platform,outcome}``).

The order core's delivery is applied only with ``X-Edgeorder-Timestamp`` (unix seconds) within
``tolerance_s`` of now and ``X-Edgeorder-Signature: sha256=<hex HMAC-SHA256(secret,
"<timestamp>." + body)>`` (``kit.signing``); otherwise it is refused with 401 and the
reason (``unsigned``, ``bad_timestamp``, ``stale``, ``bad_signature``) as its outcome.

Everything ends in ``ledger.apply_order_state``, which only ever moves an order forward, so a
late or repeated delivery (webhook after poll, retried webhook) changes nothing; deliveries for
one order that arrive while its state is being read share that one read.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from edgeorder import protocol as p
from edgeorder.ingest.connectors.base import (
    Connector,
    PlatformError,
    WebhookConnector,
    WebhookRejectedError,
)
from edgeorder.ingest.connectors.ordercore import state_for_code
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.mqtt.statuses import StatusPublisher
from edgeorder.ingest.store import ledger
from edgeorder.ingest.store.database import Conn
from edgeorder.ingest.store.ledger import StatusOut
from edgeorder.ingest.store.writer import Writer
from edgeorder.kit import backoff, signing
from edgeorder.kit.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = [
    "OrderStateSync",
    "parse_webhook",
    "refusal",
    "register_platform_webhooks",
    "register_webhook",
]

log = structlog.get_logger(__name__)


def refusal(
    secret: str,
    body: bytes,
    signature_header: str | None,
    timestamp_header: str | None,
    *,
    now: float,
    tolerance_s: float,
) -> str | None:
    """Why a webhook must be refused (``unsigned``, ``bad_timestamp``, ``stale``,
    ``bad_signature``, ``no_secret``), or None when it is signed by ``secret`` within
    ``tolerance_s`` seconds of ``now`` (either way: a clock ahead is as suspect as one behind).
    """
    if not secret:
        return "no_secret"  # no secret, no trust
    if not signature_header or not timestamp_header:
        return "unsigned"
    if (
        not timestamp_header.isascii()
        or not timestamp_header.isdigit()
        or len(timestamp_header) > 12
    ):
        return "bad_timestamp"
    timestamp = int(timestamp_header)
    if abs(now - timestamp) > tolerance_s:
        return "stale"
    if not signing.verify(secret, body, signature_header, timestamp):
        return "bad_signature"
    return None


def parse_webhook(body: bytes) -> tuple[str, p.State, int] | None:
    """``(order_id, state, status_code)`` from an order-core webhook body, or None if the body
    is not an order event we understand."""
    try:
        data = json.loads(body)
        order = data["Order"]
        code = int(order["Status"]["Code"])
        order_id = str(order["Id"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    state = state_for_code(code)
    return None if state is None else (order_id, state, code)


class OrderStateSync:
    """Applies platform order states; hosts the webhook handler and the poller."""

    def __init__(
        self,
        *,
        writer: Writer,
        read: Callable[[Callable[[Conn], Any]], Any],
        connector: Connector,
        statuses: StatusPublisher,
        secret: str,
        poll_interval_s: float,
        clock: Callable[[], datetime] = p.utcnow,
        metrics: Metrics | None = None,
        tolerance_s: float = 300.0,
        epoch: Callable[[], float] = time.time,
    ) -> None:
        self._writer, self._read, self._connector = writer, read, connector
        self._statuses, self._secret = statuses, secret
        self._interval, self._clock = poll_interval_s, clock
        self._metrics = metrics
        self._reading: dict[str, asyncio.Future[str]] = {}
        self._tolerance_s, self._epoch = tolerance_s, epoch
        self.applied = 0

    def _count(self, platform: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.webhooks.labels(platform=platform, outcome=outcome).inc()

    async def apply(
        self, order_id: str, state: p.State, code: int | None, source: str
    ) -> list[StatusOut]:
        now = self._clock()
        outs = await self._writer.run(
            lambda c: ledger.apply_order_state(c, order_id, state, code, now, source=source)
        )
        self._statuses.publish(outs)
        if outs:
            self.applied += 1
            log.info("order.state", order_id=order_id, state=state.value, source=source)
        return outs

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """``POST /webhooks/ordercore``: 401 unless signed and recent (module doc); 200
        otherwise."""
        body = await request.read()
        reason = refusal(
            self._secret,
            body,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(TIMESTAMP_HEADER),
            now=self._epoch(),
            tolerance_s=self._tolerance_s,
        )
        if reason is not None:
            log.warning(
                "webhook.rejected",
                platform="ordercore",
                code=reason,
                timestamp=request.headers.get(TIMESTAMP_HEADER, "")[:20],
                remote=request.remote,
            )
            self._count("ordercore", reason)
            return web.json_response({"Error": reason}, status=401)
        parsed = parse_webhook(body)
        if parsed is None:
            self._count("ordercore", "ignored")
            return web.json_response({"ok": True, "ignored": True})
        outs = await self.apply(*parsed, source="webhook")
        self._count("ordercore", "applied" if outs else "unchanged")
        return web.json_response({"ok": True, "applied": len(outs)})

    async def handle_platform_webhook(self, request: web.Request) -> web.Response:
        """``POST /webhooks/{platform}`` of a ``WebhookConnector``: verify, read the named
        orders' state from the platform, apply it forward. 401 forged, 400 malformed, 503 when
        the platform cannot be read now (it delivers again later), 200 otherwise."""
        connector = self._connector
        name = request.match_info["platform"]
        if not isinstance(connector, WebhookConnector) or name != connector.webhook_name:
            self._count("other", "unknown_platform")
            return web.json_response({"Error": "not_found"}, status=404)
        body = await request.read()
        try:
            connector.verify_webhook(request.headers, body)
            order_ids = connector.webhook_order_ids(body)
        except WebhookRejectedError as exc:
            log.warning("webhook.rejected", platform=name, code=exc.code, detail=exc.detail)
            self._count(name, exc.code)
            return web.json_response({"Error": exc.code, "Message": exc.detail}, status=exc.status)
        try:
            outcomes = await self._apply_orders(order_ids)
        except PlatformError as exc:  # retryable: the platform is down
            log.info("webhook.retry_later", platform=name, reason=exc.reason)
            self._count(name, "retry_later")
            return web.json_response({"Error": "unavailable", "Message": exc.reason}, status=503)
        for outcome in outcomes.values() or ["ignored"]:
            self._count(name, outcome)
        return web.json_response({"ok": True, "orders": outcomes})

    async def _apply_orders(self, order_ids: list[str]) -> dict[str, str]:
        """Each order's outcome; orders ingest did not make are none of its business."""
        known: set[str] = await self._read(lambda c: ledger.known_orders(c, order_ids))
        return {
            order_id: await self._read_and_apply(order_id) if order_id in known else "unknown_order"
            for order_id in order_ids
        }

    async def _read_and_apply(self, order_id: str) -> str:
        """One read of ``order_id``'s state for every delivery that arrives meanwhile (even
        when the delivery that started it hung up: the read goes on for the others)."""
        running = self._reading.get(order_id)
        if running is not None:
            await asyncio.shield(running)
            return "duplicate"
        task = asyncio.ensure_future(self._refresh(order_id))
        self._reading[order_id] = task
        task.add_done_callback(lambda done: self._forget(order_id, done))
        return await asyncio.shield(task)

    def _forget(self, order_id: str, done: asyncio.Future[str]) -> None:
        if self._reading.get(order_id) is done:
            del self._reading[order_id]
        if not done.cancelled():
            done.exception()  # retrieved: whoever awaited it has handled it

    async def _refresh(self, order_id: str) -> str:
        try:
            result = await self._connector.get_order(order_id)
        except PlatformError as exc:
            if exc.retryable:
                raise
            log.warning("webhook.order_unreadable", order_id=order_id, reason=exc.reason)
            return "unreadable"
        code = result.platform_status if isinstance(result.platform_status, int) else None
        outs = await self.apply(order_id, result.state, code, "webhook")
        return "applied" if outs else "unchanged"

    async def poll_once(self) -> int:
        """Ask the platform about every order not yet final; returns changes applied."""
        order_ids: list[str] = await self._read(ledger.open_orders)
        changed = 0
        for order_id in order_ids:
            try:
                result = await self._connector.get_order(order_id)
            except PlatformError as exc:
                log.info("poll.failed", order_id=order_id, reason=exc.reason)
                if exc.retryable:
                    break  # the platform is down: try again next round
                continue
            code = result.platform_status if isinstance(result.platform_status, int) else None
            changed += len(await self.apply(order_id, result.state, code, "poll"))
        return changed

    async def poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)  # a period, not a readiness wait
            try:
                await self.poll_once()
            except Exception:
                log.exception("poll.crashed")


async def register_platform_webhooks(
    connector: WebhookConnector,
    url: str,
    backoff_min_s: float = 0.5,
    backoff_max_s: float = 60.0,
) -> None:
    """Have a ``WebhookConnector``'s platform deliver to ``url``, retrying with jittered
    backoff while it is unreachable; a refusal is logged and polling carries on alone."""
    await _with_backoff(lambda: connector.register_webhooks(url), url, backoff_min_s, backoff_max_s)


async def register_webhook(
    connector: Any, url: str, secret: str, backoff_min_s: float = 0.5, backoff_max_s: float = 60.0
) -> None:
    """Register ``url`` with the platform (replacing earlier registrations of the same URL),
    retrying with jittered backoff while the platform is unreachable."""
    await _with_backoff(
        lambda: connector.register_webhook(url, secret), url, backoff_min_s, backoff_max_s
    )


async def _with_backoff(
    register: Callable[[], Awaitable[None]], url: str, backoff_min_s: float, backoff_max_s: float
) -> None:
    delays = backoff.delays(backoff_min_s, backoff_max_s)
    while True:
        try:
            await register()
            log.info("webhook.registered", url=url)
            return
        except PlatformError as exc:
            if not exc.retryable:
                log.error("webhook.refused", url=url, reason=exc.reason)
                return
            delay = next(delays)
            log.info("webhook.register_retry", reason=exc.reason, retry_in_s=round(delay, 2))
            await asyncio.sleep(delay)
