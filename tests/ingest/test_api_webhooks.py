"""REST API, webhook signature, and the polling fallback, against the running service."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edgeorder import protocol as p
from edgeorder.ingest.orders.state_sync import parse_webhook, refusal
from edgeorder.ingest.store.db import connect, open_db
from edgeorder.ingest.web import create_api_token
from edgeorder.kit.signing import sign as signature
from tests.ingest.support import (
    Ingest,
    OrderCore,
    add_device,
    ingest_settings,
    press,
    status_is,
    wait_for,
)
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe

pytestmark = pytest.mark.integration


def test_signatures_and_timestamps_are_checked_exactly() -> None:
    body = b'{"Order":{"Id":3,"Status":{"Code":5}}}'
    t = 1_790_000_000
    good = signature("s3cret", body, t)
    assert good.startswith("sha256=")

    def why(secret: str, raw: bytes, sig: str | None, ts: str | None, now: float = t) -> object:
        return refusal(secret, raw, sig, ts, now=now, tolerance_s=300)

    assert why("s3cret", body, good, str(t)) is None
    assert why("s3cret", body, good, str(t), now=t + 300) is None  # at the edge: still fine
    assert why("s3cret", body + b" ", good, str(t)) == "bad_signature"
    assert why("other", body, good, str(t)) == "bad_signature"
    assert why("s3cret", body, good, str(t + 1)) == "bad_signature"  # the time is signed too
    assert why("", body, signature("", body, t), str(t)) == "no_secret"  # no secret, no trust
    assert why("s3cret", body, None, str(t)) == "unsigned"
    assert why("s3cret", body, good, None) == "unsigned"
    assert why("s3cret", body, good, str(t), now=t + 301) == "stale"  # replayed later
    assert why("s3cret", body, good, str(t), now=t - 301) == "stale"  # from the future
    for junk in ("-5", "1e9", "12.5", "١٢٣", "9" * 40, " 17"):
        assert why("s3cret", body, good, junk) == "bad_timestamp", junk
    assert parse_webhook(body) == ("3", p.State.SHIPPED, 5)
    assert parse_webhook(b'{"Order":{"Id":3,"Status":{"Code":99}}}') is None
    assert parse_webhook(b"junk") is None


async def test_the_webhook_refuses_a_bad_signature_and_applies_a_good_one(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "hook-01")
    event = press("hook-01")
    probe.publish(p.device_topic("hook-01", p.Channel.EVENTS), p.encode(event))
    ordered = await wait_for(probe, status_is("hook-01", event.event_id, "ordered"))
    order_id = json.loads(ordered[0].payload)["order_id"]
    body = json.dumps(
        {
            "Id": 1,
            "Event": "order/paid",
            "CreatedOn": "2026-11-23T00:00:00Z",
            "Order": {
                "Id": int(order_id),
                "Status": {"Code": 2, "Label": "Paid"},
                "Device": {"Id": "hook-01"},
            },
        }
    ).encode()
    url = ingest.url + "/webhooks/ordercore"
    secret, now = ingest.service.webhook_secret, int(time.time())

    def signed(key: str, at: int) -> dict[str, str]:
        return {"X-Edgeorder-Signature": signature(key, body, at), "X-Edgeorder-Timestamp": str(at)}

    refused = [
        ("bad_signature", signed("guess", now)),
        ("stale", signed(secret, now - 3600)),  # a capture replayed an hour later
        ("unsigned", {"X-Edgeorder-Signature": signature(secret, body, now)}),
        ("unsigned", {}),
    ]
    async with aiohttp.ClientSession() as http:
        for reason, headers in refused:
            async with http.post(url, data=body, headers=headers) as resp:
                assert resp.status == 401, reason
                assert (await resp.json())["Error"] == reason
        async with http.post(url, data=body, headers=signed(secret, now)) as resp:
            assert resp.status == 200
            assert (await resp.json())["applied"] == 1
    await wait_for(probe, status_is("hook-01", event.event_id, "paid"))
    _, text = await ingest.get("/metrics")
    for reason, count in (("bad_signature", 1), ("stale", 1), ("unsigned", 2)):
        line = (
            f'edgeorder_ingest_webhooks_total{{outcome="{reason}",platform="ordercore"}} {count}.0'
        )
        assert line in text, reason


@pytest.fixture
async def deaf_ingest(
    ingest_dir: Path, mosquitto: MosquittoServer, ordercore: OrderCore
) -> AsyncIterator[Ingest]:
    """ingest whose webhook URL the order core cannot reach: only polling tells it."""
    settings = ingest_settings(
        ingest_dir, mosquitto.url, ordercore.url, public_url="http://127.0.0.1:9/unreachable"
    )
    running = await Ingest(settings).start()
    yield running
    await running.stop()


async def test_polling_catches_a_change_the_webhook_missed(
    deaf_ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "poll-01")
    event = press("poll-01")
    probe.publish(p.device_topic("poll-01", p.Channel.EVENTS), p.encode(event))
    ordered = await wait_for(probe, status_is("poll-01", event.event_id, "ordered"))
    order_id = json.loads(ordered[0].payload)["order_id"]
    await ordercore.call("POST", f"/api/order/{order_id}/ship")
    assert await deaf_ingest.service.sync.poll_once() == 1
    await wait_for(probe, status_is("poll-01", event.event_id, "shipped"))
    assert await deaf_ingest.service.sync.poll_once() == 0  # nothing moved since


async def api(
    ingest: Ingest, method: str, path: str, token: str | None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, ingest.url + path, json=body) as resp,
    ):
        text = await resp.text()
        return resp.status, json.loads(text) if text and "json" in resp.content_type else text


async def test_rest_api_devices_events_orders_buffer(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    db = open_db(ingest_dir / "ingest.db")
    token = create_api_token(db, "tests")
    db.conn.close()
    status, _ = await api(ingest, "GET", "/api/devices", None)
    assert status == 401
    status, doc = await api(ingest, "GET", "/api/openapi.json", token)
    assert status == 200
    assert "/api/devices" in doc["paths"]
    assert "/api/buffer" in doc["paths"]

    mapping = {"single": {"type": "reorder", "sku": "COFFEE-1KG", "quantity": 1}}
    status, created = await api(
        ingest, "POST", "/api/devices", token, {"device_id": "api-01", "mapping": mapping}
    )
    assert status == 201
    assert created["password"] in created["firmware_config"]
    status, bad = await api(
        ingest, "POST", "/api/devices", token, {"device_id": "no spaces", "mapping": mapping}
    )
    assert status == 422
    assert bad["Fields"]
    status, _ = await api(
        ingest, "POST", "/api/devices", token, {"device_id": "api-01", "mapping": mapping}
    )
    assert status == 409

    event = press("api-01")  # the device cache learnt api-01 from the bus notice
    probe.publish(p.device_topic("api-01", p.Channel.EVENTS), p.encode(event))
    await wait_for(probe, status_is("api-01", event.event_id, "ordered"))
    status, events = await api(ingest, "GET", "/api/events?device=api-01", token)
    assert [e["event_id"] for e in events["Data"]] == [event.event_id]
    status, one = await api(ingest, "GET", f"/api/events/api-01/{event.event_id}", token)
    assert [h["state"] for h in one["history"]] == ["accepted", "ordered"]
    status, orders = await api(ingest, "GET", "/api/orders?device=api-01", token)
    assert [o["event_id"] for o in orders["Data"]] == [event.event_id]
    status, buffer = await api(ingest, "GET", "/api/buffer", token)
    assert buffer["Data"] == []

    status, patched = await api(ingest, "PATCH", "/api/devices/api-01", token, {"enabled": False})
    assert patched["enabled"] is False
    status, _ = await api(ingest, "DELETE", "/api/devices/api-01", token)
    assert status == 204
    status, _ = await api(ingest, "GET", "/api/devices/api-01", token)
    assert status == 404
    # Every REST write is audited with the token's name, not a generic "api".
    conn = connect(ingest_dir / "ingest.db", readonly=True)
    audit = conn.execute("SELECT actor, action FROM audit WHERE device_id = 'api-01'").fetchall()
    conn.close()
    assert audit == [
        ("token:tests", "device.add"),
        ("token:tests", "device.disable"),
        ("token:tests", "device.remove"),
    ]


@pytest.fixture
async def patient_ingest(
    ingest_dir: Path, mosquitto: MosquittoServer, ordercore: OrderCore
) -> AsyncIterator[Ingest]:
    """ingest that waits ten minutes between attempts: only "retry now" brings it back."""
    settings = ingest_settings(
        ingest_dir, mosquitto.url, ordercore.url, retry_base_s=600, retry_max_s=600
    )
    running = await Ingest(settings).start()
    yield running
    await running.stop()


async def test_operator_can_retry_and_discard_buffered_orders(
    patient_ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    ingest = patient_ingest
    db = open_db(ingest_dir / "ingest.db")
    token = create_api_token(db, "tests")
    db.conn.close()
    add_device(ingest_dir, "buf-01", allow_parallel=True)
    await ordercore.stop()
    keep, drop = press("buf-01", seq=1), press("buf-01", seq=2)
    for event in (keep, drop):
        probe.publish(p.device_topic("buf-01", p.Channel.EVENTS), p.encode(event))
    await wait_for(probe, lambda m: json.loads(m.payload)["state"] == "queued", count=2)
    _, buffer = await api(ingest, "GET", "/api/buffer", token)
    rows = {r["event_id"]: r["id"] for r in buffer["Data"]}
    status, _ = await api(ingest, "POST", f"/api/buffer/{rows[drop.event_id]}/discard", token)
    assert status == 200
    status, _ = await api(ingest, "POST", f"/api/buffer/{rows[drop.event_id]}/discard", token)
    assert status == 409
    (told,) = await wait_for(probe, status_is("buf-01", drop.event_id, "failed"))
    assert json.loads(told.payload)["reason"] == "discarded by an operator"
    await ordercore.start()
    status, _ = await api(ingest, "POST", f"/api/buffer/{rows[keep.event_id]}/retry", token)
    assert status == 200
    await wait_for(probe, status_is("buf-01", keep.event_id, "ordered"))
    assert [o["OrderItems"][0]["Sku"] for o in await ordercore.orders("buf-01")] == ["COFFEE-1KG"]
    conn = connect(ingest_dir / "ingest.db", readonly=True)
    audit = conn.execute("SELECT actor, action FROM audit WHERE action LIKE 'outbox.%'").fetchall()
    conn.close()
    assert audit == [("token:tests", "outbox.discard"), ("token:tests", "outbox.retry_now")]
