"""Home Assistant discovery end to end: ingest (``ha_discovery``), a real Mosquitto, the real
order core, and a Home-Assistant-like client that reads the configs, subscribes to what they
name and evaluates their templates (Jinja2, as Home Assistant does)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edgeorder import protocol as p
from edgeorder.ingest.bus import Notice
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from tests.ingest.support import Ingest, OrderCore, add_device, ingest_settings, press
from tests.ingest.test_homeassistant_schema import render
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe, Received

pytestmark = pytest.mark.integration

PREFIX = "homeassistant"


def config_topic(device_id: str, obj: str) -> str:
    component = "sensor" if obj == "order_state" else "device_automation"
    return f"{PREFIX}/{component}/edgeorder_{device_id}/{obj}/config"


OBJECTS = ("single_press", "double_press", "long_press", "order_state")


@pytest.fixture
async def ha_ingest(
    ingest_dir: Path, mosquitto: MosquittoServer, ordercore: OrderCore
) -> AsyncIterator[Ingest]:
    add_device(ingest_dir, "ha-01")
    add_device(ingest_dir, "ha-02")
    settings = ingest_settings(ingest_dir, mosquitto.url, ordercore.url, ha_discovery=True)
    running = await Ingest(settings).start()
    yield running
    await running.stop()


@pytest.fixture
def home_assistant(mosquitto: MosquittoServer) -> Iterator[MqttProbe]:
    client = MqttProbe(mosquitto.port, client_id=f"homeassistant-{uuid.uuid4().hex[:6]}")
    assert client.wait_connected()
    client.subscribe(f"{PREFIX}/#")
    yield client
    client.close()


async def wait(probe: MqttProbe, predicate: Any, count: int = 1) -> list[Received]:
    return await asyncio.to_thread(partial(probe.wait_for, predicate, 20, count))


async def configs(ha: MqttProbe, device_id: str) -> dict[str, dict[str, Any]]:
    """The latest non-empty config of each of the device's discovery objects."""
    topics = {config_topic(device_id, o): o for o in OBJECTS}
    await wait(ha, lambda m: m.topic in topics and m.payload, count=len(topics))
    latest = {topics[m.topic]: json.loads(m.payload) for m in ha.messages if m.topic in topics}
    return latest


