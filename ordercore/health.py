"""``GET /livez``, ``GET /healthz`` and ``GET /metrics`` of the order core (no auth).

``/livez`` is 200 while the process serves HTTP. ``/healthz`` is 200 only when the database
takes a write (a no-op job through the one writer, within ``HEALTH_TIMEOUT_S``) and no webhook
delivery has been pending for longer than ``Settings.health_webhook_age_s``; otherwise 503.
Both bodies list every check with what it saw: ``{"status", "checks": [{"name", "ok",
"detail"}]}``. ``/metrics`` is the Prometheus text of ``ordercore.metrics``, unauthenticated
as ingest's is (it says nothing about an order or a buyer; keep it off the public network).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from aiohttp import web

from edgeorder.ordercore.core import CORE, Core
from edgeorder.ordercore.endpoints import Call, Endpoint, Reply
from edgeorder.ordercore.http import json_response
from edgeorder.ordercore.lifecycle import OrderStatus
from edgeorder.ordercore.metrics import CONTENT_TYPE
from edgeorder.ordercore.schemas import HealthOut, LiveOut
from edgeorder.ordercore.store.health import delivery_backlog, orders_by_status

__all__ = ["ENDPOINTS", "HEALTH_TIMEOUT_S", "healthz", "livez", "metrics"]

HEALTH_TIMEOUT_S = 2.0


async def livez(call: Call[Any, Any]) -> web.Response:
    """GET /livez."""
    return json_response({"status": "alive"})


async def healthz(call: Call[Any, Any]) -> web.Response:
    """GET /healthz."""
    core = call.request.app[CORE]
    checks = [await _database(core), await _webhooks(core)]
    ok = all(c["ok"] for c in checks)
    return json_response(
        {"status": "ok" if ok else "degraded", "checks": checks}, 200 if ok else 503
    )


async def _database(core: Core) -> dict[str, Any]:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            await core.writer.run(lambda conn: None)
    except TimeoutError:
        return _check("database", False, f"no commit within {HEALTH_TIMEOUT_S:g} s")
    except Exception as exc:
        return _check("database", False, f"a write failed: {exc}")
    return _check("database", True, "the writer commits")


async def _webhooks(core: Core) -> dict[str, Any]:
    limit = core.settings.health_webhook_age_s
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            pending, oldest = await core.reader.run(delivery_backlog)
    except (TimeoutError, Exception) as exc:
        return _check("webhooks", False, f"cannot read the delivery backlog: {exc!r}")
    if oldest is None:
        return _check("webhooks", True, "no delivery pending")
    age = core.clock() - datetime.fromisoformat(oldest.replace("Z", "+00:00")).timestamp()
    detail = f"{pending} delivery(ies) pending, the oldest for {age:.0f} s (limit {limit:g} s)"
    return _check("webhooks", age <= limit, detail)


async def metrics(call: Call[Any, Any]) -> web.Response:
    """GET /metrics: the counters in memory, and the orders by state read from the database
    (every state listed, 0 included, so a series does not vanish when its last order moves)."""
    core = call.request.app[CORE]
    async with asyncio.timeout(HEALTH_TIMEOUT_S):
        counts = await core.reader.run(orders_by_status)
    states = [(s.name.lower(), counts.get(s.value, 0)) for s in OrderStatus]
    text = core.metrics.render(states)
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail}


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        "/livez",
        livez,
        "liveness: 200 while the process serves (no token)",
        (Reply(200, LiveOut, '{"status": "alive"}'),),
        roles=None,
        tag="service",
    ),
    Endpoint(
        "GET",
        "/healthz",
        healthz,
        "health: 200 when the database commits and no webhook delivery is overdue, else 503; "
        "every check with its detail (no token)",
        (
            Reply(200, HealthOut, "all checks ok"),
            Reply(503, HealthOut, "degraded: the failing checks say why"),
        ),
        roles=None,
        tag="service",
    ),
    Endpoint(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics in the text exposition format (no token): requests by route "
        "template and status code, request durations, orders created and by state, "
        "idempotent replays, build info",
        (Reply(200, None, "the metrics (text/plain; version=0.0.4)", text="text/plain"),),
        roles=None,
        tag="service",
    ),
]
