"""``create_app(settings)``: the ingest service as an aiohttp application.

Everything long-lived (MQTT link, writer, outbox worker, webhook registration, poller) starts
from ``cleanup_ctx``, so ``edgeorder ingest`` and ``edgeorder demo`` run it the same way (the
demo inside its own event loop through ``web.AppRunner``).

``/livez`` answers 200 while the process serves HTTP; ``/healthz`` answers 200 only when every
check passes (MQTT link, order platform, buffer age, failing messages, database) and 503 with
the failing checks' reasons otherwise (``ingest.health``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from edgeorder import protocol as p
from edgeorder.httpserver import ServerLimits
from edgeorder.ingest import health
from edgeorder.ingest.bus import Bus
from edgeorder.ingest.connectors.base import Connector
from edgeorder.ingest.keys import (
    ALERTS_KEY,
    BUS_KEY,
    CATALOG_KEY,
    METRICS_KEY,
    PUBLISHER_KEY,
    SETTINGS_KEY,
    SIMULATOR_KEY,
    STORE_KEY,
)
from edgeorder.ingest.service import IngestService
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.simulator import Simulator
from edgeorder.ingest.store import queries
from edgeorder.ingest.store.bulk import BULK_MAX
from edgeorder.ingest.store.handle import Store
from edgeorder.ingest.web.api import install_api
from edgeorder.logs import ProtocolErrorLogger

__all__ = ["SERVICE_KEY", "create_app", "public_url", "server_limits"]

log = structlog.get_logger(__name__)

SERVICE_KEY = web.AppKey("ingest_service", IngestService)
HEALTH_TIMEOUT_S = 2.0
"""How long one health check may wait for the database (a stuck writer is itself the news)."""


def public_url(settings: Settings) -> str | None:
    """Where the platform reaches our webhook; None when the port is not fixed yet."""
    if settings.public_url:
        return settings.public_url
    if settings.http_port == 0:
        return None
    host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::", "") else settings.http_host
    return f"http://{host}:{settings.http_port}"


def server_limits(settings: Settings) -> ServerLimits:
    """The HTTP server's connection bounds (``edgeorder.httpserver``) from the settings."""
    return ServerLimits(
        max_connections=settings.http_max_connections,
        keepalive_s=settings.http_keepalive_s,
        header_timeout_s=settings.http_header_timeout_s,
    )


def create_app(
    settings: Settings, *, simulator: Simulator | None = None, connector: Connector | None = None
) -> web.Application:
    """The ingest application; nothing runs until the app starts (cleanup_ctx)."""
    # a malformed request (a NUL byte in a header) is aiohttp's 400 and one INFO line
    app = web.Application(
        client_max_size=1024 * 1024,
        # a bulk form carries one field per device ticked (up to BULK_MAX) and a few more
        client_max_fields=BULK_MAX + 16,
        handler_args={"logger": ProtocolErrorLogger()},
    )
    bus = Bus()
    app[SETTINGS_KEY] = settings
    app[BUS_KEY] = bus
    if simulator is not None:
        app[SIMULATOR_KEY] = simulator
    service = IngestService(settings, bus, connector=connector)
    app[SERVICE_KEY] = service
    app[PUBLISHER_KEY] = service
    app[STORE_KEY] = Store(service.writer, service.reader)
    app[METRICS_KEY] = service.metrics
    app[CATALOG_KEY] = service.catalog
    app[ALERTS_KEY] = service.alerts
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", livez)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/webhooks/ordercore", service.sync.handle_webhook)
    app.router.add_post("/webhooks/{platform}", service.sync.handle_platform_webhook)
    install_api(app)
    app.cleanup_ctx.append(_run_service)  # first: the dashboard's start-up writes through it
    _setup_web(app)
    return app


def _setup_web(app: web.Application) -> None:
    try:
        from edgeorder.ingest.web import setup_web
    except ImportError as exc:  # the dashboard is optional for a headless worker
        log.warning("ingest.no_dashboard", error=str(exc))
        return
    setup_web(app)


async def _run_service(app: web.Application) -> AsyncIterator[None]:
    service = app[SERVICE_KEY]
    await service.start(public_url(app[SETTINGS_KEY]))
    try:
        yield
    finally:
        await service.stop()


async def livez(request: web.Request) -> web.Response:
    """200 while the process serves HTTP, whatever the rest of the chain is doing."""
    return web.json_response({"status": "alive"})


async def healthz(request: web.Request) -> web.Response:
    """200 when every check passes; 503 otherwise. Both list every check with its detail."""
    service = request.app[SERVICE_KEY]
    settings = request.app[SETTINGS_KEY]
    seen = await _observe(service)
    report = health.evaluate(seen, health.Thresholds(buffer_age_s=settings.health_buffer_age_s))
    body = {**report.to_json(), "devices": len(service.devices)}
    if not report.ok:
        failing = [c.name for c in report.checks if not c.ok]
        log.info("ingest.degraded", checks=failing)
    return web.json_response(body, status=200 if report.ok else 503)


async def _observe(service: IngestService) -> health.Observed:
    oldest, read_error = await health.bounded(
        service.reader(queries.oldest_pending_order), HEALTH_TIMEOUT_S, "the database reader"
    )
    _, write_error = await health.bounded(
        service.writer.run(lambda conn: None), HEALTH_TIMEOUT_S, "the database writer"
    )
    return health.Observed(
        now=p.utcnow(),
        mqtt_connected=service.link.subscribed.is_set(),
        platform=await service.platform.state(),
        oldest_pending=datetime.fromisoformat(oldest) if oldest else None,
        failing_messages=service.router.failing(),
        database=write_error or read_error,
    )


def _fleet(conn: Any) -> tuple[dict[str, int], str | None]:
    return queries.device_states(conn), queries.oldest_pending_order(conn)


async def _refresh(service: IngestService) -> None:
    """Set the gauges a scrape reads: this worker's links, and the fleet from the database."""
    m = service.metrics
    m.mqtt_up.set(1 if service.link.subscribed.is_set() else 0)
    m.platform_up.set(1 if (await service.platform.state()).reachable else 0)
    fleet, error = await health.bounded(
        service.reader(_fleet), HEALTH_TIMEOUT_S, "the database reader"
    )
    if error is not None:
        m.scrape_read_failures.inc()
        log.warning("ingest.metrics_read_failed", error=error)
        return
    states, oldest = fleet
    for state, count in states.items():
        m.devices.labels(state).set(count)
    age = 0.0 if oldest is None else (p.utcnow() - datetime.fromisoformat(oldest)).total_seconds()
    m.oldest_buffered.set(max(0.0, age))


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text; the fleet gauges are refreshed first (bounded reads, ``_refresh``)."""
    service = request.app[SERVICE_KEY]
    await _refresh(service)
    return web.Response(
        body=service.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
