"""End to end across broker restarts: ingest's persistent session keeps every event the broker
accepted, whether ingest was away or running when the broker restarted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.store.db import connect
from tests.ingest.support import Ingest, OrderCore, add_device, ingest_settings, press, wait_for
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe, Received

pytestmark = pytest.mark.integration

N = 40


def _ordered(m: Received) -> bool:
    return bool(json.loads(m.payload)["state"] == "ordered")


async def _wait_ordered(probe: MqttProbe, count: int, within_s: float = 60) -> set[str]:
    """Block (on the probe's condition) until ``count`` distinct events were ordered; a
    status may arrive twice (a re-sent publish), so count event ids, not messages."""
    ids: set[str] = set()
    seen = 0
    while len(ids) < count:
        matching = await wait_for(probe, _ordered, count=seen + 1, within_s=within_s)
        seen = len(matching)
        ids = {json.loads(m.payload)["event_id"] for m in matching}
    return ids


def _status_probe(port: int, client_id: str) -> MqttProbe:
    """A device-side listener whose session (and QoS 1 subscription) survives the broker."""
    probe = MqttProbe(port, client_id=client_id, clean_session=False)
    assert probe.wait_connected()
    probe.subscribe("edgeorder/v1/devices/+/status")
    return probe


@pytest.fixture
def publisher(mosquitto: MosquittoServer) -> Iterator[MqttProbe]:
    client = MqttProbe(mosquitto.port)
    assert client.wait_connected()
    yield client
    client.close()


def _publish(probe: MqttProbe, events: list[p.Event]) -> None:
    """Each publish returns once the broker acknowledged it (the device may forget it)."""
    for event in events:
        probe.publish(p.device_topic(event.device_id, p.Channel.EVENTS), p.encode(event))


async def _assert_each_ordered_once(
    ingest_dir: Path, ordercore: OrderCore, device_id: str, events: list[p.Event], ordered: set[str]
) -> None:
    assert ordered == {e.event_id for e in events}  # none lost
    orders = await ordercore.orders(device_id)
    assert len(orders) == len(events)  # none twice
    assert len({o["Id"] for o in orders}) == len(events)
    conn = connect(ingest_dir / "ingest.db", readonly=True)
    try:
        rows = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM orders WHERE device_id = ?", [device_id]
        ).fetchone()
    finally:
        conn.close()
    assert rows == (len(events), len(events))


async def test_events_sent_while_ingest_is_away_survive_a_broker_restart(
    ingest_dir: Path, mosquitto: MosquittoServer, ordercore: OrderCore, publisher: MqttProbe
) -> None:
    add_device(ingest_dir, "away-01", allow_parallel=True)
    settings = ingest_settings(ingest_dir, mosquitto.url, ordercore.url)  # one client id
    first = await Ingest(settings).start()  # subscribes on a persistent session
    await first.stop()  # graceful: the broker keeps the session and queues for it

    events = [press("away-01", seq=i) for i in range(N)]
    await asyncio.to_thread(_publish, publisher, events)
    publisher.close()
    await asyncio.to_thread(mosquitto.stop)  # SIGTERM: the broker saves its sessions
    await asyncio.to_thread(mosquitto.start)  # same port, same data dir

    statuses = _status_probe(mosquitto.port, "away-01-listener")
    try:
        second = await Ingest(settings).start()
        try:
            ordered = await _wait_ordered(statuses, N)
        finally:
            await second.stop()
    finally:
        statuses.close()
    await _assert_each_ordered_once(ingest_dir, ordercore, "away-01", events, ordered)


async def test_a_broker_restart_mid_stream_loses_nothing(
    ingest: Ingest,
    ingest_dir: Path,
    mosquitto: MosquittoServer,
    ordercore: OrderCore,
    publisher: MqttProbe,
) -> None:
    add_device(ingest_dir, "mid-01", allow_parallel=True)
    await ingest.service.devices.reload()
    statuses = _status_probe(mosquitto.port, "mid-01-listener")
    events = [press("mid-01", seq=i) for i in range(2 * N)]
    try:
        await asyncio.to_thread(_publish, publisher, events[:N])
        # restart while ingest is still working through the first half
        await wait_for(statuses, lambda m: json.loads(m.payload)["state"] == "accepted")
        await asyncio.to_thread(mosquitto.stop)
        assert len([m for m in list(statuses.messages) if _ordered(m)]) < N  # mid-stream
        await asyncio.wait_for(ingest.service.link.disconnected.wait(), 10)
        await asyncio.to_thread(mosquitto.start)
        await asyncio.wait_for(ingest.service.link.subscribed.wait(), 60)
        again = MqttProbe(mosquitto.port)
        try:
            assert again.wait_connected()
            await asyncio.to_thread(_publish, again, events[N:])
        finally:
            again.close()
        ordered = await _wait_ordered(statuses, 2 * N, within_s=90)
    finally:
        statuses.close()
    await _assert_each_ordered_once(ingest_dir, ordercore, "mid-01", events, ordered)