def device_client(port: int, device_id: str) -> mqtt.Client:
    """A device's connection with its last will (presence offline, retained), as the agent."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{device_id}-{uuid.uuid4().hex}")
    will = p.encode(p.Presence(online=False, fw="2.1.0", ts=p.utcnow()))
    client.will_set(p.device_topic(device_id, p.Channel.PRESENCE), will, qos=1, retain=True)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


async def test_configs_triggers_sensor_and_availability(
    ha_ingest: Ingest, home_assistant: MqttProbe, mosquitto: MosquittoServer
) -> None:
    ha = home_assistant
    found = await configs(ha, "ha-01")
    triggers = {o: c for o, c in found.items() if c.get("automation_type") == "trigger"}
    sensor = found["order_state"]
    assert {c["type"] for c in triggers.values()} == {
        "button_short_press",
        "button_double_press",
        "button_long_press",
    }
    # Home Assistant subscribes to what the configs name
    (events_topic,) = {c["topic"] for c in triggers.values()}
    presence_topic = sensor["availability"][0]["topic"]
    ha.subscribe(events_topic)
    ha.subscribe(sensor["state_topic"])
    ha.subscribe(presence_topic)

    device = device_client(mosquitto.port, "ha-01")
    try:
        online = p.encode(p.Presence(online=True, fw="2.1.0", ts=p.utcnow()))
        device.publish(presence_topic, online, qos=1, retain=True).wait_for_publish(10)
        (seen,) = await wait(
            ha, lambda m: m.topic == presence_topic and b'"online":true' in m.payload
        )
        availability = sensor["availability"][0]
        assert render(availability["value_template"], seen.payload) == "online"

        # a double press fires the double-press trigger and no other
        event = press("ha-01", p.Click.DOUBLE)
        device.publish(events_topic, p.encode(event), qos=1).wait_for_publish(10)
        (got,) = await wait(ha, lambda m: m.topic == events_topic)
        fired = [
            c["type"]
            for c in triggers.values()
            if render(c["value_template"], got.payload) == c["payload"]
        ]
        assert fired == ["button_double_press"]

        # the sensor follows the device's status (double is unmapped: rejected, says why)
        (status,) = await wait(
            ha,
            lambda m: m.topic == sensor["state_topic"] and event.event_id.encode() in m.payload,
        )
        state = render(sensor["value_template"], status.payload)
        assert state in sensor["options"]
        assert state == json.loads(status.payload)["state"]
    finally:
        # the device dies without DISCONNECT: the broker publishes its will
        device.loop_stop()
        sock = device.socket()
        assert sock is not None
        sock.close()
    (gone,) = await wait(ha, lambda m: m.topic == presence_topic and b'"online":false' in m.payload)
    assert render(sensor["availability"][0]["value_template"], gone.payload) == "offline"

    # the firmware of the presence reaches the device block
    fresh = await wait(
        ha,
        lambda m: (
            m.topic == config_topic("ha-01", "order_state") and b'"sw_version":"2.1.0"' in m.payload
        ),
    )
    assert json.loads(fresh[-1].payload)["device"]["sw_version"] == "2.1.0"


async def test_a_single_press_orders_and_fires_the_short_press(
    ha_ingest: Ingest, home_assistant: MqttProbe, mosquitto: MosquittoServer
) -> None:
    ha = home_assistant
    found = await configs(ha, "ha-02")
    sensor = found["order_state"]
    ha.subscribe(found["single_press"]["topic"])
    ha.subscribe(sensor["state_topic"])
    device = MqttProbe(mosquitto.port)
    try:
        assert device.wait_connected()
        event = press("ha-02")
        device.publish(p.device_topic("ha-02", p.Channel.EVENTS), p.encode(event))
        (got,) = await wait(ha, lambda m: m.topic == found["single_press"]["topic"])
        single = found["single_press"]
        assert render(single["value_template"], got.payload) == single["payload"]
        ordered = await wait(
            ha, lambda m: m.topic == sensor["state_topic"] and b'"state":"ordered"' in m.payload
        )
        attributes = json.loads(render(sensor["json_attributes_template"], ordered[-1].payload))
        assert render(sensor["value_template"], ordered[-1].payload) == "ordered"
        assert attributes["order_id"]
        assert attributes["event_id"] == event.event_id
    finally:
        device.close()


async def test_disable_clears_birth_republishes(
    ha_ingest: Ingest, home_assistant: MqttProbe
) -> None:
    ha = home_assistant
    await configs(ha, "ha-01")
    await configs(ha, "ha-02")
    service = ha_ingest.service
    await service.writer.run(lambda c: registry.set_enabled(c, "ha-01", False))
    service.bus.publish(Notice("device", "ha-01", {"source": "api"}))
    topics = {config_topic("ha-01", o) for o in OBJECTS}
    cleared = await wait(ha, lambda m: m.topic in topics and m.payload == b"", count=4)
    assert {m.topic for m in cleared} == topics
    assert all(m.retain is False for m in cleared)  # live: an established subscription

    # Home Assistant restarts: its birth message makes ingest publish every config again
    before = sum(1 for m in ha.messages if m.topic == config_topic("ha-02", "order_state"))
    mark = len(ha.messages)
    ha.publish(f"{PREFIX}/status", b"online", qos=0)
    again = await wait(
        ha,
        lambda m: m.topic == config_topic("ha-02", "order_state") and m.payload,
        count=before + 1,
    )
    assert len(again) == before + 1
    # a disabled device stays cleared (its configs would have come first: sorted by device)
    assert not [m for m in ha.messages[mark:] if m.topic in topics and m.payload]


async def test_a_device_removed_while_ingest_was_down_is_cleared_at_start(
    ingest_dir: Path, mosquitto: MosquittoServer, ordercore: OrderCore, home_assistant: MqttProbe
) -> None:
    ha = home_assistant
    add_device(ingest_dir, "ha-old")
    settings = ingest_settings(ingest_dir, mosquitto.url, ordercore.url, ha_discovery=True)
    first = await Ingest(settings).start()
    await configs(ha, "ha-old")
    await first.stop()
    db = open_db(ingest_dir / "ingest.db")
    try:
        registry.remove_device(db, "ha-old")
    finally:
        db.conn.close()
    second = await Ingest(settings).start()
    try:
        topics = {config_topic("ha-old", o) for o in OBJECTS}
        await wait(ha, lambda m: m.topic in topics and m.payload == b"", count=4)
    finally:
        await second.stop()
    # a fresh subscriber (Home Assistant starting) finds nothing retained for it: the broker
    # answers SUBSCRIBEs in order, so the marker's retained copy comes after any of ha-old's
    marker = f"{PREFIX}/test-marker"
    ha.publish(marker, b"m", retain=True)
    late = MqttProbe(mosquitto.port)
    try:
        assert late.wait_connected()
        late.subscribe(f"{PREFIX}/+/edgeorder_ha-old/#")
        late.subscribe(marker)
        await wait(late, lambda m: m.topic == marker)
        assert [m.topic for m in late.messages] == [marker]
    finally:
        ha.publish(marker, b"", retain=True)
        late.close()
