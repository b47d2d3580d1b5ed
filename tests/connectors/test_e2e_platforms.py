"""A press through ingest (real Mosquitto, the outbox worker) to the fake Nuvemshop and OneEntry
over real HTTP: exactly one order across lost replies, retries, redeliveries and a restart;
Nuvemshop's signed webhooks move the order forward, never backwards."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edgeorder import protocol as p
from edgeorder.ingest.connectors.settings import ConnectorSettings
from edgeorder.ingest.store.db import open_db
from edgeorder.kit.signing import hex_digest
from tests.connectors.conftest import start_ingest
from tests.connectors.fake_nuvemshop import APP_SECRET, STORE_ID, TOKEN, FakeNuvemshop
from tests.connectors.fake_oneentry import (
    APP_TOKEN,
    MARKER,
    REFRESH_TOKEN,
    USER_TOKEN,
    FakeOneEntry,
)
from tests.ingest.support import Ingest, add_device, metric, press, status_is, wait_for
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe

pytestmark = pytest.mark.integration

PROFILE: dict[str, Any] = {
    "Customer": {"Name": "Maria Silva", "Email": "maria@example.com"},
    "Shipping": {
        "Address": {
            "Street": "Rua Doutor Azevedo Sampaio",
            "Number": "50",
            "City": "Sorocaba",
            "State": "São Paulo",
            "ZipCode": "18010220",
            "Country": "BR",
        }
    },
}


def nuvemshop_settings(fake: FakeNuvemshop) -> ConnectorSettings:
    return ConnectorSettings(
        kind="nuvemshop",
        base_url=fake.url,
        token=TOKEN,
        timeout_s=0.5,
        options={
            "store_id": STORE_ID,
            "variants": {"COFFEE-1KG": 101},
            "user_agent": "edgeorder (ops@shop.example)",
            "app_secret": APP_SECRET,
        },
    )


def oneentry_settings(fake: FakeOneEntry) -> ConnectorSettings:
    return ConnectorSettings(
        kind="oneentry",
        base_url=fake.url,
        token=APP_TOKEN,
        timeout_s=0.5,
        options={
            "marker": MARKER,
            "form_identifier": "bar-orders-form",
            "payment_account_identifier": "usd-payment",
            "test_payment_account_identifier": "cash",
            "products": {"COFFEE-1KG": 2957},
            "access_token": USER_TOKEN,
            "refresh_token": REFRESH_TOKEN,
            "status_map": {"paid": "paid"},
        },
    )


@pytest.fixture
async def nuvem_ingest(
    ingest_dir: Path, mosquitto: MosquittoServer, nuvemshop: FakeNuvemshop
) -> AsyncIterator[Ingest]:
    running = await start_ingest(
        ingest_dir, mosquitto, nuvemshop_settings(nuvemshop), default_profile=PROFILE
    )
    yield running
    await running.stop()


@pytest.fixture
async def oneentry_ingest(
    ingest_dir: Path, mosquitto: MosquittoServer, oneentry: FakeOneEntry
) -> AsyncIterator[Ingest]:
    running = await start_ingest(ingest_dir, mosquitto, oneentry_settings(oneentry))
    yield running
    await running.stop()


async def send(probe: MqttProbe, event: p.Event) -> None:
    probe.publish(p.device_topic(event.device_id, p.Channel.EVENTS), p.encode(event))


async def ordered_id(probe: MqttProbe, event: p.Event) -> str:
    got = await wait_for(probe, status_is(event.device_id, event.event_id, "ordered"))
    return str(json.loads(got[0].payload)["order_id"])


def states_of(probe: MqttProbe, event: p.Event) -> list[str]:
    out = []
    for m in probe.messages:
        body = json.loads(m.payload)
        if body.get("event_id") == event.event_id:
            out.append(body["state"])
    return out


def order_rows(data_dir: Path) -> list[tuple[str, str]]:
    db = open_db(data_dir / "ingest.db")
    try:
        return [(r[0], r[1]) for r in db.execute("SELECT order_id, state FROM orders").fetchall()]
    finally:
        db.conn.close()


# --- Nuvemshop ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["drop", "stall"])
async def test_nuvemshop_lost_reply_then_retry_is_one_order(
    nuvem_ingest: Ingest, ingest_dir: Path, nuvemshop: FakeNuvemshop, probe: MqttProbe, mode: str
) -> None:
    add_device(ingest_dir, "nv-01")
    nuvemshop.lose("POST", r"/orders$", mode=mode)  # type: ignore[arg-type]
    event = press("nv-01")
    await send(probe, event)
    order_id = await ordered_id(probe, event)
    assert nuvemshop.lost == 1
    assert list(nuvemshop.orders) == [int(order_id)]  # made once, found again by the retry
    assert len(nuvemshop.calls("POST")) == 1
    assert "queued" in states_of(probe, event)
    await send(probe, event)  # a redelivered press answers its state and orders nothing
    await wait_for(probe, status_is("nv-01", event.event_id, "ordered"), count=2)
    assert len(nuvemshop.orders) == 1
    assert order_rows(ingest_dir) == [(order_id, "ordered")]


async def test_nuvemshop_refusal_reaches_the_device_in_the_platforms_words(
    nuvem_ingest: Ingest, ingest_dir: Path, nuvemshop: FakeNuvemshop, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "nv-04")
    nuvemshop.forced.append((422, {"src": ["can't be blank"]}))  # the introduction's example
    event = press("nv-04")
    await send(probe, event)
    failed = await wait_for(probe, status_is("nv-04", event.event_id, "failed"))
    assert json.loads(failed[0].payload)["reason"] == "nuvemshop HTTP 422: src: can't be blank"
    assert nuvemshop.orders == {}


async def test_nuvemshop_restart_mid_call_is_one_order(
    ingest_dir: Path, mosquitto: MosquittoServer, nuvemshop: FakeNuvemshop, probe: MqttProbe
) -> None:
    """ingest stops while the platform holds the answer of an order it made: the next ingest
    looks before it creates."""
    add_device(ingest_dir, "nv-02")
    patient = nuvemshop_settings(nuvemshop).model_copy(update={"timeout_s": 60})
    first = await start_ingest(ingest_dir, mosquitto, patient, default_profile=PROFILE)
    nuvemshop.lose("POST", r"/orders$", mode="stall")
    event = press("nv-02")
    try:
        await send(probe, event)
        # the platform made the order; its answer is held while ingest stops
        await asyncio.wait_for(nuvemshop.reply_lost.wait(), 20)
    finally:
        await first.stop()
    second = await start_ingest(
        ingest_dir, mosquitto, nuvemshop_settings(nuvemshop), default_profile=PROFILE
    )
    try:
        order_id = await ordered_id(probe, event)
    finally:
        await second.stop()
    assert list(nuvemshop.orders) == [int(order_id)]
    assert [c.method for c in nuvemshop.seen] == ["POST", "GET"]  # the second looked first


async def test_nuvemshop_webhooks_verified_deduplicated_and_forward_only(
    nuvem_ingest: Ingest, ingest_dir: Path, nuvemshop: FakeNuvemshop, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "nv-03")
    event = press("nv-03")
    await send(probe, event)
    order_id = int(await ordered_id(probe, event))
    hook = nuvem_ingest.url + "/webhooks/nuvemshop"

    nuvemshop.orders[order_id]["payment_status"] = "paid"
    status, body = await nuvemshop.deliver(hook, "order/paid", order_id)
    assert (status, body["orders"]) == (200, {str(order_id): "applied"})
    await wait_for(probe, status_is("nv-03", event.event_id, "paid"))
    assert (await nuvemshop.deliver(hook, "order/paid", order_id))[1]["orders"] == {
        str(order_id): "unchanged"  # a redelivery changes nothing
    }
    nuvemshop.orders[order_id]["payment_status"] = "pending"  # an older view: not backwards
    assert (await nuvemshop.deliver(hook, "order/updated", order_id))[1]["orders"] == {
        str(order_id): "unchanged"
    }
    assert (await nuvemshop.deliver(hook, "order/created", 1))[1]["orders"] == {
        "1": "unknown_order"  # the store's other orders are none of ingest's business
    }
    assert (await nuvemshop.deliver(hook, "order/paid", order_id, secret="forged"))[0] == 401
    async with aiohttp.ClientSession() as http:
        async with http.post(hook, data=b"{}", headers={"X-Linkedstore-HMAC-SHA256": "00"}) as r:
            assert r.status == 401
        async with http.post(nuvem_ingest.url + "/webhooks/shopify", data=b"{}") as r:
            assert r.status == 404
        for body, expected in [
            (b"\xff\xfe not json", 400),
            (b'{"store_id": 817495, "event": "order/paid"}', 400),
            (b'{"store_id": 1, "event": "order/paid", "id": 5}', 200),  # another store
            (b'{"store_id": 817495, "event": "app/uninstalled", "id": 5}', 200),
            (b'{"store_id": 817495, "event": "order/paid", "id": "99999999999999999999"}', 200),
        ]:
            signed = {"X-Linkedstore-HMAC-SHA256": hex_digest(APP_SECRET, body)}
            async with http.post(hook, data=body, headers=signed) as r:
                assert r.status == expected, body
    nuvemshop.forced.append((503, {"code": 503, "message": "Service Unavailable"}))
    status, body = await nuvemshop.deliver(hook, "order/paid", order_id)
    assert (status, body["Error"]) == (503, "unavailable")  # Nuvemshop delivers it again later
    nuvemshop.forced.append((404, {"code": 404, "message": "Not Found", "description": "gone"}))
    assert (await nuvemshop.deliver(hook, "order/paid", order_id))[1]["orders"] == {
        str(order_id): "unreadable"
    }
    assert states_of(probe, event).count("paid") == 1
    assert order_rows(ingest_dir) == [(str(order_id), "paid")]
    _, text = await nuvem_ingest.get("/metrics")
    name = "edgeorder_ingest_webhooks_total"
    assert metric(text, f'{name}{{outcome="applied",platform="nuvemshop"}}') == 1
    assert metric(text, f'{name}{{outcome="unchanged",platform="nuvemshop"}}') == 2
    assert metric(text, f'{name}{{outcome="bad_signature",platform="nuvemshop"}}') == 2
    assert metric(text, f'{name}{{outcome="malformed",platform="nuvemshop"}}') == 2
    assert metric(text, f'{name}{{outcome="ignored",platform="nuvemshop"}}') == 2
    assert metric(text, f'{name}{{outcome="unknown_order",platform="nuvemshop"}}') == 2
    assert metric(text, f'{name}{{outcome="retry_later",platform="nuvemshop"}}') == 1

    nuvemshop.orders[order_id].update(payment_status="paid", shipping_status="fulfilled")
    assert await nuvem_ingest.service.sync.poll_once() == 1  # polling: the fallback
    await wait_for(probe, status_is("nv-03", event.event_id, "shipped"))


async def test_nuvemshop_webhooks_are_registered_for_an_https_public_url(
    ingest_dir: Path, mosquitto: MosquittoServer, nuvemshop: FakeNuvemshop
) -> None:
    public = "https://ingest.shop.example"
    nuvemshop.forced.append((503, {"code": 503, "message": "Service Unavailable"}))  # retried
    running = await start_ingest(
        ingest_dir, mosquitto, nuvemshop_settings(nuvemshop), public_url=public
    )
    try:
        async with asyncio.timeout(20):
            while len(nuvemshop.webhooks) < 4:  # each registration is one request
                await nuvemshop.next_call()
    finally:
        await running.stop()
    assert {h["url"] for h in nuvemshop.webhooks.values()} == {f"{public}/webhooks/nuvemshop"}
    assert sorted(h["event"] for h in nuvemshop.webhooks.values()) == [
        "order/cancelled",
        "order/fulfilled",
        "order/paid",
        "order/updated",
    ]


# --- OneEntry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["drop", "stall"])
async def test_oneentry_lost_reply_found_among_capped_shuffled_pages(
    oneentry_ingest: Ingest, ingest_dir: Path, oneentry: FakeOneEntry, probe: MqttProbe, mode: str
) -> None:
    oneentry.order = "shuffled"
    for _ in range(45):
        oneentry.add_order()
    add_device(ingest_dir, "oe-01")
    oneentry.lose("POST", r"/orders$", mode=mode)  # type: ignore[arg-type]
    event = press("oe-01")
    await send(probe, event)
    order_id = await ordered_id(probe, event)
    mine = [o for o in oneentry.orders.values() if o["formData"][0]["value"] == event.event_id]
    assert [str(o["id"]) for o in mine] == [order_id]
    assert oneentry.lost == 1
    assert len(oneentry.calls("POST")) == 1  # the retry found it among the pages
    assert len(oneentry.orders) == 46
    assert all(int(c.query["limit"]) == 100 for c in oneentry.calls("GET"))


async def test_oneentry_expired_user_token_queues_and_renews(
    oneentry_ingest: Ingest, ingest_dir: Path, oneentry: FakeOneEntry, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "oe-02", env="dev")
    oneentry.expire_user_tokens()
    event = press("oe-02")
    await send(probe, event)
    order_id = await ordered_id(probe, event)
    assert "failed" not in states_of(probe, event)
    assert oneentry.renewals == ["refresh"]
    assert oneentry.orders[int(order_id)]["paymentAccountIdentifier"] == "cash"  # a test order
