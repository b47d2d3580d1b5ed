"""The Alerts page, its acknowledge form (CSRF, 404, 409) and the alert API routes, over HTTP
against a real app and SQLite file; the evaluator runs with an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edgeorder import protocol as p
from edgeorder.ingest.alerting import AlertService
from edgeorder.ingest.bus import Bus
from edgeorder.ingest.health import PlatformMonitor
from edgeorder.ingest.keys import ALERTS_KEY, STORE_KEY
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.web import create_api_token
from edgeorder.ingest.web.api import install_api
from tests.web.conftest import WebEnv, make_app, make_settings
from tests.web.support import RecordingPublisher, RecordingSimulator, add_device, set_presence


@dataclass
class Env:
    web: WebEnv
    alerts: AlertService
    later: datetime


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    settings = make_settings(tmp_path, alert_offline_s=60, alert_clear_hold_s=0)
    bus = Bus()
    simulator, publisher = RecordingSimulator(settings.db_path, bus), RecordingPublisher()
    app = make_app(settings, bus, simulator, publisher)
    install_api(app)
    platform = PlatformMonitor("http://127.0.0.1:9")
    platform.failed("connection refused")
    later = p.utcnow() + timedelta(minutes=5)
    store = app[STORE_KEY]
    service = AlertService(
        settings,
        writer=store.writer,
        reader=store.reader,
        platform=platform,
        bus=bus,
        metrics=Metrics(),
        owner="t",
        clock=lambda: later,
    )
    app[ALERTS_KEY] = service
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Env(WebEnv(app, client, settings, bus, simulator, publisher), service, later)
    finally:
        await client.close()


async def test_page_lists_the_alert_and_the_form_acknowledges_it_once(env: Env) -> None:
    await asyncio.to_thread(add_device, env.web.db_path, "shelf-01")
    await asyncio.to_thread(set_presence, env.web.db_path, "shelf-01", False)
    made = await env.alerts.evaluate()
    assert sorted((t.kind, t.device_id) for t in made) == [
        ("device_offline", "shelf-01"),
        ("platform_unreachable", None),
    ]
    await env.web.login()
    page = await (await env.web.client.get("/alerts")).text()
    assert 'class="alert-banner"' in page
    assert "2 active alerts" in page
    # the worst first: the platform before the device
    assert page.index("platform_unreachable") < page.index("device_offline shelf-01")
    alert_id = next(a["id"] for a in env.alerts.open if a["kind"] == "device_offline")

    no_csrf = await env.web.client.post(f"/alerts/{alert_id}/acknowledge", allow_redirects=False)
    assert no_csrf.status == 403
    resp = await env.web.post(f"/alerts/{alert_id}/acknowledge")
    assert resp.status == 303
    assert resp.headers["Location"] == f"/alerts?acknowledged={alert_id}"
    again = await env.web.post(f"/alerts/{alert_id}/acknowledge")
    assert again.status == 409
    assert (await env.web.post("/alerts/999/acknowledge")).status == 404
    assert (await env.web.post("/alerts/99999999999999999999/acknowledge")).status == 404
    page = await (await env.web.client.get(f"/alerts?acknowledged={alert_id}")).text()
    assert f"Alert {alert_id} acknowledged." in page
    assert "1 active alert<" in page  # only the platform's is left in the banner


async def test_the_api_lists_filters_and_acknowledges(env: Env) -> None:
    await asyncio.to_thread(add_device, env.web.db_path, "shelf-01")
    await asyncio.to_thread(set_presence, env.web.db_path, "shelf-01", False)
    await env.alerts.evaluate()
    token = await env.web.store.write(lambda conn: create_api_token(conn, "ops"))
    auth = {"Authorization": f"Bearer {token}"}
    client = env.web.client
    assert (await client.get("/api/alerts")).status == 401
    listed = await (await client.get("/api/alerts", headers=auth)).json()
    assert {(a["kind"], a["device_id"], a["state"]) for a in listed} == {
        ("device_offline", "shelf-01", "active"),
        ("platform_unreachable", None, "active"),
    }
    platform = next(a for a in listed if a["kind"] == "platform_unreachable")
    assert platform["detail"] == "the last call failed: connection refused"
    acked = await client.post(f"/api/alerts/{platform['id']}/acknowledge", headers=auth)
    assert acked.status == 200
    assert (await acked.json())["acknowledged_by"] == "token:ops"
    again = await client.post(f"/api/alerts/{platform['id']}/acknowledge", headers=auth)
    assert (again.status, (await again.json())["Error"]) == (409, "not_active")
    missing = await client.post("/api/alerts/424242/acknowledge", headers=auth)
    assert missing.status == 404
    only = await (await client.get("/api/alerts?state=acknowledged", headers=auth)).json()
    assert [a["id"] for a in only] == [platform["id"]]
    mine = await (await client.get("/api/alerts?device=shelf-01&limit=5", headers=auth)).json()
    assert [a["kind"] for a in mine] == ["device_offline"]
    bad = await client.get("/api/alerts?state=nope", headers=auth)
    assert bad.status == 400
