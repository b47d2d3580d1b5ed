"""The dashboard's pages and actions over real HTTP, on a real SQLite file and bus."""

from __future__ import annotations

import base64
import re
import sqlite3
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager

from edgeorder.ingest.bus import Notice
from edgeorder.ingest.domain.credentials import verify_password
from edgeorder.ingest.store.db import connect
from tests.web.conftest import WebEnv
from tests.web.support import add_device, record_event, record_rejection, set_presence


@contextmanager
def reader(env: WebEnv) -> Iterator[sqlite3.Connection]:
    conn = connect(env.db_path, readonly=True)
    try:
        yield conn
    finally:
        conn.close()


async def test_fleet_page_lists_devices_and_totals_without_javascript(webenv: WebEnv) -> None:
    add_device(webenv.db_path, "kitchen-01")
    add_device(webenv.db_path, "garage-02", env="dev")
    set_presence(webenv.db_path, "kitchen-01", True, fw="1.4.0")
    record_event(webenv.db_path, "kitchen-01", state="ordered", order_id="42")
    record_rejection(webenv.db_path, "garage-02")
    await webenv.login()
    html = await (await webenv.client.get("/")).text()
    kitchen = re.search(r'<tr id="dev-kitchen-01".*?</tr>', html, re.S)
    assert kitchen is not None
    assert 'data-online="1"' in kitchen.group(0)
    assert "1.4.0" in kitchen.group(0)
    assert "#42" in kitchen.group(0)
    assert re.search(r'data-total="online">.*?1/2<', html)
    assert re.search(r'data-total="orders-today">.*?>1<', html)
    assert re.search(r'data-total="rejected-today">.*?>1<', html)
    assert "<svg" in html  # the 24 h chart is inline
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


async def test_fleet_filters_by_query_string(webenv: WebEnv) -> None:
    add_device(webenv.db_path, "kitchen-01")
    add_device(webenv.db_path, "garage-02", env="dev")
    set_presence(webenv.db_path, "kitchen-01", True)
    await webenv.login()
    html = await (await webenv.client.get("/?online=1")).text()
    assert 'id="dev-kitchen-01"' in html
    assert 'id="dev-garage-02"' not in html
    html = await (await webenv.client.get("/?env=dev&q=garage")).text()
    assert 'id="dev-garage-02"' in html
    assert 'id="dev-kitchen-01"' not in html


async def test_device_page_shows_timeline(webenv: WebEnv) -> None:
    add_device(webenv.db_path, "kitchen-01")
    _, event_id = record_event(
        webenv.db_path, "kitchen-01", state="ordered", order_id="77", order_state="paid"
    )
    await webenv.login()
    resp = await webenv.client.get("/devices/kitchen-01")
    html = await resp.text()
    assert resp.status == 200
    event = re.search(rf'data-event="{event_id}".*?</li>\s*</ol></li>', html, re.S)
    assert event is not None
    assert "#77" in event.group(0)
    assert 'data-state="paid"' in event.group(0)
    assert event.group(0).index('data-state="accepted"') < event.group(0).rindex(
        'data-state="ordered"'
    )
    assert (await webenv.client.get("/devices/nobody")).status == 404


async def test_press_only_for_simulated_devices(webenv: WebEnv) -> None:
    add_device(webenv.db_path, "sim-01", simulated=True)
    add_device(webenv.db_path, "real-01")
    webenv.simulator.devices.add("sim-01")
    await webenv.login()
    html = await (await webenv.client.get("/devices/sim-01")).text()
    assert 'action="/devices/sim-01/press"' in html
    html = await (await webenv.client.get("/devices/real-01")).text()
    assert "/press" not in html
    resp = await webenv.post("/devices/sim-01/press", click="double")
    assert resp.status == 303
    assert webenv.simulator.presses == [("sim-01", "double")]
    assert (await webenv.post("/devices/real-01/press", click="single")).status == 404
    assert (await webenv.post("/devices/sim-01/press", click="triple")).status == 400
    assert webenv.simulator.presses == [("sim-01", "double")]


