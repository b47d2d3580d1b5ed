"""End to end: real Mosquitto, ingest in this loop, the real order core over HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.store.db import open_db
from tests.ingest.support import (
    COFFEE_PRICE,
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


async def test_one_press_becomes_exactly_one_order(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "kitchen-01", quantity=2)
    event = press("kitchen-01")
    probe.publish(p.device_topic("kitchen-01", p.Channel.EVENTS), p.encode(event))

    await wait_for(probe, status_is("kitchen-01", event.event_id, "accepted"))
    ordered = await wait_for(probe, status_is("kitchen-01", event.event_id, "ordered"))
    order_id = json.loads(ordered[0].payload)["order_id"]
    states = [
        json.loads(m.payload)["state"]
        for m in probe.messages
        if json.loads(m.payload).get("event_id") == event.event_id
    ]
    assert states[:2] == ["accepted", "ordered"]
    orders = await ordercore.orders("kitchen-01")
    assert [str(o["Id"]) for o in orders] == [order_id]
    order = orders[0]
    assert order["Device"] == {"Id": "kitchen-01"}
    assert [(i["Sku"], i["Quantity"]) for i in order["OrderItems"]] == [("COFFEE-1KG", 2)]
    assert order["Amount"] == 2 * COFFEE_PRICE
    assert order["Test"] is False
    _, text = await ingest.get("/metrics")
    assert "edgeorder_ingest_publish_to_accepted_seconds_count 1.0" in text
    assert "edgeorder_ingest_publish_to_ordered_seconds_count 1.0" in text
    assert "edgeorder_ingest_events_accepted_total 1.0" in text


async def test_presence_and_telemetry_are_recorded(
    ingest: Ingest, ingest_dir: Path, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "tele-01")
    await ingest.service.devices.reload()
    seen: list[str] = []
    async with ingest.service.bus.subscribe(frozenset({"presence", "telemetry"})) as notices:
        presence = p.Presence(online=True, fw="1.2.3", ts=p.utcnow())
        probe.publish(
            p.device_topic("tele-01", p.Channel.PRESENCE), p.encode(presence), retain=True
        )
        probe.publish(
            p.device_topic("tele-01", p.Channel.TELEMETRY),
            b'{"v":1,"uptime_s":42,"queue_depth":3,"fw":"1.2.3","rssi":-61}',
            qos=0,
        )
        async with asyncio.timeout(10):
            while len(seen) < 2:
                seen.append((await notices.get()).kind)
    assert sorted(seen) == ["presence", "telemetry"]
    db = open_db(ingest_dir / "ingest.db", migrate_schema=False)
    assert db.execute("SELECT online, fw FROM presence").fetchall() == [(1, "1.2.3")]
    row = db.execute("SELECT uptime_s, queue_depth, extra FROM telemetry").fetchone()
    assert row[:2] == (42, 3)
    assert json.loads(row[2]) == {"rssi": -61}
    db.conn.close()


async def test_a_shared_subscription_group_still_orders_once(
    ingest_dir: Path, mosquitto: MosquittoServer, ordercore: OrderCore, probe: MqttProbe
) -> None:
    settings = ingest_settings(
        ingest_dir, mosquitto.url, ordercore.url, mqtt_shared_group="workers"
    )
    add_device(ingest_dir, "share-01")
    running = await Ingest(settings).start()
    try:
        event = press("share-01")
        probe.publish(p.device_topic("share-01", p.Channel.EVENTS), p.encode(event))
        await wait_for(probe, status_is("share-01", event.event_id, "ordered"))
    finally:
        await running.stop()
    assert len(await ordercore.orders("share-01")) == 1


async def test_the_same_event_five_times_is_one_order(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "hall-01")
    event = press("hall-01")
    for _ in range(5):
        probe.publish(p.device_topic("hall-01", p.Channel.EVENTS), p.encode(event))
    await wait_for(probe, status_is("hall-01", event.event_id, "ordered"))
    # every delivery is answered: accepted, 4 re-published current statuses, then ordered
    await wait_for(
        probe, lambda m: json.loads(m.payload).get("event_id") == event.event_id, count=6
    )
    assert len(await ordercore.orders("hall-01")) == 1
    _, text = await ingest.get("/metrics")
    assert "edgeorder_ingest_events_duplicate_total 4.0" in text
    assert "edgeorder_ingest_orders_created_total 1.0" in text


async def test_a_second_press_while_the_order_is_in_flight_is_throttled(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "desk-01")
    first, second = press("desk-01"), press("desk-01", seq=2)
    topic = p.device_topic("desk-01", p.Channel.EVENTS)
    probe.publish(topic, p.encode(first))
    ordered = await wait_for(probe, status_is("desk-01", first.event_id, "ordered"))
    order_id = json.loads(ordered[0].payload)["order_id"]
    probe.publish(topic, p.encode(second))
    await wait_for(probe, status_is("desk-01", second.event_id, "throttled"))
    # delivered (completed) in the order core -> the next press orders again
    await ordercore.call("POST", f"/api/order/{order_id}/ship")
    await wait_for(probe, status_is("desk-01", first.event_id, "shipped"))
    await ordercore.call("POST", f"/api/order/{order_id}/complete")
    await wait_for(probe, status_is("desk-01", first.event_id, "delivered"))
    third = press("desk-01", seq=3)
    probe.publish(topic, p.encode(third))
    await wait_for(probe, status_is("desk-01", third.event_id, "ordered"))
    assert len(await ordercore.orders("desk-01")) == 2


async def test_an_order_shipped_in_the_order_core_reaches_the_device_as_shipped(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "pantry-01")
    event = press("pantry-01")
    probe.publish(p.device_topic("pantry-01", p.Channel.EVENTS), p.encode(event))
    ordered = await wait_for(probe, status_is("pantry-01", event.event_id, "ordered"))
    order_id = json.loads(ordered[0].payload)["order_id"]
    await ordercore.call("POST", f"/api/order/{order_id}/capture")
    await wait_for(probe, status_is("pantry-01", event.event_id, "paid"))
    await ordercore.call("POST", f"/api/order/{order_id}/ship")
    shipped = await wait_for(probe, status_is("pantry-01", event.event_id, "shipped"))
    assert shipped[0].topic == "edgeorder/v1/devices/pantry-01/status"
    assert json.loads(shipped[0].payload)["order_id"] == order_id


async def test_a_long_press_cancels_the_last_order_in_the_order_core(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "garage-01")
    order_event = press("garage-01")
    topic = p.device_topic("garage-01", p.Channel.EVENTS)
    probe.publish(topic, p.encode(order_event))
    await wait_for(probe, status_is("garage-01", order_event.event_id, "ordered"))
    cancel_event = press("garage-01", click=p.Click.LONG, seq=2)
    probe.publish(topic, p.encode(cancel_event))
    await wait_for(probe, status_is("garage-01", cancel_event.event_id, "cancelled"))
    await wait_for(probe, status_is("garage-01", order_event.event_id, "cancelled"))
    (order,) = await ordercore.orders("garage-01")
    assert order["Status"]["Code"] == 22  # cancelled by the user


async def test_a_long_press_with_nothing_to_cancel_is_rejected(
    ingest: Ingest, ingest_dir: Path, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "garage-02")
    event = press("garage-02", click=p.Click.LONG)
    probe.publish(p.device_topic("garage-02", p.Channel.EVENTS), p.encode(event))
    (msg,) = await wait_for(probe, status_is("garage-02", event.event_id, "rejected"))
    assert "cancel" in json.loads(msg.payload)["reason"]


async def test_a_dev_device_places_test_orders(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "lab-01", env="dev")
    event = press("lab-01")
    probe.publish(p.device_topic("lab-01", p.Channel.EVENTS), p.encode(event))
    await wait_for(probe, status_is("lab-01", event.event_id, "ordered"))
    (order,) = await ordercore.orders("lab-01")
    assert order["Test"] is True


async def test_an_order_the_platform_refuses_is_failed_with_its_reason(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "odd-01", sku="NO-SUCH-SKU")
    event = press("odd-01")
    probe.publish(p.device_topic("odd-01", p.Channel.EVENTS), p.encode(event))
    (msg,) = await wait_for(probe, status_is("odd-01", event.event_id, "failed"))
    assert json.loads(msg.payload)["reason"]
    assert await ordercore.orders("odd-01") == []


async def test_devices_get_their_config_retained_at_start_and_on_change(
    ingest_dir: Path, mosquitto: MosquittoServer, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "cfg-01", env="dev")
    running = await Ingest(ingest_settings(ingest_dir, mosquitto.url, ordercore.url)).start()
    try:
        topic = p.device_topic("cfg-01", p.Channel.CONFIG)
        probe.subscribe(topic)
        (first,) = await wait_for(probe, lambda m: m.topic == topic)
        config = p.DeviceConfig.model_validate_json(first.payload)
        assert first.retain
        assert (config.version, config.env, config.mapping.single) == (
            1,
            "dev",
            p.ReorderAction(sku="COFFEE-1KG"),
        )
        from edgeorder.ingest.store import registry

        db = open_db(ingest_dir / "ingest.db")
        registry.set_env(db, "cfg-01", "prod")
        db.conn.close()
        await running.service.devices.reload()  # what a dashboard/API change notice triggers
        (_, second) = await wait_for(probe, lambda m: m.topic == topic, count=2)
        assert p.DeviceConfig.model_validate_json(second.payload).version == 2
    finally:
        await running.stop()
