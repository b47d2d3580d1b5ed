"""Headless Chromium for the dashboard's browser tests: Playwright driving Debian's
``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it). A module sets
``pytestmark = BROWSER_TESTS`` and takes the ``browser`` fixture of ``tests/web/conftest.py``."""

from __future__ import annotations

import os

import pytest
from playwright.async_api import Page, expect

from tests.web.support import ADMIN_PASSWORD

CHROMIUM = "/usr/bin/chromium"

BROWSER_TESTS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is missing (apt-get install chromium)"
    ),
]


async def log_in(page: Page, base: str) -> None:
    """Open the dashboard at ``base`` (a URL ending in "/"): sent to the login page, log in
    as the seeded admin, land on the fleet."""
    await page.goto(base)
    await expect(page).to_have_url(f"{base}login?next=%2F")
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", ADMIN_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Fleet")
