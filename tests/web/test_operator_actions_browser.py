"""The operator's fleet actions in headless Chromium (Debian's /usr/bin/chromium): the SKU
picker fed by the real order core's catalog and the refusal of an unknown SKU on the device
page. The app is the dashboard of ``tests/web/conftest.py`` with the service's catalog."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from edgeorder.ingest.bus import Bus
from edgeorder.ingest.connectors.ordercore import OrderCoreConnector
from edgeorder.ingest.keys import CATALOG_KEY
from edgeorder.ingest.orders.catalog import SkuCatalog
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from tests.ingest.support import CORE_TOKEN, OrderCore
from tests.support.net import free_port
from tests.web.browser import BROWSER_TESTS, log_in
from tests.web.conftest import make_app, make_settings
from tests.web.support import RecordingSimulator, add_device

pytestmark = BROWSER_TESTS


@dataclass
class Dashboard:
    server: TestServer
    db_path: Path
    core: OrderCore
    catalog: SkuCatalog

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))

    def mapping_of(self, device_id: str) -> dict[str, object]:
        db = open_db(self.db_path)
        try:
            return dict(registry.get_device(db, device_id)["mapping"])
        finally:
            db.conn.close()


@pytest.fixture
async def dashboard(tmp_path: Path) -> AsyncIterator[Dashboard]:
    core = await OrderCore(tmp_path / "core").start()
    connector = OrderCoreConnector(core.url, CORE_TOKEN, timeout_s=2)
    settings = make_settings(tmp_path)
    bus = Bus()
    app = make_app(settings, bus, RecordingSimulator(settings.db_path, bus))
    catalog = app[CATALOG_KEY] = SkuCatalog(connector, ttl_s=60)
    server = TestServer(app, port=free_port())
    await server.start_server()
    try:
        yield Dashboard(server, settings.db_path, core, catalog)
    finally:
        await server.close()
        await connector.close()
        await core.stop()


async def save_single(page: Page, sku: str, *, allow: bool = False) -> None:
    form = page.locator("form.mapping")
    await form.locator("input[name=single_sku]").fill(sku)
    if allow:
        await form.locator("input[name=allow_unknown_sku]").check()
    await form.locator("button[type=submit]").click()


async def test_the_sku_picker_offers_the_catalog_and_an_unknown_sku_is_refused(
    dashboard: Dashboard, browser: Browser
) -> None:
    await asyncio.to_thread(add_device, dashboard.db_path, "pick-01")
    page = await browser.new_page()
    await log_in(page, dashboard.url)
    await page.goto(dashboard.url + "devices/pick-01")
    status = page.locator("#catalog-status")
    await expect(status).to_contain_text("4 SKUs from the order core's GET /api/sku")
    options = page.locator("datalist#catalog-skus option")
    await expect(options).to_have_count(4)
    await expect(page.locator("datalist#catalog-skus option[value='TEA-250G']")).to_have_text(
        "Black tea, 250 g (24.50 BRL)"
    )
    assert await page.locator("input[name=single_sku]").get_attribute("list") == "catalog-skus"

    await save_single(page, "NOT-SOLD")
    flash = page.locator(".flash", has_text="Mapping not saved")
    await expect(flash).to_contain_text("SKU 'NOT-SOLD' not in the catalog of ordercore")
    assert dashboard.mapping_of("pick-01")["single"] == {
        "type": "reorder",
        "sku": "COFFEE-1KG",
        "quantity": 1,
    }

    await page.goto(dashboard.url + "devices/pick-01")
    await save_single(page, "TEA-250G")
    await expect(page.locator("input[name=single_sku]")).to_have_value("TEA-250G")
    assert dashboard.mapping_of("pick-01")["single"]["sku"] == "TEA-250G"  # type: ignore[index]

    await dashboard.core.stop()  # the platform goes away: refused unless allowed
    dashboard.catalog.forget()
    await page.goto(dashboard.url + "devices/pick-01")
    await expect(status).to_contain_text("The catalog of ordercore cannot be read now")
    await save_single(page, "WATER-5L")
    await expect(flash).to_contain_text("the catalog of ordercore is unreachable")
    await save_single(page, "WATER-5L", allow=True)
    await expect(page.locator("input[name=single_sku]")).to_have_value("WATER-5L")
    assert dashboard.mapping_of("pick-01")["single"]["sku"] == "WATER-5L"  # type: ignore[index]


def tags_of(db_path: Path) -> dict[str, tuple[bool, str, list[str]]]:
    db = open_db(db_path)
    try:
        return {
            d["device_id"]: (d["enabled"], d["env"], d["tags"]) for d in registry.list_devices(db)
        }
    finally:
        db.conn.close()


async def test_tags_filter_the_fleet_and_a_bulk_action_changes_the_selected_devices(
    dashboard: Dashboard, browser: Browser
) -> None:
    for device_id in ("bar-01", "bar-02", "kit-01"):
        await asyncio.to_thread(add_device, dashboard.db_path, device_id)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await log_in(page, dashboard.url)

    # Tags and a site from the device page.
    await page.goto(dashboard.url + "devices/kit-01")
    card = page.locator("#groups")
    await card.locator("input[name=tags]").fill("kitchen, pilot")
    await card.locator("input[name=site]").fill("Lisbon")
    await card.locator("button[type=submit]").click()
    await expect(card.locator("input[name=tags]")).to_have_value("kitchen pilot")
    await expect(card.locator("input[name=site]")).to_have_value("Lisbon")

    # Select all shown, then a bulk "add tag": every device gets it, in one action.
    await page.goto(dashboard.url)
    await page.locator("#select-all").check()
    bulk = page.locator("form#bulk")
    await bulk.locator("select[name=action]").select_option("add_tag")
    await bulk.locator("input[name=tag]").fill("bar")
    await bulk.locator("button[type=submit]").click()
    await expect(page.locator("#dev-bar-01 .device-groups .tag")).to_have_text(["bar"])
    assert {d: t[2] for d, t in (await asyncio.to_thread(tags_of, dashboard.db_path)).items()} == {
        "bar-01": ["bar"],
        "bar-02": ["bar"],
        "kit-01": ["bar", "kitchen", "pilot"],
    }

    # Filter by tag: only the kitchen device; select it and disable it.
    await page.locator("select[name=tag]").select_option("kitchen")
    await page.locator("form.filters button[type=submit]").click()
    await expect(page.locator("#fleet tbody tr")).to_have_count(1)
    await expect(page.locator("#dev-kit-01 .device-groups")).to_contain_text("Lisbon")
    await page.locator("#dev-kit-01 input[name=device]").check()
    await bulk.locator("select[name=action]").select_option("disable")
    await bulk.locator("button[type=submit]").click()
    await expect(page).to_have_url(dashboard.url + "?q=&online=&env=&tag=kitchen&site=&bulk=1")
    await expect(page.locator("#dev-kit-01 td[data-label=Enabled]")).to_have_text("disabled")

    # A bulk action for nothing selected, or an impossible one, changes nothing and says so.
    await page.goto(dashboard.url)
    await page.locator("#dev-bar-01 input[name=device]").check()
    await page.locator("#dev-bar-02 input[name=device]").check()
    await bulk.locator("select[name=action]").select_option("remove_tag")
    await bulk.locator("input[name=tag]").fill("not a tag")
    await bulk.locator("button[type=submit]").click()
    await expect(page.locator("#bulk-error")).to_contain_text("Nothing changed")
    final = await asyncio.to_thread(tags_of, dashboard.db_path)
    assert final["bar-01"] == (True, "prod", ["bar"])
    assert final["kit-01"][0] is False


async def test_provisioning_offers_the_catalog_and_refuses_an_unknown_sku(
    dashboard: Dashboard, browser: Browser
) -> None:
    page = await browser.new_page()
    await log_in(page, dashboard.url)
    await page.goto(dashboard.url + "provision")
    await expect(page.locator("datalist#catalog-skus option")).to_have_count(4)
    form = page.locator("form.provision")
    await form.locator("input[name=device_id]").fill("new-01")
    await form.locator("input[name=single_sku]").fill("NOT-SOLD")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("p.error")).to_contain_text(
        "SKU 'NOT-SOLD' not in the catalog of ordercore"
    )
    await page.locator("form.provision input[name=single_sku]").fill("FILTER-100")
    await page.locator("form.provision button[type=submit]").click()
    await expect(page.locator("h1")).to_have_text("Device new-01 added")
    assert dashboard.mapping_of("new-01")["single"]["sku"] == "FILTER-100"  # type: ignore[index]
