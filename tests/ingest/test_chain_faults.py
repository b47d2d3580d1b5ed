"""Faults inside the exactly-once chain: a write that fails must not leave its message
unacknowledged until some later reconnect (the broker redelivers only on a new connection)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from edgeorder import protocol as p
from edgeorder.ingest.connectors.base import OrderRequest, OrderResult
from edgeorder.ingest.connectors.ordercore import OrderCoreConnector
from edgeorder.ingest.store import ledger
from edgeorder.ingest.store.database import Conn
from edgeorder.ingest.store.db import atomic, open_db
from edgeorder.ingest.store.reader import Reader
from edgeorder.ingest.store.registry import load_devices
from tests.ingest.outbox_harness import running_worker
from tests.ingest.support import (
    CORE_TOKEN,
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


WRITER_RUNS = 2
"""A failing job runs twice in the writer: optimistically, then alone in a savepoint."""


def _fail_first(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """``ledger.<name>`` raises a disk error in both of the writer's runs of its first write,
    then works; the calls made."""
    real = getattr(ledger, name)
    calls: list[str] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        if len(calls) <= WRITER_RUNS:
            raise sqlite3.OperationalError("disk I/O error")
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger, name, flaky)
    return calls


async def test_an_event_whose_write_failed_is_processed_again_on_the_same_connection(
    ingest: Ingest,
    ingest_dir: Path,
    ordercore: OrderCore,
    probe: MqttProbe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_device(ingest_dir, "flaky-01")
    await ingest.service.devices.reload()
    calls = _fail_first(monkeypatch, "record_event")
    event = press("flaky-01")
    probe.publish(p.device_topic("flaky-01", p.Channel.EVENTS), p.encode(event))
    await wait_for(probe, status_is("flaky-01", event.event_id, "accepted"), within_s=10)
    await wait_for(probe, status_is("flaky-01", event.event_id, "ordered"), within_s=10)
    assert len(calls) == WRITER_RUNS + 1  # one write failed, then written once
    assert ingest.service.router.retried == 1
    assert not ingest.service.link.disconnected.is_set()  # no reconnect was needed
    assert len(await ordercore.orders("flaky-01")) == 1
    _, text = await ingest.get("/metrics")
    assert metric(text, "edgeorder_ingest_events_received_total") == 1  # counted once
    assert metric(text, "edgeorder_ingest_events_accepted_total") == 1


async def test_a_rejection_whose_write_failed_still_reaches_the_device(
    ingest: Ingest,
    ingest_dir: Path,
    probe: MqttProbe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_device(ingest_dir, "flaky-02")
    await ingest.service.devices.reload()
    calls = _fail_first(monkeypatch, "record_rejection")
    probe.publish(p.device_topic("flaky-02", p.Channel.EVENTS), b'{"v":1,"event_id":')
    (msg,) = await wait_for(probe, lambda m: m.topic.endswith("flaky-02/status"), within_s=10)
    assert json.loads(msg.payload)["state"] == "rejected"
    assert len(calls) == WRITER_RUNS + 1
    _, text = await ingest.get("/metrics")
    assert metric(text, "edgeorder_ingest_events_received_total") == 1
    assert metric(text, 'edgeorder_ingest_events_rejected_total{reason="malformed_json"}') == 1


class _Transport:
    """Where the worker's statuses go in this test: a list, and an event per state."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self.ordered = asyncio.Event()

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> int | None:
        state = json.loads(payload)["state"]
        self.states.append(state)
        if state == "ordered":
            self.ordered.set()
        return None


async def test_an_order_attempt_whose_commit_failed_is_held_back_before_the_next_call(
    ingest_dir: Path,
    ordercore: OrderCore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_device(ingest_dir, "hold-01")
    db_path = ingest_dir / "ingest.db"
    now = [p.utcnow()]
    event = press("hold-01", ts=now[0])
    conn = open_db(db_path).conn
    with atomic(conn):
        devices = load_devices(sqlite_utils.Database(conn))
        ledger.record_event(conn, event, devices["hold-01"], now=now[0], stale_after_s=60)
    conn.close()
    failing = [True]
    real_mark = ledger.mark_created

    def mark_created(*args: Any, **kwargs: Any) -> list[ledger.StatusOut]:
        if failing[0]:  # the platform made the order; recording it fails
            raise sqlite3.OperationalError("disk I/O error")
        return real_mark(*args, **kwargs)

    monkeypatch.setattr(ledger, "mark_created", mark_created)
    connector = OrderCoreConnector(ordercore.url, CORE_TOKEN, timeout_s=2)
    calls: list[str] = []
    real_create = connector.create_order

    async def create_order(request: OrderRequest) -> OrderResult:
        calls.append(request.idempotency_key)
        return await real_create(request)

    monkeypatch.setattr(connector, "create_order", create_order)
    looked = asyncio.Event()
    reads = [0]

    def counting(reader: Reader) -> Callable[[Callable[[Conn], Any]], Any]:
        async def read(fn: Callable[[Conn], Any]) -> Any:
            reads[0] += 1
            if reads[0] >= 6:
                looked.set()
            return await reader(fn)

        return read

    transport = _Transport()
    try:
        async with running_worker(
            db_path,
            connector,
            transport,
            read=counting,
            retry_base_s=0.01,
            retry_max_s=0.02,
            clock=lambda: now[0],
        ) as worker:
            await asyncio.wait_for(looked.wait(), 10)  # the worker looked at the row again...
            assert calls == [event.event_id]  # ...but did not call the platform again yet
            failing[0] = False
            now[0] += timedelta(hours=1)  # past the hold
            worker.wake()
            await asyncio.wait_for(transport.ordered.wait(), 10)
    finally:
        await connector.close()
    assert calls == [event.event_id, event.event_id]
    assert transport.states == ["ordered"]
    assert len(await ordercore.orders("hold-01")) == 1  # the platform's key: one order
