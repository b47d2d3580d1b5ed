"""The MQTT link: jittered backoff, and surviving a broker restart with its persistent session."""

from __future__ import annotations

import asyncio
from pathlib import Path

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


@pytest.mark.integration
async def test_a_qos1_message_dropped_by_a_full_queue_is_redelivered_after_a_resync(
    mosquitto: MosquittoServer,
) -> None:
    link = MqttLink(
        MqttOptions(
            url=mosquitto.url,
            username=None,
            password=None,
            client_id="link-overflow",
            queue_size=2,
            backoff_min_s=0.05,
            backoff_max_s=0.2,
        )
    )
    link.start()
    probe = MqttProbe(mosquitto.port)
    try:
        await asyncio.wait_for(link.subscribed.wait(), 10)
        assert probe.wait_connected()
        payloads = {f"press-{i}".encode() for i in range(5)}
        topic = p.device_topic("overflow-01", p.Channel.EVENTS)
        for payload in sorted(payloads):
            await asyncio.to_thread(probe.publish, topic, payload)
        # nothing consumes yet: two fit, the third is dropped unacknowledged -> a new connection
        await asyncio.wait_for(link.disconnected.wait(), 10)
        assert link.dropped >= 1
        seen: set[bytes] = set()
        async with asyncio.timeout(20):
            while seen != payloads:
                message = await link.inbound.get()
                seen.add(message.payload)
                link.ack(message)
    finally:
        probe.close()
        await link.stop()
