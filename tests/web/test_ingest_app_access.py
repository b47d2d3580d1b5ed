"""Access control on the real ``ingest.app.create_app`` (REST API, webhooks, dashboard) running
against a real Mosquitto and the real order core: every route the app registers, now or
later, is checked."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from edgeorder.ingest.web.access import is_public_path
from tests.ingest.support import Ingest, OrderCore, ingest_settings
from tests.support.mosquitto import MosquittoServer
from tests.web.support import ADMIN_PASSWORD
from tests.web.test_access import concrete_routes

pytestmark = pytest.mark.integration


@pytest.fixture
async def ingest_app(tmp_path: Path, mosquitto: MosquittoServer) -> AsyncIterator[Ingest]:
    core = await OrderCore(tmp_path / "ordercore").start()
    settings = ingest_settings(
        tmp_path / "ingest", mosquitto.url, core.url, admin_password=SecretStr(ADMIN_PASSWORD)
    )
    running = await Ingest(settings).start()
    try:
        yield running
    finally:
        await running.stop()
        await core.stop()


async def test_every_route_of_the_ingest_app_is_guarded(ingest_app: Ingest) -> None:
    assert ingest_app._runner is not None
    routes = concrete_routes(ingest_app._runner.app)
    protected = [(m, p) for m, p in routes if not is_public_path(p)]
    assert any(p.startswith("/api/") for _, p in protected)
    assert any(not p.startswith("/api/") for _, p in protected)
    async with aiohttp.ClientSession() as anonymous:
        for method, path in protected:
            async with anonymous.request(
                method, ingest_app.url + path, allow_redirects=False
            ) as resp:
                if path.startswith("/api/"):
                    assert resp.status == 401, (method, path, resp.status)
                else:
                    assert resp.status == 303, (method, path, resp.status)
                    assert resp.headers["Location"].startswith("/login")
        async with anonymous.get(ingest_app.url + "/metrics") as resp:
            assert resp.status == 200  # public, as the issue asks

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as operator:
        async with operator.post(
            ingest_app.url + "/login", data={"username": "admin", "password": ADMIN_PASSWORD}
        ) as resp:
            page = await resp.text()
        assert resp.status == 200
        assert re.search(r'data-csrf="[^"]+"', page)
        unsafe = [(m, p) for m, p in protected if m not in ("GET", "HEAD", "OPTIONS")]
        assert any(p.startswith("/api/") for _, p in unsafe)
        for method, path in unsafe:
            async with operator.request(
                method, ingest_app.url + path, json={}, allow_redirects=False
            ) as resp:
                assert resp.status == 403, (method, path, resp.status)
        async with operator.get(ingest_app.url + "/api/devices") as resp:
            assert resp.status == 200  # the session opens the REST API too


async def test_a_bulk_form_of_a_thousand_devices_reaches_the_bulk_rules(ingest_app: Ingest) -> None:
    """One form field per device ticked: a thousand of them (the bulk limit) and the form's own
    fields are read, and the action is judged (here: refused, naming the unknown devices), not
    cut off by the HTTP layer's field limit."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as operator:
        async with operator.post(
            ingest_app.url + "/login", data={"username": "admin", "password": ADMIN_PASSWORD}
        ) as resp:
            match = re.search(r'data-csrf="([^"]+)"', await resp.text())
        assert match is not None
        form = [("csrf_token", match.group(1)), ("action", "disable"), ("back", "/")]
        form += [("device", f"nobody-{i:04d}") for i in range(1000)]
        async with operator.post(
            ingest_app.url + "/devices/bulk", data=form, allow_redirects=False
        ) as resp:
            assert resp.status == 400, await resp.text()
            assert "Nothing changed" in await resp.text()