async def test_mapping_edit_is_saved_and_pushed(webenv: WebEnv) -> None:
    add_device(webenv.db_path, "kitchen-01")
    await webenv.login()
    async with webenv.bus.subscribe() as notices:
        resp = await webenv.post(
            "/devices/kitchen-01/mapping",
            single_type="reorder",
            single_sku="TEA-500G",
            single_quantity="3",
            double_type="none",
            long_type="cancel_last",
        )
        assert resp.status == 303
        assert (await notices.get()).kind == "device"
    assert webenv.publisher.pushed == ["kitchen-01"]
    with reader(webenv) as conn:
        mapping, version = conn.execute("SELECT mapping, config_version FROM devices").fetchone()
    assert '"sku":"TEA-500G"' in mapping
    assert '"quantity":3' in mapping
    assert version == 2
    resp = await webenv.post(
        "/devices/kitchen-01/mapping",
        single_type="reorder",
        single_sku="",
        double_type="none",
        long_type="none",
    )
    assert resp.status == 400
    assert "a reorder needs a SKU" in await resp.text()
    assert webenv.publisher.pushed == ["kitchen-01"]


async def test_env_toggle_and_enable(webenv: WebEnv) -> None:
    add_device(webenv.db_path, "kitchen-01")
    await webenv.login()
    assert (await webenv.post("/devices/kitchen-01/env", env="dev")).status == 303
    assert (await webenv.post("/devices/kitchen-01/enabled", enabled="0")).status == 303
    with reader(webenv) as conn:
        assert conn.execute("SELECT env, enabled FROM devices").fetchone() == ("dev", 0)
    assert webenv.publisher.pushed == ["kitchen-01"]
    assert (await webenv.post("/devices/kitchen-01/env", env="staging")).status == 400


async def test_rotate_shows_the_new_password_once(webenv: WebEnv) -> None:
    old = add_device(webenv.db_path, "kitchen-01")
    await webenv.login()
    resp = await webenv.post("/devices/kitchen-01/rotate")
    assert resp.status == 200
    match = re.search(r'<code id="new-password">([^<]+)</code>', await resp.text())
    assert match is not None
    new = match.group(1)
    with reader(webenv) as conn:
        (hashed,) = conn.execute("SELECT mqtt_hash FROM devices").fetchone()
    assert verify_password(hashed, new)
    assert not verify_password(hashed, old)
    assert new not in await (await webenv.client.get("/devices/kitchen-01")).text()


async def test_provisioning_shows_credentials_and_firmware_config(webenv: WebEnv) -> None:
    await webenv.login()
    resp = await webenv.post(
        "/provision",
        device_id="hall-07",
        name="Hall",
        env="dev",
        single_type="reorder",
        single_sku="SOAP",
        single_quantity="2",
        double_type="none",
        long_type="cancel_last",
    )
    assert resp.status == 200
    html = await resp.text()
    password = re.search(r'<code id="new-password">([^<]+)</code>', html)
    link = re.search(
        r'id="toml-download" download="hall-07.toml" '
        r'href="data:application/toml;base64,([^"]+)"',
        html,
    )
    assert password is not None
    assert link is not None
    config = tomllib.loads(base64.b64decode(link.group(1)).decode())
    assert config["device_id"] == "hall-07"
    assert config["mqtt"]["username"] == "hall-07"
    assert config["mqtt"]["password"] == password.group(1)
    assert config["mqtt"]["url"] == webenv.settings.mqtt_url
    with reader(webenv) as conn:
        env, hashed = conn.execute("SELECT env, mqtt_hash FROM devices").fetchone()
    assert env == "dev"
    assert verify_password(hashed, password.group(1))
    assert webenv.publisher.pushed == ["hall-07"]
    again = await webenv.post(
        "/provision", device_id="hall-07", single_type="none", double_type="none", long_type="none"
    )
    assert again.status == 409
    bad = await webenv.post("/provision", device_id="no spaces!", single_type="none")
    assert bad.status == 400
    assert "invalid device id" in await bad.text()


