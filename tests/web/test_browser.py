"""The dashboard in headless Chromium (Debian's /usr/bin/chromium via Playwright), against a
running ingest web app whose database and bus the test drives: log in, see a simulated device
come online, press it and watch its order appear, all without reloading the page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Dialog, Page, Route, expect

from edgeorder.ingest.bus import Notice
from tests.support.net import free_port
from tests.web.browser import BROWSER_TESTS, log_in
from tests.web.conftest import make_app, make_settings
from tests.web.support import (
    RecordingSimulator,
    add_device,
    record_event,
    set_presence,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"

pytestmark = BROWSER_TESTS


class Running:
    def __init__(self, server: TestServer, simulator: RecordingSimulator, db_path: Path) -> None:
        self.server, self.simulator, self.db_path = server, simulator, db_path
        self.bus = simulator.bus

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    from edgeorder.ingest.bus import Bus

    settings = make_settings(tmp_path)
    bus = Bus()
    simulator = RecordingSimulator(settings.db_path, bus)
    server = TestServer(make_app(settings, bus, simulator), port=free_port())
    await server.start_server()
    try:
        yield Running(server, simulator, settings.db_path)
    finally:
        await server.close()


async def mark_page(page: Page) -> None:
    """A marker that a reload would wipe out."""
    await page.evaluate("window.__noReload = 'still-here'")


async def assert_not_reloaded(page: Page) -> None:
    assert await page.evaluate("window.__noReload") == "still-here"


async def come_online(running: Running, device_id: str) -> None:
    await asyncio.to_thread(set_presence, running.db_path, device_id, True, "0.1.0")
    running.bus.publish(Notice("presence", device_id, {"online": True}))


async def test_login_see_online_press_and_order_without_reload(
    running: Running, browser: Browser, tmp_path: Path
) -> None:
    await asyncio.to_thread(add_device, running.db_path, "demo-01", simulated=True)
    running.simulator.devices.add("demo-01")
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []  # CSP violations and script errors land in the console
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await log_in(page, running.url)
    row = page.locator("#dev-demo-01")
    await expect(row.locator("[data-online]")).to_have_text("offline")
    await expect(page.locator("body[data-live-connected='1']")).to_have_count(1)
    await mark_page(page)

    await come_online(running, "demo-01")
    await expect(row.locator("[data-online]")).to_have_text("online")
    await expect(page.locator("[data-total=online] .value")).to_have_text("1/1")
    await assert_not_reloaded(page)

    await row.locator("a").click()
    await expect(page.locator("h1")).to_have_text("Device demo-01")
    await expect(page.locator("body[data-live-connected='1']")).to_have_count(1)
    await mark_page(page)
    await page.locator("form[action='/devices/demo-01/press'] button", has_text="single").click()
    event = page.locator("#timeline .event").first
    await expect(event.locator(".order")).to_contain_text("#101")
    await expect(event.locator(".order [data-state=ordered]")).to_have_count(1)
    await assert_not_reloaded(page)
    assert running.simulator.presses == [("demo-01", "single")]
    assert errors == []
    await page.screenshot(path=str(tmp_path / "device.png"), full_page=True)


async def test_fleet_is_readable_without_javascript(running: Running, browser: Browser) -> None:
    await asyncio.to_thread(add_device, running.db_path, "kitchen-01")
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await log_in(page, running.url)
    await expect(page.locator("#dev-kitchen-01 td").first).to_contain_text("kitchen-01")
    await page.fill("input[name=q]", "nothing-matches")
    await page.click("form.filters button")
    await expect(page.locator("#fleet tbody")).to_contain_text("No device matches.")
    await context.close()


async def test_pages_fit_a_phone_screen(running: Running, browser: Browser) -> None:
    await asyncio.to_thread(add_device, running.db_path, "kitchen-01")
    page = await browser.new_page(viewport={"width": 360, "height": 740})
    await log_in(page, running.url)
    for path in ("/", "/devices/kitchen-01", "/buffer", "/provision"):
        await page.goto(running.url.rstrip("/") + path)
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 360px"


async def test_discard_asks_for_confirmation(running: Running, browser: Browser) -> None:
    await asyncio.to_thread(add_device, running.db_path, "kitchen-01")
    await asyncio.to_thread(
        record_event,
        running.db_path,
        "kitchen-01",
        state="queued",
        pending=True,
        last_error="platform unreachable",
    )
    page = await browser.new_page()
    await log_in(page, running.url)
    await page.click("nav a:has-text('Buffer')")
    row = page.locator("#buffer tr[data-outbox]")
    await expect(row).to_contain_text("platform unreachable")

    asked: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", dismiss)
    await row.locator("button", has_text="Discard").click()
    assert asked == ["Discard this order for good? No order will be made; the event fails."]
    await page.reload()
    await expect(row).to_have_count(1)  # dismissed: nothing happened

    page.once("dialog", lambda dialog: dialog.accept())
    await row.locator("button", has_text="Discard").click()
    await expect(page.locator(".flash")).to_contain_text("was discarded")
    await expect(page.locator("#buffer tr[data-outbox]")).to_have_count(0)


async def test_provisioning_offers_the_firmware_config_download(
    running: Running, browser: Browser, tmp_path: Path
) -> None:
    import tomllib

    page = await browser.new_page()
    await log_in(page, running.url)
    await page.click("nav a:has-text('Provisioning')")
    await page.fill("input[name=device_id]", "porch-03")
    await page.fill("input[name=name]", "Porch")
    await page.select_option("select[name=env]", "dev")
    await page.fill("input[name=single_sku]", "SALT-1KG")
    await page.click("form.provision button[type=submit]")
    password = await page.locator("#new-password").text_content()
    assert password
    async with page.expect_download() as info:
        await page.click("#toml-download")
    download = await info.value
    assert download.suggested_filename == "porch-03.toml"
    saved = tmp_path / "porch-03.toml"
    await download.save_as(saved)
    config = tomllib.loads(saved.read_text())
    assert config["mqtt"] == {
        "url": "mqtt://127.0.0.1:1883",
        "username": "porch-03",
        "password": password,
    }


async def test_a_change_before_the_stream_connects_is_not_missed(
    running: Running, browser: Browser
) -> None:
    await asyncio.to_thread(add_device, running.db_path, "kitchen-01")
    page = await browser.new_page()
    gate = asyncio.Event()

    async def hold(route: Route) -> None:  # the page's stream connects only once gate is set
        await gate.wait()
        await route.continue_()

    await page.route("**/live", hold)
    await log_in(page, running.url)
    await expect(page.locator("#dev-kitchen-01 [data-online]")).to_have_text("offline")
    await come_online(running, "kitchen-01")  # its notice reaches no subscriber of this page
    gate.set()
    await expect(page.locator("#dev-kitchen-01 [data-online]")).to_have_text("online")
