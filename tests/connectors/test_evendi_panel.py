"""The device page's e-vendi section, through the real dashboard (session, CSRF, SQLite)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edgeorder.ingest.bus import Bus
from edgeorder.ingest.connectors.settings import ConnectorSettings
from edgeorder.ingest.store import evendi_assignments as book
from edgeorder.ingest.store.db import open_db
from tests.web.conftest import WebEnv, make_app, make_settings
from tests.web.support import RecordingPublisher, RecordingSimulator, add_device


async def _env(tmp_path: Path, kind: str) -> WebEnv:
    connector = ConnectorSettings(kind=kind, options={"organization_external_id": "1001"})
    settings = make_settings(tmp_path, connector=connector)
    bus = Bus()
    simulator, publisher = RecordingSimulator(settings.db_path, bus), RecordingPublisher()
    app = make_app(settings, bus, simulator, publisher)
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    return WebEnv(app, client, settings, bus, simulator, publisher)


@pytest.fixture
async def evendi_web(tmp_path: Path) -> AsyncIterator[WebEnv]:
    env = await _env(tmp_path, "evendi")
    try:
        yield env
    finally:
        await env.client.close()


def queue(db_path: Path) -> list[tuple[str, str, str | None]]:
    db = open_db(db_path)
    try:
        rows = book.list_assignments(db.conn, device_id="kiosk-1")
        return [(r["order_id"], r["state"], r["sku"]) for r in reversed(rows)]
    finally:
        db.conn.close()


async def test_the_operator_queues_withdraws_and_requeues_on_the_device_page(
    evendi_web: WebEnv,
) -> None:
    env = evendi_web
    add_device(env.db_path, "kiosk-1")
    await env.login()
    page = await (await env.client.get("/devices/kiosk-1")).text()
    assert "No e-vendi order is queued: a press is rejected." in page

    resp = await env.post("/devices/kiosk-1/evendi/assign", order_id="PED-1", note="café")
    assert (resp.status, resp.headers["Location"]) == (303, "/devices/kiosk-1#evendi")
    await env.post("/devices/kiosk-1/evendi/assign", order_id="PED-2", sku="COFFEE-1KG")
    assert queue(env.db_path) == [("PED-1", "pending", None), ("PED-2", "pending", "COFFEE-1KG")]
    again = await env.post("/devices/kiosk-1/evendi/assign", order_id="PED-1")
    assert again.status == 400
    assert "already assigned" in await again.text()
    assert (await env.post("/devices/kiosk-1/evendi/assign", order_id="  ")).status == 400
    assert (await env.post("/devices/ghost/evendi/assign", order_id="PED-3")).status == 404

    page = await (await env.client.get("/devices/kiosk-1")).text()
    assert "<code>PED-1</code>" in page
    assert "café" in page
    first = book_id(env.db_path, "PED-1")
    assert (await env.post(f"/devices/kiosk-1/evendi/{first}/withdraw")).status == 303
    assert (await env.post(f"/devices/kiosk-1/evendi/{first}/requeue")).status == 400
    assert queue(env.db_path)[0] == ("PED-1", "withdrawn", None)
    add_device(env.db_path, "kiosk-2")
    other = book_id(env.db_path, "PED-2")
    assert (await env.post(f"/devices/kiosk-2/evendi/{other}/withdraw")).status == 404

    no_csrf = await env.client.post(
        "/devices/kiosk-1/evendi/assign", data={"order_id": "PED-9"}, allow_redirects=False
    )
    assert no_csrf.status == 403
    assert [o for o, _, _ in queue(env.db_path)] == ["PED-1", "PED-2"]
    db = open_db(env.db_path)
    try:
        actors = db.execute("SELECT DISTINCT actor FROM audit WHERE action LIKE 'evendi.%'")
        assert [a[0] for a in actors.fetchall()] == ["admin"]
    finally:
        db.conn.close()


def book_id(db_path: Path, order_id: str) -> int:
    db = open_db(db_path)
    try:
        row = db.execute("SELECT id FROM evendi_assignments WHERE order_id = ?", [order_id])
        return int(row.fetchone()[0])
    finally:
        db.conn.close()


async def test_other_platforms_show_no_e_vendi_section(tmp_path: Path) -> None:
    env = await _env(tmp_path, "ordercore")
    try:
        add_device(env.db_path, "kiosk-1")
        await env.login()
        page = await (await env.client.get("/devices/kiosk-1")).text()
        assert "e-vendi orders" not in page
    finally:
        await env.client.close()
