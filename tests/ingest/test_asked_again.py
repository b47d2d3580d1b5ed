"""A device asks again for the outcome of a press by re-publishing the event (same bytes):
ingest answers a repeat with the event's current status and does nothing else, however old
the event is by then (the staleness rule is for new events, not for repeats)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

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
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe

pytestmark = pytest.mark.integration


async def test_a_repeat_is_answered_with_the_current_state_even_once_it_is_stale(
    ingest_dir: Path, mosquitto: MosquittoServer, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "ask-01")
    event = press("ask-01", ts=p.utcnow() - timedelta(seconds=30))
    topic = p.device_topic("ask-01", p.Channel.EVENTS)
    first = await Ingest(ingest_settings(ingest_dir, mosquitto.url, ordercore.url)).start()
    try:
        probe.publish(topic, p.encode(event))
        await wait_for(probe, status_is("ask-01", event.event_id, "ordered"))
    finally:
        await first.stop()
    # The same ingest data, now with a staleness limit the event is far past.
    strict = ingest_settings(ingest_dir, mosquitto.url, ordercore.url, stale_event_s=1)
    again = await Ingest(strict).start()
    try:
        before = len(probe.messages)
        probe.publish(topic, p.encode(event))  # the device asking again
        answers = await wait_for(probe, lambda m: probe.messages.index(m) >= before)
        assert {json.loads(m.payload)["state"] for m in answers} == {"ordered"}
        stale = press("ask-01", ts=event.ts)  # a NEW event that old is still rejected
        probe.publish(topic, p.encode(stale))
        await wait_for(probe, status_is("ask-01", stale.event_id, "rejected"))
        _, text = await again.get("/metrics")
        assert metric(text, "edgeorder_ingest_events_duplicate_total") == 1
    finally:
        await again.stop()
    assert len(await ordercore.orders("ask-01")) == 1
