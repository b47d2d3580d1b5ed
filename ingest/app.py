"""``create_app(settings)``: the ingest service as an aiohttp application.

Everything long-lived (MQTT link, writer, outbox worker, webhook registration, poller) starts
from ``cleanup_ctx``, so ``edgeorder ingest`` and ``edgeorder demo`` run it the same way (the
demo inside its own event loop through ``web.AppRunner``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from edgeorder.ingest.bus import Bus
from edgeorder.ingest.connectors.base import Connector
from edgeorder.ingest.keys import BUS_KEY, PUBLISHER_KEY, SETTINGS_KEY, SIMULATOR_KEY
from edgeorder.ingest.service import IngestService
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.simulator import Simulator
from edgeorder.ingest.web.api import install_api

__all__ = ["SERVICE_KEY", "create_app", "public_url"]

log = structlog.get_logger(__name__)

SERVICE_KEY = web.AppKey("ingest_service", IngestService)


def public_url(settings: Settings) -> str | None:
    """Where the platform reaches our webhook; None when the port is not fixed yet."""
    if settings.public_url:
        return settings.public_url
    if settings.http_port == 0:
        return None
    host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::", "") else settings.http_host
    return f"http://{host}:{settings.http_port}"


def create_app(
    settings: Settings, *, simulator: Simulator | None = None, connector: Connector | None = None
) -> web.Application:
    """The ingest application; nothing runs until the app starts (cleanup_ctx)."""
    app = web.Application(client_max_size=1024 * 1024)
    bus = Bus()
    app[SETTINGS_KEY] = settings
    app[BUS_KEY] = bus
    if simulator is not None:
        app[SIMULATOR_KEY] = simulator
    service = IngestService(settings, bus, connector=connector)
    app[SERVICE_KEY] = service
    app[PUBLISHER_KEY] = service
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/webhooks/ordercore", service.sync.handle_webhook)
    app.router.add_post("/webhooks/{platform}", service.sync.handle_platform_webhook)
    install_api(app, settings.db_path)
    _setup_web(app)
    app.cleanup_ctx.append(_run_service)
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


async def healthz(request: web.Request) -> web.Response:
    """200 while the service runs and the broker subscription is up; 503 otherwise."""
    service = request.app[SERVICE_KEY]
    mqtt_ok = service.link.subscribed.is_set()
    body = {
        "status": "ok" if mqtt_ok else "degraded",
        "mqtt": mqtt_ok,
        "devices": len(service.devices),
    }
    return web.json_response(body, status=200 if mqtt_ok else 503)


async def metrics(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    return web.Response(
        body=service.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
