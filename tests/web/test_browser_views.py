"""The operator views in headless Chromium (Debian's /usr/bin/chromium via Playwright),
against a running ingest web app with its REST API: the LED and "offline since" follow the
device live, the timeline pages older and newer, the CSV exports download, and the telemetry
chart draws the chosen window."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from edgeorder import protocol as p
from edgeorder.ingest.bus import Bus, Notice
from edgeorder.ingest.web.api import install_api
from tests.support.net import free_port
from tests.web.browser import BROWSER_TESTS
from tests.web.conftest import make_app, make_settings
from tests.web.support import ADMIN_PASSWORD, RecordingSimulator, add_device, record_event
from tests.web.support_views import confirm, heartbeats, presence_at
from tests.web.test_browser import Running

pytestmark = BROWSER_TESTS


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """The dashboard and the REST API, as ingest serves them."""
    settings = make_settings(tmp_path)
    bus = Bus()
    simulator = RecordingSimulator(settings.db_path, bus)
    app = make_app(settings, bus, simulator, before=install_api)
    server = TestServer(app, port=free_port())
    await server.start_server()
    try:
        yield Running(server, simulator, settings.db_path)
    finally:
        await server.close()


async def logged_in(browser: Browser, running: Running, **options: object) -> Page:
    page = await browser.new_page(**options)  # type: ignore[arg-type]
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    setattr(page, "errors", errors)  # noqa: B010 (read back by the tests: no CSP violation)
    await page.goto(running.url)
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", ADMIN_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Fleet")
    return page


async def test_led_and_offline_since_follow_the_device_live(
    running: Running, browser: Browser
) -> None:
    now = p.utcnow()
    db = running.db_path
    await asyncio.to_thread(add_device, db, "kitchen-01")
    await asyncio.to_thread(presence_at, db, "kitchen-01", True, now - timedelta(minutes=5))
    _, event_id = await asyncio.to_thread(record_event, db, "kitchen-01", state="accepted")
    await asyncio.to_thread(confirm, db, event_id, now)
    await asyncio.to_thread(heartbeats, db, "kitchen-01", [1.0], end=now, dropped=3)
    page = await logged_in(browser, running, viewport={"width": 1280, "height": 900})
    row = page.locator("#dev-kitchen-01")
    await expect(row.locator(".led-dot")).to_have_attribute("data-led", "accepted")
    await expect(row).to_contain_text("3 dropped")
    await expect(page.locator("body[data-live-connected='1']")).to_have_count(1)

    await row.locator("a").click()
    await expect(page.locator("#led")).to_contain_text("amber fast blink (single LED: fast blink)")
    await expect(page.locator("#presence-since")).to_contain_text("online since")
    await expect(page.locator("#dropped")).to_have_text("3")
    await expect(page.locator("body[data-live-connected='1']")).to_have_count(1)

    went = p.utcnow() - timedelta(hours=3, minutes=2)  # its LWT, as ingest received it
    await asyncio.to_thread(presence_at, db, "kitchen-01", False, went)
    running.bus.publish(Notice("presence", "kitchen-01", {"online": False}))
    await expect(page.locator("#presence-since")).to_contain_text("(for 3 h 2 min)")
    await expect(page.locator("#led")).to_contain_text("unknown since the device went offline")
    await page.goto(running.url)
    await expect(row.locator(".offline-since")).to_contain_text("Offline since")
    await expect(row.locator(".offline-since")).to_contain_text("(for 3 h 2 min)")
    assert getattr(page, "errors") == []  # noqa: B009


async def test_timeline_pages_older_and_newer(running: Running, browser: Browser) -> None:
    db = running.db_path
    await asyncio.to_thread(add_device, db, "kitchen-01")
    start = p.utcnow() - timedelta(hours=2)
    for n in range(62):
        at = p.format_ts(start + timedelta(seconds=n))
        await asyncio.to_thread(record_event, db, "kitchen-01", at=at)
    page = await logged_in(browser, running)
    await page.goto(running.url + "devices/kitchen-01")
    events = page.locator("#timeline .event")
    await expect(events).to_have_count(50)
    newest_first = await events.first.get_attribute("data-event")
    await expect(page.locator("#pager a[rel=prev]")).to_have_count(0)
    await page.click("#pager a[rel=next]")
    await expect(events).to_have_count(12)
    await expect(page.locator("#pager a[rel=next]")).to_have_count(0)
    await page.click("#pager a[rel=prev]")
    await expect(events).to_have_count(50)
    assert await events.first.get_attribute("data-event") == newest_first
    await page.click("#pager a[rel=next]")
    await page.click("#pager a[rel=first]")
    await expect(events).to_have_count(50)
    assert await events.first.get_attribute("data-event") == newest_first


async def test_csv_exports_download_from_the_device_page(
    running: Running, browser: Browser, tmp_path: Path
) -> None:
    db = running.db_path
    await asyncio.to_thread(add_device, db, "kitchen-01")
    await asyncio.to_thread(record_event, db, "kitchen-01", state="ordered", order_id="=1+2")
    await asyncio.to_thread(record_event, db, "kitchen-01", click="@SUM(A1)")
    page = await logged_in(browser, running)
    await page.goto(running.url + "devices/kitchen-01")
    for kind, column, value in (("events", 4, "'@SUM(A1)"), ("orders", 0, "'=1+2")):
        async with page.expect_download() as info:
            await page.click(f"#pager a:has-text('{kind} (CSV)')")
        download = await info.value
        assert download.suggested_filename.startswith(f"edgeorder-{kind}-kitchen-01-")
        saved = tmp_path / download.suggested_filename
        await download.save_as(saved)
        rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"))))
        assert value in [r[column] for r in rows[1:]]


async def test_telemetry_chart_shows_the_chosen_window(running: Running, browser: Browser) -> None:
    now = p.utcnow()
    db = running.db_path
    await asyncio.to_thread(add_device, db, "tank-01")
    readings = [80 - n * 1.5 for n in range(40)]
    await asyncio.to_thread(heartbeats, db, "tank-01", readings, end=now)
    await asyncio.to_thread(heartbeats, db, "tank-01", [95.0], end=now - timedelta(hours=5))
    page = await logged_in(browser, running, viewport={"width": 1280, "height": 900})
    await page.goto(running.url + "devices/tank-01")
    level = page.locator("figure[data-series='sensor.level']")
    await expect(level.locator("svg polyline")).to_be_visible()
    # 24 h: the last heartbeat of every 10 minutes, the one 5 h ago among them
    await expect(level.locator("circle[data-value='95']")).to_have_count(1)
    assert await level.locator("circle").count() <= 6
    await page.click("#telemetry .windows a:has-text('1h')")
    await expect(page.locator("#telemetry .windows a[aria-current]")).to_have_text("1h")
    await expect(level.locator("circle")).to_have_count(40)  # one a minute
    await expect(level.locator("circle[data-value='95']")).to_have_count(0)  # 5 h ago: outside
    await expect(level.locator("figcaption")).to_contain_text("last hour")
    title = await level.locator("circle").last.locator("title").text_content()
    assert title is not None
    assert title.endswith("sensor.level 21.5")
    await page.set_viewport_size({"width": 360, "height": 740})
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the device page scrolls sideways by {overflow}px at 360px"
    assert getattr(page, "errors") == []  # noqa: B009
