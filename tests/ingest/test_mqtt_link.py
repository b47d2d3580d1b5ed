"""The MQTT link: jittered backoff, and surviving a broker restart with its persistent session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edgeorder import protocol as p
from edgeorder.ingest.mqtt.link import MqttLink, MqttOptions
from tests.ingest.support import Ingest, OrderCore, add_device, press, status_is, wait_for
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe


@pytest.mark.integration
async def test_ingest_reconnects_after_a_broker_restart_and_keeps_working(
    ingest: Ingest, ingest_dir: Path, mosquitto: MosquittoServer, ordercore: OrderCore
) -> None:
    add_device(ingest_dir, "away-01")
    await ingest.service.devices.reload()
    link = ingest.service.link
    await asyncio.to_thread(mosquitto.stop)
    await asyncio.wait_for(link.disconnected.wait(), 10)
    health, _ = await ingest.get("/healthz")
    assert health == 503  # degraded while the broker is away
    await asyncio.to_thread(mosquitto.start)
    await asyncio.wait_for(link.subscribed.wait(), 60)  # reconnected with jittered backoff
    probe = MqttProbe(mosquitto.port)
    try:
        assert probe.wait_connected()
        probe.subscribe(p.device_topic("away-01", p.Channel.STATUS))
        event = press("away-01")
        probe.publish(p.device_topic("away-01", p.Channel.EVENTS), p.encode(event))
        await wait_for(probe, status_is("away-01", event.event_id, "ordered"))
    finally:
        probe.close()
    health, _ = await ingest.get("/healthz")
    assert health == 200


def _link(mosquitto: MosquittoServer, client_id: str, queue_size: int) -> MqttLink:
    return MqttLink(
        MqttOptions(
            url=mosquitto.url,
            username=None,
            password=None,
            client_id=client_id,
            queue_size=queue_size,
            backoff_min_s=0.05,
            backoff_max_s=0.2,
        )
    )


@pytest.mark.integration
async def test_a_full_queue_pauses_reading_and_a_burst_arrives_whole_on_one_connection(
    mosquitto: MosquittoServer,
) -> None:
    """Backpressure, not drops: ten QoS 1 messages into a queue of four wait in the broker
    until the consumer has emptied half of it; none is dropped, no reconnect, all arrive in
    order."""
    link = _link(mosquitto, "link-overflow", queue_size=4)
    link.start()
    probe = MqttProbe(mosquitto.port)
    try:
        await asyncio.wait_for(link.subscribed.wait(), 10)
        assert probe.wait_connected()
        payloads = [f"press-{i}".encode() for i in range(10)]
        topic = p.device_topic("overflow-01", p.Channel.EVENTS)
        for payload in payloads:
            await asyncio.to_thread(probe.publish, topic, payload)
        await asyncio.wait_for(link.paused.wait(), 10)  # nothing consumes yet: four fit
        assert link.inbound.qsize() == 4
        got = [link.inbound.get_nowait()]
        assert link.paused.is_set()  # three left: not yet
        got.append(link.inbound.get_nowait())
        assert not link.paused.is_set()  # half empty: reading again
        for message in got:
            link.ack(message)
        async with asyncio.timeout(20):
            while len(got) < len(payloads):
                message = await link.inbound.get()
                got.append(message)
                link.ack(message)
        assert [m.payload for m in got] == payloads
        assert {m.generation for m in got} == {1}  # one connection: no resync was needed
        assert link.dropped == 0
        assert not link.disconnected.is_set()
        assert not link.paused.is_set()
    finally:
        probe.close()
        await link.stop()


@pytest.mark.integration
async def test_a_qos1_message_the_queue_could_not_take_is_redelivered_after_a_resync(
    mosquitto: MosquittoServer,
) -> None:
    """The guard behind the backpressure: a message that meets a full queue anyway (it cannot
    through ``_readable``; here it is handed to the callback directly) is dropped unacked and
    the link reconnects, so the broker redelivers what it had in flight."""
    link = _link(mosquitto, "link-guard", queue_size=1)
    link.start()
    probe = MqttProbe(mosquitto.port)
    try:
        await asyncio.wait_for(link.subscribed.wait(), 10)
        assert probe.wait_connected()
        topic = p.device_topic("guard-01", p.Channel.EVENTS)
        await asyncio.to_thread(probe.publish, topic, b"first")
        await asyncio.to_thread(probe.publish, topic, b"second")
        await asyncio.wait_for(link.paused.wait(), 10)  # "first" queued, "second" waits
        stray = mqtt.MQTTMessage(mid=60_000, topic=topic.encode())
        stray.qos, stray.payload = 1, b"stray"
        link._on_message(link._client, None, stray)
        assert link.dropped == 1
        await asyncio.wait_for(link.disconnected.wait(), 10)  # the resync
        seen: list[tuple[bytes, int]] = []
        async with asyncio.timeout(20):
            while (b"second", 2) not in seen:
                message = await link.inbound.get()
                seen.append((message.payload, message.generation))
                link.ack(message)
        assert seen[0] == (b"first", 1)  # handled, but acked on a connection that had ended
        assert (b"first", 2) in seen  # so the broker redelivered it, as everything in flight
    finally:
        probe.close()
        await link.stop()
