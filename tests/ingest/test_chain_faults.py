"""Faults inside the exactly-once chain: a write that fails must not leave its message
unacknowledged until some later reconnect (the broker redelivers only on a new connection)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import protocol as p
from ingest import ledger
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


def _fail_first(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """``ledger.<name>`` raises a disk error on its first call, then works; the calls made."""
    real = getattr(ledger, name)
    calls: list[str] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        if len(calls) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger, name, flaky)
    return calls


async def test_an_event_whose_write_failed_is_processed_again_on_the_same_connection(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_device(ingest_dir, "flaky-01")
    await ingest.service.devices.reload()
    calls = _fail_first(monkeypatch, "record_event")
    event = press("flaky-01")
    probe.publish(p.device_topic("flaky-01", p.Channel.EVENTS), p.encode(event))
    await wait_for(probe, status_is("flaky-01", event.event_id, "accepted"), within_s=10)
    await wait_for(probe, status_is("flaky-01", event.event_id, "ordered"), within_s=10)
    assert len(calls) == 2  # failed once, then written once
    assert ingest.service.router.retried == 1
    assert not ingest.service.link.disconnected.is_set()  # no reconnect was needed
    assert len(await ordercore.orders("flaky-01")) == 1
    _, text = await ingest.get("/metrics")
    assert metric(text, "edgeorder_ingest_events_received_total") == 1  # counted once
    assert metric(text, "edgeorder_ingest_events_accepted_total") == 1


async def test_a_rejection_whose_write_failed_still_reaches_the_device(
    ingest: Ingest, ingest_dir: Path, probe: MqttProbe, monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_device(ingest_dir, "flaky-02")
    await ingest.service.devices.reload()
    calls = _fail_first(monkeypatch, "record_rejection")
    probe.publish(p.device_topic("flaky-02", p.Channel.EVENTS), b'{"v":1,"event_id":')
    (msg,) = await wait_for(probe, lambda m: m.topic.endswith("flaky-02/status"), within_s=10)
    assert json.loads(msg.payload)["state"] == "rejected"
    assert len(calls) == 2
    _, text = await ingest.get("/metrics")
    assert metric(text, "edgeorder_ingest_events_received_total") == 1
    assert metric(text, 'edgeorder_ingest_events_rejected_total{reason="malformed_json"}') == 1
