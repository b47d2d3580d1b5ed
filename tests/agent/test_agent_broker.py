"""The whole agent against real brokers (Mosquitto and the embedded amqtt) with a scripted
responder playing ingest: every press arrives, deduplicated by event_id none twice, also when
the broker goes away mid-stream and comes back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from amqtt.broker import Broker

from edgeorder import protocol as p
from edgeorder.agent.runtime import Agent
from tests.agent.support import (
    Recorder,
    Responder,
    make_config,
    recorded_agent,
    running,
    signal_factory,
)
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe
from tests.support.net import free_port

pytestmark = pytest.mark.integration

DEVICE = "dev-1"


def topic(channel: p.Channel) -> str:
    return p.device_topic(DEVICE, channel)


async def press_n(agent: Agent, rec: Recorder, n: int) -> set[str]:
    """Press ``n`` times; return the new events' ids once all are stored."""
    before = len(rec.events)
    for _ in range(n):
        agent.press("single")
    await rec.until(lambda: len(rec.events) == before + n)
    return {e.event_id for e in rec.events[before:]}


async def test_press_to_ordered_led_presence_and_telemetry(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    watcher = MqttProbe(mosquitto.port)
    watcher.subscribe(f"{p.TOPIC_ROOT}/{DEVICE}/#")
    responder = Responder(mosquitto.port, then=p.State.ORDERED)
    cfg = make_config(tmp_path, mosquitto.port, telemetry={"heartbeat_s": 1})
    factory, rec = signal_factory(), Recorder()
    agent = Agent(cfg, pin_factory=factory, **rec.hooks())
    try:
        async with running(agent):
            await rec.led("off", "idle")  # connected
            ids = await press_n(agent, rec, 1)
            await rec.led("ordered", "ordered")
            assert factory.pin(27).state == 1  # steady on while ordered
            assert rec.answered() >= ids
            assert agent.queue_depth == 0  # any status removes it from the outbox
            await asyncio.to_thread(watcher.wait_for, lambda m: m.topic.endswith("/telemetry"))
        presences = [
            json.loads(m.payload) for m in watcher.messages if m.topic.endswith("/presence")
        ]
        assert presences[0]["online"] is True
        assert presences[-1]["online"] is False  # clean shutdown says offline
        tele = next(
            json.loads(m.payload) for m in watcher.messages if m.topic.endswith("/telemetry")
        )
        assert {"queue_depth", "uptime_s", "dropped", "fw", "open_presses"} <= set(tele)
        patterns = [pat for pat, _ in rec.leds]
        assert patterns.index("press_ack") < patterns.index("ordered")
    finally:
        watcher.close()
        responder.close()


async def test_heartbeat_carries_the_latest_sensor_reading(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    watcher = MqttProbe(mosquitto.port)
    watcher.subscribe(topic(p.Channel.TELEMETRY))
    sensor = {"type": "mcp3008", "name": "beans", "channel": 0, "threshold": 0.2}
    cfg = make_config(
        tmp_path,
        mosquitto.port,
        telemetry={"heartbeat_s": 1},
        sensor={**sensor, "poll_ms": 3_600_000},  # one real poll, then only ours
    )
    agent = Agent(cfg, pin_factory=signal_factory())
    try:
        async with running(agent):
            agent.sensor("beans", 0.42)  # what ingest charts: the reading, not only crossings
            found = await asyncio.to_thread(
                watcher.wait_for,
                lambda m: json.loads(m.payload).get("sensor.beans") == 0.42,
            )
        decoded = p.decode(p.Telemetry, found[0].payload, max_bytes=p.MAX_EVENT_BYTES)
        assert decoded.model_extra == {
            "open_presses": 0,
            "sensor.beans": 0.42,
        }
    finally:
        watcher.close()


async def test_broker_goes_away_mid_stream_and_comes_back(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    # ingest's stand-in keeps a persistent session too, so nothing queued for it is lost
    responder = Responder(mosquitto.port, client_id="ingest-sim", clean_session=False)
    agent, rec = recorded_agent(make_config(tmp_path, mosquitto.port))
    try:
        async with running(agent):
            await rec.led("off", "idle")
            first = await press_n(agent, rec, 5)
            await asyncio.to_thread(responder.wait_unique, first)

            mark = len(rec.leds)
            for _ in range(5):  # mid-stream: these are in flight while the broker stops
                agent.press("single")
            await asyncio.to_thread(mosquitto.stop)
            await rec.led("offline", "offline", since=mark)
            await rec.until(lambda: len(rec.events) == 10)
            during = await press_n(agent, rec, 5)  # stored while the broker is down

            await asyncio.to_thread(mosquitto.start)
            every = {e.event_id for e in rec.events}
            assert len(every) == 15
            assert during <= every
            await asyncio.to_thread(responder.wait_unique, every, 60)
            await rec.until(lambda: rec.answered() >= every, 60)
            assert agent.queue_depth == 0
        assert set(responder.seen) == every  # nothing foreign; dedup by id leaves 15
        assert sorted(e.seq for e in rec.events) == list(range(1, 16))
    finally:
        responder.close()


async def test_unanswered_events_are_republished_on_a_timer(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    responder = Responder(mosquitto.port, ignore_first=True)  # a lost first delivery
    agent, rec = recorded_agent(make_config(tmp_path, mosquitto.port))
    try:
        async with running(agent):
            await rec.led("off", "idle")
            ids = await press_n(agent, rec, 3)
            await rec.until(lambda: rec.answered() >= ids)  # only the re-sent copies answer
            assert agent.queue_depth == 0
        assert sorted(responder.seen) == sorted([*ids, *ids])  # same event_id, sent again
    finally:
        responder.close()


async def test_reconnects_after_broker_kicks_it(tmp_path: Path, mosquitto: MosquittoServer) -> None:
    responder = Responder(mosquitto.port)
    agent, rec = recorded_agent(make_config(tmp_path, mosquitto.port))
    try:
        async with running(agent):
            await rec.led("off", "idle")
            mark = len(rec.leds)
            # a client with the same client id makes Mosquitto drop the agent's connection
            intruder = MqttProbe(mosquitto.port, client_id=cfg_client_id(agent))
            intruder.wait_connected()
            intruder.close()
            await rec.led("offline", "offline", since=mark)
            await rec.led("off", "idle", since=mark + 1)  # back, on its own
            ids = await press_n(agent, rec, 1)
            await rec.until(lambda: rec.answered() >= ids)
    finally:
        responder.close()


def cfg_client_id(agent: Agent) -> str:
    return agent.config.client_id


async def test_bad_status_and_config_are_ignored_and_config_applies(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    probe = MqttProbe(mosquitto.port)
    probe.subscribe(topic(p.Channel.CONFIG_REPORTED))
    responder = Responder(mosquitto.port)
    agent, rec = recorded_agent(make_config(tmp_path, mosquitto.port))
    try:
        async with running(agent):
            await rec.led("off", "idle")
            for junk in (b"\xff\xfe", b"not json", b"[]", b'{"v":1,"state":"ordered"}'):
                probe.publish(topic(p.Channel.STATUS), junk)
                probe.publish(topic(p.Channel.CONFIG), junk)
            good = p.DeviceConfig(version=7, long_press_ms=800)
            probe.publish(topic(p.Channel.CONFIG), p.encode(good), retain=True)
            got = await asyncio.to_thread(
                probe.wait_for, lambda m: m.topic.endswith("/config/reported")
            )
            assert json.loads(got[0].payload)["version"] == 7
            assert agent._classifier.timings.long_press_s == pytest.approx(0.8)
            ids = await press_n(agent, rec, 1)  # still alive and answering
            await rec.until(lambda: rec.answered() >= ids)
            assert rec.statuses[-1].state is p.State.ACCEPTED
    finally:
        probe.close()
        responder.close()


@pytest.fixture
async def amqtt_port() -> AsyncIterator[int]:
    port = free_port()
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await broker.start()
    yield port
    await broker.shutdown()


async def test_against_embedded_amqtt(tmp_path: Path, amqtt_port: int) -> None:
    # amqtt runs on this test's event loop: blocking paho calls go to a thread
    responder = await asyncio.to_thread(Responder, amqtt_port, then=p.State.THROTTLED)
    rec = Recorder()
    factory = signal_factory()
    agent = Agent(make_config(tmp_path, amqtt_port), pin_factory=factory, **rec.hooks())
    try:
        async with running(agent):
            await rec.led("off", "idle")
            ids = await press_n(agent, rec, 10)
            await asyncio.to_thread(responder.wait_unique, ids)
            await rec.until(lambda: rec.answered() >= ids)
            await rec.led("throttled", "throttled")
            assert agent.queue_depth == 0
        assert set(responder.seen) == ids
    finally:
        await asyncio.to_thread(responder.close)
