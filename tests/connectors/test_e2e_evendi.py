"""A press through ingest to the fake e-vendi over real HTTP: the device's next assigned order is
closed exactly once, across lost replies, retries and redeliveries; none left is ``rejected``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edgeorder import protocol as p
from edgeorder.ingest.connectors.settings import ConnectorSettings
from edgeorder.ingest.store import evendi_assignments
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.web import create_api_token
from tests.connectors.conftest import start_ingest
from tests.connectors.fake_evendi import ORG, TOKEN, FakeEvendi
from tests.ingest.support import Ingest, add_device, press, status_is, wait_for
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe

pytestmark = pytest.mark.integration


@pytest.fixture
async def ingest(
    ingest_dir: Path, mosquitto: MosquittoServer, evendi: FakeEvendi
) -> AsyncIterator[Ingest]:
    connector = ConnectorSettings(
        kind="evendi",
        base_url=evendi.url,
        token=TOKEN,
        timeout_s=0.5,
        options={"organization_external_id": ORG},
    )
    running = await start_ingest(ingest_dir, mosquitto, connector)
    yield running
    await running.stop()


def assign(data_dir: Path, device_id: str, *order_ids: str) -> None:
    db = open_db(data_dir / "ingest.db")
    try:
        for order_id in order_ids:
            evendi_assignments.assign(db.conn, device_id, order_id, actor="test")
    finally:
        db.conn.close()


def assignments(data_dir: Path) -> dict[str, str]:
    db = open_db(data_dir / "ingest.db")
    try:
        return {r["order_id"]: r["state"] for r in evendi_assignments.list_assignments(db.conn)}
    finally:
        db.conn.close()


def orders(data_dir: Path) -> list[tuple[str, str, int]]:
    db = open_db(data_dir / "ingest.db")
    try:
        rows = db.execute("SELECT order_id, state, settled FROM orders ORDER BY created_at")
        return [(r[0], r[1], r[2]) for r in rows.fetchall()]
    finally:
        db.conn.close()


async def send(probe: MqttProbe, event: p.Event) -> None:
    probe.publish(p.device_topic(event.device_id, p.Channel.EVENTS), p.encode(event))


async def ordered_id(probe: MqttProbe, event: p.Event) -> str:
    got = await wait_for(probe, status_is(event.device_id, event.event_id, "ordered"))
    return str(json.loads(got[0].payload)["order_id"])


@pytest.mark.parametrize("mode", ["drop", "stall"])
async def test_each_press_closes_the_next_assigned_order_exactly_once(
    ingest: Ingest, ingest_dir: Path, evendi: FakeEvendi, probe: MqttProbe, mode: str
) -> None:
    add_device(ingest_dir, "ev-01")
    assign(ingest_dir, "ev-01", "PED-7", "PED-8")
    evendi.lose("POST", "/api/closeOrder", mode=mode)  # type: ignore[arg-type]

    first = press("ev-01")
    await send(probe, first)
    await wait_for(probe, status_is("ev-01", first.event_id, "queued"))
    assert await ordered_id(probe, first) == "PED-7"
    assert evendi.lost == 1
    assert evendi.closes == ["PED-7"]  # the lost call did it; the retry did not do it again

    second = press("ev-01", seq=2)  # settled: no throttle
    await send(probe, second)
    assert await ordered_id(probe, second) == "PED-8"

    third = press("ev-01", seq=3)
    await send(probe, third)
    rejected = await wait_for(probe, status_is("ev-01", third.event_id, "rejected"))
    assert (
        "no pending e-vendi order is assigned to device ev-01"
        in json.loads(rejected[0].payload)["reason"]
    )

    cancel = press("ev-01", p.Click.LONG, seq=4)  # a settled order is not a button's to cancel
    await send(probe, cancel)
    refused = await wait_for(probe, status_is("ev-01", cancel.event_id, "rejected"))
    assert json.loads(refused[0].payload)["reason"] == "no order to cancel within the cancel window"

    await send(probe, first)  # a redelivery answers its state and closes nothing
    await wait_for(probe, status_is("ev-01", first.event_id, "ordered"), count=2)
    assert evendi.closes == ["PED-7", "PED-8"]
    assert evendi.closed == {"PED-7": "Prod", "PED-8": "Prod"}
    assert assignments(ingest_dir) == {"PED-7": "closed", "PED-8": "closed"}
    assert orders(ingest_dir) == [("PED-7", "ordered", 1), ("PED-8", "ordered", 1)]
    _, metrics = await ingest.get("/metrics")
    assert 'edgeorder_ingest_events_rejected_total{reason="no_assigned_order"} 1.0' in metrics


async def test_a_press_while_a_close_is_in_flight_is_throttled(
    ingest: Ingest, ingest_dir: Path, evendi: FakeEvendi, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "ev-02", env="dev")
    assign(ingest_dir, "ev-02", "PED-7", "PED-8")
    evendi.stall_next = True  # the first close hangs (then times out and is retried)
    first, second = press("ev-02"), press("ev-02", seq=2)
    await send(probe, first)
    await wait_for(probe, status_is("ev-02", first.event_id, "accepted"))
    await send(probe, second)
    await wait_for(probe, status_is("ev-02", second.event_id, "throttled"))
    assert await ordered_id(probe, first) == "PED-7"
    assert evendi.closed == {"PED-7": "Dev"}  # a dev device closes in the seed table's Dev
    assert assignments(ingest_dir) == {"PED-7": "closed", "PED-8": "pending"}


async def test_a_parallel_device_closes_a_different_order_per_press(
    ingest: Ingest, ingest_dir: Path, evendi: FakeEvendi, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "ev-03", allow_parallel=True)
    assign(ingest_dir, "ev-03", "PED-7", "PED-8", "PED-9")
    events = [press("ev-03", seq=n) for n in range(3)]
    for event in events:
        await send(probe, event)
    ids = {await ordered_id(probe, event) for event in events}
    assert ids == {"PED-7", "PED-8", "PED-9"}
    assert sorted(evendi.closes) == ["PED-7", "PED-8", "PED-9"]
    assert len(orders(ingest_dir)) == 3


async def test_a_refused_close_fails_the_press_and_the_assignment(
    ingest: Ingest, ingest_dir: Path, evendi: FakeEvendi, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "ev-04")
    assign(ingest_dir, "ev-04", "PED-GONE", "PED-8")
    first = press("ev-04")
    await send(probe, first)
    failed = await wait_for(probe, status_is("ev-04", first.event_id, "failed"))
    assert "success: false" in json.loads(failed[0].payload)["reason"]
    second = press("ev-04", seq=2)
    await send(probe, second)
    assert await ordered_id(probe, second) == "PED-8"
    assert assignments(ingest_dir) == {"PED-GONE": "failed", "PED-8": "closed"}


async def api(
    ingest: Ingest, method: str, path: str, token: str | None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, ingest.url + path, data=data) as resp,
    ):
        text = await resp.text()
        return resp.status, json.loads(text) if text and "json" in resp.content_type else text


async def test_the_operator_assigns_through_the_rest_api(
    ingest: Ingest, ingest_dir: Path, evendi: FakeEvendi, probe: MqttProbe
) -> None:
    db = open_db(ingest_dir / "ingest.db")
    token = create_api_token(db, "tests")
    db.conn.close()
    add_device(ingest_dir, "ev-05")
    base = "/api/evendi/assignments"
    anonymous = await api(ingest, "POST", base, None, {"device_id": "ev-05", "order_id": "X"})
    assert anonymous[0] == 401

    status, row = await api(
        ingest, "POST", base, token, {"device_id": "ev-05", "order_id": "PED-7", "note": "café"}
    )
    assert (status, row["state"], row["created_by"]) == (201, "pending", "token:tests")
    for body, expected in [
        ({"device_id": "ev-05", "order_id": "PED-7"}, 409),  # assigned once
        ({"device_id": "ghost", "order_id": "PED-8"}, 404),
        ({"device_id": "ev-05", "order_id": "bad\u0000id"}, 422),
        ({"device_id": "ev-05", "order_id": ""}, 422),
        ({"device_id": "ev-05", "order_id": 7}, 422),
        ({"device_id": "ev-05", "order_id": "PED-8", "surprise": 1}, 422),
        (b"{not json", 422),
    ]:
        status, answer = await api(ingest, "POST", base, token, body)
        assert status == expected, (body, answer)
        assert answer["Error"]
    assert (await api(ingest, "GET", f"{base}?limit=0", token))[0] == 400
    assert (await api(ingest, "GET", f"{base}?state=lost", token))[0] == 400
    assert (await api(ingest, "GET", f"{base}/abc", token))[0] == 404
    assert (await api(ingest, "GET", f"{base}/999", token))[0] == 404
    assert (await api(ingest, "GET", f"{base}/\uff11", token))[0] == 404  # a fullwidth 1
    assert (await api(ingest, "POST", f"{base}/{row['id']}/requeue", token))[0] == 409
    status, listed = await api(ingest, "GET", f"{base}?device=ev-05&state=pending", token)
    assert [r["order_id"] for r in listed["Data"]] == ["PED-7"]
    _, doc = await api(ingest, "GET", "/api/openapi.json", token)
    assert "/api/evendi/assignments" in doc["paths"]

    event = press("ev-05")
    await send(probe, event)
    assert await ordered_id(probe, event) == "PED-7"
    status, closed = await api(ingest, "GET", f"{base}/{row['id']}", token)
    assert (closed["state"], closed["event_id"], closed["attempts"]) == (
        "closed",
        event.event_id,
        1,
    )
    assert (await api(ingest, "POST", f"{base}/{row['id']}/withdraw", token))[0] == 409
    status, row = await api(ingest, "POST", base, token, {"device_id": "ev-05", "order_id": "P9"})
    status, withdrawn = await api(ingest, "POST", f"{base}/{row['id']}/withdraw", token)
    assert (status, withdrawn["state"]) == (200, "withdrawn")
