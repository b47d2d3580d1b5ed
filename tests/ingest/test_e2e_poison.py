"""End to end through a real Mosquitto with its STOCK in-flight limit (20 messages per client):
poison from one device must not stop another device's presses.

Before issue 11 each of these payloads left its message unacknowledged and retried forever;
twenty of them filled Mosquitto's in-flight window for ingest and nothing else was delivered,
for any device, across restarts of ingest and broker.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeorder import protocol as p
from tests.ingest.support import (
    Ingest,
    OrderCore,
    add_device,
    ingest_settings,
    metric,
    press,
    status_is,
    wait_for,
)
from tests.support.mosquitto import MosquittoServer, mosquitto_binary
from tests.support.mqtt import MqttProbe

pytestmark = pytest.mark.integration

STOCK_INFLIGHT = 20  # Mosquitto's default max_inflight_messages
POISON, GOOD = "poison-01", "good-01"


@pytest.fixture
def stock_broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    """The project's test broker, but with Mosquitto's default in-flight window."""
    if mosquitto_binary() is None:
        pytest.skip("mosquitto binary not installed (apt-get install mosquitto)")
    server = MosquittoServer(tmp_path / "mosquitto")
    conf = server.conf_path.read_text()
    assert "max_inflight_messages 1000" in conf
    server.conf_path.write_text(
        conf.replace("max_inflight_messages 1000", f"max_inflight_messages {STOCK_INFLIGHT}")
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def poisoned_ingest(
    ingest_dir: Path, stock_broker: MosquittoServer, ordercore: OrderCore
) -> AsyncIterator[Ingest]:
    add_device(ingest_dir, POISON)
    add_device(ingest_dir, GOOD, allow_parallel=True)
    running = await Ingest(ingest_settings(ingest_dir, stock_broker.url, ordercore.url)).start()
    yield running
    await running.stop()


def event(**over: Any) -> bytes:
    data: dict[str, Any] = json.loads(p.encode(press(POISON)))
    data.update(over)
    return json.dumps(data).encode()


def poison_events() -> list[bytes]:
    """Every known cause of issue 11, several times over."""
    one_round = [
        event(event_id="Z" * 26),  # 26 characters, not a ULID
        event(event_id="É" * 26),
        event(seq=2**63),  # past SQLite's int64
        event(ts="0001-01-01T00:00:00+01:00"),  # overflows when moved to UTC
        event(ts="9999-12-31T23:59:59-01:00"),
        b"[" * 1000 + b"]" * 1000,  # ~1,000 deep, 2 KB
        event(v=True),
    ]
    return one_round * 9  # 63 > 3 x the in-flight window


async def test_poison_from_one_device_does_not_stop_another_devices_orders(
    poisoned_ingest: Ingest, stock_broker: MosquittoServer, ordercore: OrderCore
) -> None:
    ingest = poisoned_ingest
    probe = MqttProbe(stock_broker.port)
    assert probe.wait_connected()
    probe.subscribe(p.subscription(p.Channel.STATUS))
    try:
        poisons = poison_events()
        assert len(poisons) > 3 * STOCK_INFLIGHT
        for payload in poisons:
            probe.client.publish(p.device_topic(POISON, p.Channel.EVENTS), payload, qos=1)
        for channel, payload in [
            (p.Channel.PRESENCE, b'{"v":1,"online":true,"ts":"0001-01-01T00:00:00+01:00"}'),
            (p.Channel.CONFIG_REPORTED, b'{"v":1,"version":18446744073709551616,"ts":"x"}'),
        ]:
            probe.publish(p.device_topic(POISON, channel), payload, retain=True)
        probe.publish(
            p.device_topic(POISON, p.Channel.TELEMETRY),
            b'{"v":1,"uptime_s":99999999999999999999,"queue_depth":0}',
            qos=0,
        )

        presses = [press(GOOD, seq=i) for i in range(5)]
        for good in presses:
            probe.publish(p.device_topic(GOOD, p.Channel.EVENTS), p.encode(good))
        for good in presses:
            await wait_for(probe, status_is(GOOD, good.event_id, "accepted"))
            await wait_for(probe, status_is(GOOD, good.event_id, "ordered"))
        assert len(await ordercore.orders(GOOD)) == len(presses)

        rejected = await wait_for(
            probe,
            lambda m: (
                m.topic == p.device_topic(POISON, p.Channel.STATUS)
                and json.loads(m.payload)["state"] == "rejected"
            ),
            count=len(poisons),
            within_s=30,
        )
        bodies = [json.loads(m.payload) for m in rejected]
        assert all(b["event_id"] is None or p.is_ulid(b["event_id"]) for b in bodies)
        assert await ordercore.orders(POISON) == []
        assert ingest.service.router.failing() == 0

        _, text = await ingest.get("/metrics")
        events_rejected = sum(
            metric(
                text, f'edgeorder_ingest_messages_rejected_total{{channel="events",reason="{r}"}}'
            )
            or 0
            for r in ("invalid", "malformed_json")
        )
        assert events_rejected == len(poisons)
        assert metric(text, "edgeorder_ingest_messages_failing") == 0

        # A new session gets the retained poison from the broker's store: rejected once,
        # acknowledged, and cleared, so the session after that does not get it again.
        await ingest.stop()
        await ingest.start()
        after = press(GOOD, seq=99)
        probe.publish(p.device_topic(GOOD, p.Channel.EVENTS), p.encode(after))
        await wait_for(probe, status_is(GOOD, after.event_id, "ordered"))
        _, text = await ingest.get("/metrics")
        for name in ("presence", "config/reported"):
            assert metric(text, f'edgeorder_ingest_retained_cleared_total{{channel="{name}"}}') == 1
        for channel in (p.Channel.PRESENCE, p.Channel.CONFIG_REPORTED):
            assert_no_retained(stock_broker, p.device_topic(POISON, channel))
        assert ingest.service.router.failing() == 0
    finally:
        probe.close()


def assert_no_retained(broker: MosquittoServer, topic: str) -> None:
    """No retained message left on ``topic``: a fresh subscriber asks for it and then for a
    marker retained on another topic; the broker answers subscriptions in order, so the marker
    arriving alone proves there was nothing before it."""
    marker = "edgeorder/test/marker"
    writer = MqttProbe(broker.port)
    writer.publish(marker, b"m", retain=True)
    writer.close()
    reader = MqttProbe(broker.port)
    try:
        reader.subscribe(topic)
        reader.subscribe(marker)
        (first,) = reader.wait_for(lambda m: m.retain, count=1)
        assert first.topic == marker, f"{topic} still holds a retained message"
    finally:
        reader.close()
