"""A real ingest web app (aiohttp test server on a free port, real SQLite file in WAL mode)
with the dashboard installed; tests drive its database and bus directly."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser
from pydantic import SecretStr

from edgeorder.ingest.bus import Bus
from edgeorder.ingest.keys import BUS_KEY, PUBLISHER_KEY, SETTINGS_KEY, SIMULATOR_KEY, STORE_KEY
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.store.handle import Store
from edgeorder.ingest.web import setup_web
from tests.web.support import (
    ADMIN_PASSWORD,
    RecordingPublisher,
    RecordingSimulator,
    serve_store,
    unstarted_store,
)


@dataclass
class WebEnv:
    app: web.Application
    client: TestClient[web.Request, web.Application]
    settings: Settings
    bus: Bus
    simulator: RecordingSimulator
    publisher: RecordingPublisher
    csrf: str = ""
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.settings.db_path

    @property
    def store(self) -> Store:
        return self.app[STORE_KEY]

    async def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        """Log in; returns (and keeps) the CSRF token read from the fleet page."""
        resp = await self.client.post(
            "/login", data={"username": username, "password": password, "next": "/"}
        )
        assert resp.status == 200, await resp.text()  # followed the 303 to the fleet page
        match = re.search(r'data-csrf="([^"]+)"', await resp.text())
        assert match, "the logged-in page carries the CSRF token"
        self.csrf = match.group(1)
        return self.csrf

    async def post(self, path: str, **data: str) -> ClientResponse:
        """A form POST with the session's CSRF token; redirects are not followed."""
        return await self.client.post(
            path, data={"csrf_token": self.csrf, **data}, allow_redirects=False
        )


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "ingest",
        "admin_password": SecretStr(ADMIN_PASSWORD),
        "login_max_failures": 3,
        "login_lockout_s": 600,
    }
    values.update(overrides)
    return Settings.model_validate(values)


def make_app(
    settings: Settings,
    bus: Bus,
    simulator: RecordingSimulator,
    publisher: RecordingPublisher | None = None,
    *,
    before: Callable[[web.Application], None] | None = None,
) -> web.Application:
    """``before``: installs more routes ahead of the dashboard's (ingest's REST API)."""
    app = web.Application()
    app[PUBLISHER_KEY] = publisher or RecordingPublisher()
    app[SETTINGS_KEY] = settings
    app[BUS_KEY] = bus
    app[SIMULATOR_KEY] = simulator
    app[STORE_KEY] = unstarted_store(settings.db_path)
    app.cleanup_ctx.append(serve_store)  # before the dashboard's: it writes through the store
    if before is not None:
        before(app)
    setup_web(app, login_failure_delay_s=0.05)
    return app


@asynccontextmanager
async def serve_web(
    tmp_path: Path, before: Callable[[web.Application], None] | None = None
) -> AsyncIterator[WebEnv]:
    """The dashboard served by a test client (``before``: installed ahead of it, e.g. the
    REST API as ingest's app has it); closed at the end."""
    settings = make_settings(tmp_path)
    bus = Bus()
    simulator, publisher = RecordingSimulator(settings.db_path, bus), RecordingPublisher()
    app = make_app(settings, bus, simulator, publisher, before=before)
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield WebEnv(app, client, settings, bus, simulator, publisher)
    finally:
        await client.close()


@pytest.fixture
async def webenv(tmp_path: Path) -> AsyncIterator[WebEnv]:
    async with serve_web(tmp_path) as env:
        yield env


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium (``tests/web/browser.py``), closed after the test."""
    from playwright.async_api import async_playwright

    from tests.web.browser import CHROMIUM

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()
