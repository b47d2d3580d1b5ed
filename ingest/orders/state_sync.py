"""Order status changes from the platform: a signed webhook, and a polling fallback.

Both end in ``ledger.apply_order_state``, which only ever moves an order forward, so a late
or repeated delivery (webhook after poll, retried webhook) changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from edgeorder import protocol as p
from edgeorder.ingest.connectors.base import Connector, PlatformError
from edgeorder.ingest.connectors.ordercore import state_for_code
from edgeorder.ingest.mqtt.link import backoff_delays
from edgeorder.ingest.mqtt.statuses import StatusPublisher
from edgeorder.ingest.store import ledger
from edgeorder.ingest.store.ledger import StatusOut
from edgeorder.ingest.store.writer import Writer

__all__ = [
    "OrderStateSync",
    "parse_webhook",
    "register_webhook",
    "signature",
    "verify_signature",
]

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Edgeorder-Signature"


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(body, secret)>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of the ``X-Edgeorder-Signature`` header (False without a secret)."""
    return (
        bool(secret) and header is not None and hmac.compare_digest(signature(secret, body), header)
    )


def parse_webhook(body: bytes) -> tuple[str, p.State, int] | None:
    """``(order_id, state, status_code)`` from an order-core webhook body, or None if the body
    is not an order event we understand."""
    try:
        data = json.loads(body)
        order = data["Order"]
        code = int(order["Status"]["Code"])
        order_id = str(order["Id"])
    except (ValueError, KeyError, TypeError):
        return None
    state = state_for_code(code)
    return None if state is None else (order_id, state, code)


class OrderStateSync:
    """Applies platform order states; hosts the webhook handler and the poller."""

    def __init__(
        self,
        *,
        writer: Writer,
        read: Callable[[Callable[[sqlite3.Connection], Any]], Any],
        connector: Connector,
        statuses: StatusPublisher,
        secret: str,
        poll_interval_s: float,
        clock: Callable[[], datetime] = p.utcnow,
    ) -> None:
        self._writer, self._read, self._connector = writer, read, connector
        self._statuses, self._secret = statuses, secret
        self._interval, self._clock = poll_interval_s, clock
        self.applied = 0

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
        """``POST /webhooks/ordercore``: 401 without a valid signature; 200 otherwise."""
        body = await request.read()
        if not verify_signature(self._secret, body, request.headers.get(SIGNATURE_HEADER)):
            log.warning("webhook.bad_signature", remote=request.remote)
            return web.json_response({"Error": "bad_signature"}, status=401)
        parsed = parse_webhook(body)
        if parsed is None:
            return web.json_response({"ok": True, "ignored": True})
        outs = await self.apply(*parsed, source="webhook")
        return web.json_response({"ok": True, "applied": len(outs)})

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


async def register_webhook(
    connector: Any, url: str, secret: str, backoff_min_s: float = 0.5, backoff_max_s: float = 60.0
) -> None:
    """Register ``url`` with the platform (replacing earlier registrations of the same URL),
    retrying with jittered backoff while the platform is unreachable."""
    delays = backoff_delays(backoff_min_s, backoff_max_s)
    while True:
        try:
            await connector.register_webhook(url, secret)
            log.info("webhook.registered", url=url, platform=connector.name)
            return
        except PlatformError as exc:
            if not exc.retryable:
                log.error("webhook.refused", url=url, reason=exc.reason)
                return
            delay = next(delays)
            log.info("webhook.register_retry", reason=exc.reason, retry_in_s=round(delay, 2))
            await asyncio.sleep(delay)
