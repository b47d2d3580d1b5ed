"""Alerts in headless Chromium: a device goes offline past its threshold, the banner appears on
the open page without a reload, the Alerts page lists it, Acknowledge moves it to the
acknowledged list (audited) and the banner goes; when the device is back the alert clears."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from edgeorder import protocol as p
from edgeorder.ingest.alerting import AlertService
from edgeorder.ingest.bus import Bus
from edgeorder.ingest.health import PlatformMonitor
from edgeorder.ingest.keys import ALERTS_KEY, STORE_KEY
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.store.database import Database
from tests.support.net import free_port
from tests.web.browser import BROWSER_TESTS, log_in
from tests.web.conftest import make_app, make_settings
from tests.web.support import RecordingSimulator, add_device, set_presence

pytestmark = BROWSER_TESTS


class Clock:
    def __init__(self) -> None:
        self.now = p.utcnow()

    def __call__(self) -> datetime:
        return self.now


class Running:
    def __init__(self, server: TestServer, alerts: AlertService, clock: Clock, db: Path) -> None:
        self.server, self.alerts, self.clock, self.db_path = server, alerts, clock, db

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    settings = make_settings(tmp_path, alert_offline_s=60, alert_clear_hold_s=0)
    bus = Bus()
    app = make_app(settings, bus, RecordingSimulator(settings.db_path, bus))
    platform = PlatformMonitor("http://127.0.0.1:9")
    platform.answered()
    clock = Clock()
    store = app[STORE_KEY]
    service = AlertService(
        settings,
        writer=store.writer,
        reader=store.reader,
        platform=platform,
        bus=bus,
        metrics=Metrics(),
        owner="test",
        clock=clock,
    )
    app[ALERTS_KEY] = service
    server = TestServer(app, port=free_port())
    await server.start_server()
    try:
        yield Running(server, service, clock, settings.db_path)
    finally:
        await server.close()


async def test_banner_alerts_page_and_acknowledge(running: Running, browser: Browser) -> None:
    await asyncio.to_thread(add_device, running.db_path, "shelf-01")
    await asyncio.to_thread(set_presence, running.db_path, "shelf-01", False, "0.1.0")
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await log_in(page, running.url)
    await expect(page.locator("body[data-live-connected='1']")).to_have_count(1)
    banner = page.locator("#alert-banner")
    await expect(banner).to_be_empty()
    await page.evaluate("window.__noReload = 'still-here'")

    running.clock.now = p.utcnow() + timedelta(seconds=61)  # offline longer than the limit
    made = await running.alerts.evaluate()
    assert [(t.transition, t.kind, t.device_id) for t in made] == [
        ("opened", "device_offline", "shelf-01")
    ]
    await expect(banner).to_contain_text("1 active alert")
    await expect(banner).to_contain_text("device_offline shelf-01")
    await expect(banner).to_contain_text("offline since")
    assert await page.evaluate("window.__noReload") == "still-here"

    await banner.locator("a").click()
    await expect(page.locator("h1")).to_have_text("Alerts")
    row = page.locator("[data-list=active] tr[data-kind=device_offline]")
    await expect(row).to_contain_text("shelf-01")
    await row.locator("button", has_text="Acknowledge").click()
    await expect(page.locator(".flash")).to_contain_text("acknowledged")
    await expect(page.locator("[data-empty=active]")).to_have_count(1)
    acked = page.locator("[data-list=acknowledged] tr[data-kind=device_offline]")
    await expect(acked).to_contain_text("by admin")
    await expect(page.locator("#alert-banner")).to_be_empty()

    with Database.sqlite(running.db_path).open(migrate=False) as conn:
        audit = conn.execute("SELECT actor FROM audit WHERE action = 'alert.acknowledge'")
        assert [r[0] for r in audit.fetchall()] == ["admin"]

    await asyncio.to_thread(set_presence, running.db_path, "shelf-01", True, "0.1.0")
    made = await running.alerts.evaluate()
    assert [t.transition for t in made] == ["cleared"]
    cleared = page.locator("[data-list=cleared] tr[data-kind=device_offline]")
    await expect(cleared).to_have_count(1)
    await expect(page.locator("[data-list=acknowledged]")).to_have_count(0)
    assert errors == []