async def test_buffer_retry_and_discard_are_audited(webenv: WebEnv) -> None:
    add_device(webenv.db_path, "kitchen-01")
    record_event(
        webenv.db_path,
        "kitchen-01",
        state="queued",
        pending=True,
        last_error="connect refused",
        at="2026-01-01T00:00:00.000Z",
    )
    second, event_id = record_event(webenv.db_path, "kitchen-01", state="queued", pending=True)
    await webenv.login()
    html = await (await webenv.client.get("/buffer")).text()
    assert "connect refused" in html
    assert html.count("data-outbox=") == 2
    assert 'data-confirm="Discard' in html
    with reader(webenv) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM order_outbox ORDER BY id")]
    retried = await webenv.post(f"/buffer/{ids[0]}/retry")
    assert retried.status == 303
    assert retried.headers["Location"] == f"/buffer?retry={ids[0]}"
    assert (await webenv.post(f"/buffer/{ids[1]}/discard")).status == 303
    html = await (await webenv.client.get(f"/buffer?discard={ids[1]}")).text()
    assert f"Order #{ids[1]} was discarded." in html
    assert (await webenv.post(f"/buffer/{ids[1]}/discard")).status == 404
    with reader(webenv) as conn:
        due = conn.execute(
            "SELECT next_attempt_at FROM order_outbox WHERE id = ?", (ids[0],)
        ).fetchone()[0]
        state = conn.execute("SELECT state FROM order_outbox WHERE id = ?", (ids[1],)).fetchone()
        inbox_state = conn.execute("SELECT state FROM inbox WHERE id = ?", (second,)).fetchone()
        audit = conn.execute(
            "SELECT actor, action, event_id FROM audit WHERE action LIKE 'outbox.%' ORDER BY id"
        ).fetchall()
    assert due > "2026-01-01T00:00:00.000Z"
    assert state == ("discarded",)
    assert inbox_state == ("failed",)
    assert audit[0][:2] == ("admin", "outbox.retry_now")
    assert audit[1] == ("admin", "outbox.discard", event_id)
    html = await (await webenv.client.get("/buffer")).text()
    assert html.count("data-outbox=") == 1


async def test_live_stream_forwards_bus_notices(webenv: WebEnv) -> None:
    await webenv.login()
    resp = await webenv.client.get("/live")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    hello = await resp.content.readuntil(b"\n\n")
    assert b"event: hello" in hello  # sent once the stream is subscribed to the bus
    webenv.bus.publish(Notice("presence", "kitchen-01", {"online": True}))
    frame = await resp.content.readuntil(b"\n\n")
    assert frame == b'event: notice\ndata: {"kind":"presence","device_id":"kitchen-01"}\n\n'
    resp.close()


async def test_shutdown_ends_open_live_streams(webenv: WebEnv) -> None:
    await webenv.login()
    resp = await webenv.client.get("/live")
    assert b"event: hello" in await resp.content.readuntil(b"\n\n")
    await webenv.app.shutdown()  # what AppRunner.cleanup runs before waiting for handlers
    assert await resp.content.read() == b""  # the stream ended instead of hanging
    assert webenv.bus.subscriber_count == 0


async def test_bad_ids_are_clear_errors(webenv: WebEnv) -> None:
    await webenv.login()
    assert (await webenv.post("/buffer/99999999999999999999999/retry")).status == 404
    assert (await webenv.post("/buffer/5/discard")).status == 404
    assert (await webenv.post("/devices/nobody/enabled", enabled="0")).status == 404
    assert (await webenv.post("/devices/nobody/mapping", single_type="none")).status == 404
    assert (await webenv.post("/devices/nobody/rotate")).status == 404
