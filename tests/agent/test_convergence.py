"""The agent converges on the outcome of each press through a real Mosquitto: an open press
(``accepted``/``queued``) is asked for again until its outcome arrives, also across an agent
restart, and a stale status never moves a press, or the LED, backwards."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.agent.outbox import Outbox
from edgeorder.agent.runtime import Agent
from tests.agent.support import (
    Recorder,
    Responder,
    make_config,
    recorded_agent,
    running,
)
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe

pytestmark = pytest.mark.integration

FAST_ASKS = {"ask_min_s": 0.2, "ask_max_s": 0.4}


async def press_one(agent: Agent, rec: Recorder) -> str:
    before = len(rec.events)
    agent.press("single")
    await rec.until(lambda: len(rec.events) == before + 1)
    return rec.events[-1].event_id


def stored(path: Path) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """``(open or unacknowledged, settled)`` presses of an outbox file, by id -> state."""
    box = Outbox(path)
    try:
        return (
            {e.event_id: e.state for e in box.pending()},
            {s.event_id: s.state for s in box.settled()},
        )
    finally:
        box.close()


async def test_a_lost_outcome_is_asked_for_again_until_it_arrives(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    responder = Responder(mosquitto.port, then=p.State.ORDERED, lose_outcome=True)
    cfg = make_config(tmp_path, mosquitto.port, outbox=FAST_ASKS)
    agent, rec = recorded_agent(cfg)
    try:
        async with running(agent):
            await rec.led("off", "idle")
            event_id = await press_one(agent, rec)
            await rec.until(lambda: agent.press_state(event_id) is p.State.ACCEPTED)
            assert agent.queue_depth == 0  # acknowledged: no longer re-published as new
            await rec.led("ordered", "ordered")  # the answer to asking again
            assert agent.press_state(event_id) is p.State.ORDERED
            assert agent.open_presses == 0  # settled: no more asks
        assert responder.seen[0] == event_id
        assert len(responder.seen) >= 2  # the same event, published again to ask
        assert set(responder.seen) == {event_id}
        assert stored(cfg.outbox.path) == ({}, {event_id: "ordered"})
    finally:
        responder.close()


async def test_an_open_press_survives_a_restart_and_is_asked_for_after_it(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    responder = Responder(mosquitto.port, then=p.State.ORDERED, lose_outcome=True)
    slow = make_config(tmp_path, mosquitto.port, outbox={"ask_min_s": 600, "ask_max_s": 600})
    first, rec = recorded_agent(slow)
    try:
        async with running(first):
            await rec.led("off", "idle")
            event_id = await press_one(first, rec)
            await rec.until(lambda: first.press_state(event_id) is p.State.ACCEPTED)
            assert first.open_presses == 1
        assert stored(slow.outbox.path) == ({event_id: "accepted"}, {})

        fast = make_config(tmp_path, mosquitto.port, outbox=FAST_ASKS)  # same outbox file
        second, again = recorded_agent(fast)
        async with running(second):
            assert second.press_state(event_id) is p.State.ACCEPTED  # loaded from the outbox
            await again.until(lambda: second.press_state(event_id) is p.State.ORDERED)
            assert second.open_presses == 0
        assert stored(fast.outbox.path) == ({}, {event_id: "ordered"})
    finally:
        responder.close()


async def test_a_stale_status_never_moves_a_press_or_the_led_backwards(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    responder = Responder(mosquitto.port, then=p.State.ORDERED)
    probe = MqttProbe(mosquitto.port)
    cfg = make_config(tmp_path, mosquitto.port)
    agent, rec = recorded_agent(cfg)
    topic = p.device_topic(cfg.device_id, p.Channel.STATUS)
    try:
        async with running(agent):
            await rec.led("off", "idle")
            event_id = await press_one(agent, rec)
            await rec.led("ordered", "ordered")
            leds, heard = len(rec.leds), len(rec.statuses)
            for state in (p.State.ACCEPTED, p.State.QUEUED, p.State.ORDERED):  # a stale queue
                old = p.Status(event_id=event_id, state=state, ts=p.utcnow())
                await asyncio.to_thread(probe.publish, topic, p.encode(old), 1, True)
            await rec.until(lambda: len(rec.statuses) >= heard + 3)
            assert agent.press_state(event_id) is p.State.ORDERED
            assert [led for led in rec.leds[leds:] if led[0] != "off"] == []  # nothing re-shown
            shipped = p.Status(event_id=event_id, state=p.State.SHIPPED, ts=p.utcnow())
            await asyncio.to_thread(probe.publish, topic, p.encode(shipped))
            await rec.until(lambda: agent.press_state(event_id) is p.State.SHIPPED)  # forward
        assert stored(cfg.outbox.path) == ({}, {event_id: "shipped"})
    finally:
        probe.close()
        responder.close()


async def test_past_ask_max_open_the_oldest_open_press_is_given_up(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    responder = Responder(mosquitto.port)  # accepted only: every press stays open
    cfg = make_config(tmp_path, mosquitto.port, outbox={"ask_max_open": 2, "ask_min_s": 600})
    agent, rec = recorded_agent(cfg)
    try:
        async with running(agent):
            await rec.led("off", "idle")
            ids = [await press_one(agent, rec) for _ in range(3)]
            await rec.until(lambda: all(agent.press_state(e) is p.State.ACCEPTED for e in ids))
            assert agent.open_presses == 2
        pending, settled = stored(cfg.outbox.path)
        assert pending == {ids[1]: "accepted", ids[2]: "accepted"}
        assert settled == {ids[0]: "accepted"}  # given up at the last state heard
    finally:
        responder.close()
