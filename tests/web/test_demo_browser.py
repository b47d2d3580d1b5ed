"""The whole stack in headless Chromium: ``edgeorder demo`` as a subprocess (embedded broker,
order core, ingest, simulated agents) on free ports. Log in, see the simulated devices online,
press one from its page and watch the event become an order without reloading; edit its
mapping and see the device report the pushed config.

``EDGEORDER_SCREENSHOTS=DIR`` also saves ``fleet.png`` and ``device.png`` there (how the
README's docs/ screenshots are made).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.demo.test_demo_e2e import Demo
from tests.support.net import free_port

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is missing (apt-get install chromium)"
    ),
]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(tmp_path / "data", free_port(), free_port(), free_port()).start()
    yield running
    if running.proc is not None and running.proc.poll() is None:
        assert running.stop() == 0


def test_press_from_the_dashboard_becomes_an_order_live(demo: Demo) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = os.environ.get("EDGEORDER_SCREENSHOTS")
    base = f"http://127.0.0.1:{demo.http_port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 820})
        page.goto(base + "/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", demo.secrets()["admin_password"])
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Fleet")
        for device in ("demo-01", "demo-02"):
            expect(page.locator(f"#dev-{device} [data-online]")).to_have_text(
                "online", timeout=30_000
            )
        expect(page.locator("body[data-live-connected='1']")).to_have_count(1)

        page.click("#dev-demo-01 a")
        expect(page.locator("h1")).to_have_text("Device demo-01")
        expect(page.locator("body[data-live-connected='1']")).to_have_count(1)
        page.evaluate("window.__noReload = 'still-here'")
        page.locator("form[action='/devices/demo-01/press'] button", has_text="single").click()
        event = page.locator("#timeline .event").first
        expect(event.locator(".order [data-state=ordered]")).to_have_count(1, timeout=30_000)
        expect(event.locator(".steps")).to_contain_text("accepted")
        assert page.evaluate("window.__noReload") == "still-here"
        # A second press while the order is in flight is throttled, live as well.
        page.locator("form[action='/devices/demo-01/press'] button", has_text="single").click()
        expect(
            page.locator("#timeline .event").first.locator("[data-state=throttled]").first
        ).to_be_visible(timeout=30_000)
        assert page.evaluate("window.__noReload") == "still-here"
        # A mapping edit is saved, pushed as retained config, applied and reported back.
        page.select_option("select[name=double_type]", "reorder")
        page.fill("input[name=double_sku]", "TEA-250G")
        page.fill("input[name=double_quantity]", "2")
        page.click("form.mapping button[type=submit]")
        try:
            expect(page.locator("#summary")).to_contain_text(
                "v2 desired, v2 reported", timeout=30_000
            )
        except AssertionError as exc:
            demo.stop()
            raise AssertionError("".join(demo.output[-80:])) from exc
        expect(page.locator("input[name=double_sku]")).to_have_value("TEA-250G")
        if shots:
            page.screenshot(path=str(Path(shots) / "device.png"), full_page=True)
            page.goto(base + "/")
            expect(page.locator("#dev-demo-01 .last-order")).to_contain_text("ordered")
            page.screenshot(path=str(Path(shots) / "fleet.png"), full_page=True)
        browser.close()
