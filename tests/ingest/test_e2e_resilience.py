"""End to end: the order core down, bad input of every kind."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from edgeorder import protocol as p
from tests.ingest.support import (
    Ingest,
    OrderCore,
    add_device,
    metric,
    press,
    status_is,
    wait_for,
)
from tests.support.mqtt import MqttProbe

pytestmark = pytest.mark.integration


async def test_200_events_while_the_order_core_is_down_are_queued_then_ordered_once(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "bulk-01", allow_parallel=True)
    await ordercore.stop()
    events = [press("bulk-01", seq=i) for i in range(200)]
    topic = p.device_topic("bulk-01", p.Channel.EVENTS)
    for event in events:
        probe.client.publish(topic, p.encode(event), qos=1)
    queued = await wait_for(
        probe,
        lambda m: json.loads(m.payload)["state"] == "queued",
        count=200,
        within_s=60,
        distinct_events=True,
    )
    assert {json.loads(m.payload)["event_id"] for m in queued} == {e.event_id for e in events}
    _, text = await ingest.get("/metrics")
    assert metric(text, "edgeorder_ingest_buffer_depth") == 200

    await ordercore.start()  # same port, same data
    ordered = await wait_for(
        probe,
        lambda m: json.loads(m.payload)["state"] == "ordered",
        count=200,
        within_s=90,
        distinct_events=True,
    )
    assert len({json.loads(m.payload)["event_id"] for m in ordered}) == 200
    orders = await ordercore.orders("bulk-01")
    assert len(orders) == 200
    assert len({o["Id"] for o in orders}) == 200
    _, text = await ingest.get("/metrics")
    assert metric(text, "edgeorder_ingest_orders_created_total") == 200


BAD_INPUTS: list[bytes] = [
    b'{"v":1,"event_id":',
    b'{"v":1,"x":"\xff\xfe"}',
    json.dumps(
        {
            "v": 1,
            "event_id": "01JDZ8Q7M3N4P5R6S7T8V9W0XY",
            "device_id": "bad-01",
            "seq": "42",
            "kind": "press",
            "click": "single",
            "ts": "2026-11-22T13:00:00.123Z",
        }
    ).encode(),
    b'{"pad":"' + b"x" * 5000 + b'"}',
]


async def test_every_bad_input_is_rejected_counted_and_never_ordered(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "bad-01")
    add_device(ingest_dir, "bad-02")
    add_device(ingest_dir, "off-01")
    topic = p.device_topic("bad-01", p.Channel.EVENTS)
    for number, payload in enumerate(BAD_INPUTS, 1):
        probe.publish(topic, payload)
        await wait_for(
            probe,
            lambda m: (
                m.topic.endswith("bad-01/status") and json.loads(m.payload)["state"] == "rejected"
            ),
            count=number,
        )
    reasons = [json.loads(m.payload)["reason"] for m in probe.messages]
    assert reasons[0].startswith("malformed JSON")
    assert "not UTF-8" in reasons[1]
    assert reasons[2].startswith("seq:")
    assert "limit 4096" in reasons[3]

    mismatch = press("bad-02")  # published on bad-01's topic
    probe.publish(topic, p.encode(mismatch))
    (msg,) = await wait_for(probe, status_is("bad-01", mismatch.event_id, "rejected"))
    assert "differs" in json.loads(msg.payload)["reason"]

    stale = press("bad-01", ts=p.utcnow().replace(year=2020))
    probe.publish(topic, p.encode(stale))
    (msg,) = await wait_for(probe, status_is("bad-01", stale.event_id, "rejected"))
    assert json.loads(msg.payload)["reason"] == "stale event"

    unknown = press("ghost-01")
    probe.publish(p.device_topic("ghost-01", p.Channel.EVENTS), p.encode(unknown))
    (msg,) = await wait_for(probe, status_is("ghost-01", unknown.event_id, "rejected"))
    assert json.loads(msg.payload)["reason"] == "unknown device"

    from edgeorder.ingest.store import registry
    from edgeorder.ingest.store.db import open_db

    db = open_db(ingest_dir / "ingest.db")
    registry.set_enabled(db, "off-01", False)
    db.conn.close()
    await ingest.service.devices.reload()
    disabled = press("off-01")
    probe.publish(p.device_topic("off-01", p.Channel.EVENTS), p.encode(disabled))
    (msg,) = await wait_for(probe, status_is("off-01", disabled.event_id, "rejected"))
    assert json.loads(msg.payload)["reason"] == "device disabled"

    original = press("bad-01", seq=7)
    probe.publish(topic, p.encode(original))
    await wait_for(probe, status_is("bad-01", original.event_id, "ordered"))
    reused = original.model_copy(update={"seq": 8})
    probe.publish(topic, p.encode(reused))
    # refused (counted as payload_conflict below), but the press keeps its order on the device:
    # the copy is answered with the recorded event's status, never a "rejected" for its id
    await wait_for(probe, status_is("bad-01", original.event_id, "ordered"), count=2)
    assert not [m for m in probe.messages if status_is("bad-01", original.event_id, "rejected")(m)]

    async with ingest.service.bus.subscribe() as notices:  # no device to answer: watch the bus
        probe.publish("edgeorder/v1/devices/bad.id/events", p.encode(press("bad-01", seq=9)))
        async with asyncio.timeout(10):
            notice = await notices.get()
            while notice.kind != "rejection":
                notice = await notices.get()
    assert (notice.device_id, notice.data["code"]) == (None, "bad_device_id")
    status, text = await ingest.get("/metrics")
    assert status == 200
    for code in (
        "malformed_json",
        "not_utf8",
        "invalid",
        "oversize",
        "device_mismatch",
        "stale",
        "unknown_device",
        "disabled_device",
        "payload_conflict",
        "bad_device_id",
    ):
        assert f'edgeorder_ingest_events_rejected_total{{reason="{code}"}} 1.0' in text, code
    # exactly the one valid press was ordered; ingest still serves
    assert len(await ordercore.orders("bad-01")) == 1
    assert await ordercore.orders("bad-02") == []
    assert await ordercore.orders("off-01") == []
    health, _ = await ingest.get("/healthz")
    assert health == 200
