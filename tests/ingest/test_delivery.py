"""Tracked status delivery: a status row stays unconfirmed until the broker's PUBACK, and the
next process re-publishes the current status of exactly those events (any age)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from edgeorder import protocol as p
from edgeorder.ingest.mqtt.delivery import DeliveryTracker
from edgeorder.ingest.mqtt.statuses import StatusPublisher
from edgeorder.ingest.store import ledger
from edgeorder.ingest.store.db import atomic, connect, migrate, open_db
from edgeorder.ingest.store.migrations import sqlite_steps
from edgeorder.ingest.store.registry import load_devices
from edgeorder.ingest.store.writer import Writer
from tests.ingest.support import (
    Ingest,
    OrderCore,
    add_device,
    ingest_settings,
    press,
    status_is,
    wait_for,
)
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe, Received

MARKER_TOPIC = p.device_topic("marker", p.Channel.STATUS)


def _body(m: Received) -> dict[str, object]:
    body: dict[str, object] = json.loads(m.payload)
    return body


async def _settle_and_mark(ingest: Ingest, probe: MqttProbe, mark: str) -> list[Received]:
    """Every status ingest sent so far was PUBACKed (so the broker routed it to the probe
    before it routes the probe's own marker); the probe's messages before the marker."""
    await asyncio.wait_for(ingest.service.delivery.settled(), 15)
    await asyncio.to_thread(probe.publish, MARKER_TOPIC, json.dumps({"mark": mark}))
    await wait_for(probe, lambda m: m.topic == MARKER_TOPIC and _body(m).get("mark") == mark)
    seen = list(probe.messages)
    end = next(
        i for i, m in enumerate(seen) if m.topic == MARKER_TOPIC and _body(m).get("mark") == mark
    )
    return [m for m in seen[:end] if m.topic != MARKER_TOPIC]


def _unconfirmed(db_path: Path) -> list[tuple[str, str]]:
    conn = connect(db_path, readonly=True)
    try:
        rows = conn.execute(
            "SELECT event_id, state FROM status_history WHERE published_at IS NULL ORDER BY id"
        ).fetchall()
        return [(r[0], r[1]) for r in rows]
    finally:
        conn.close()


async def _flush(ingest: Ingest) -> None:
    service = ingest.service
    await service.writer.run(service.delivery.write_confirmed)


def _ordered(conn: sqlite3.Connection, event: p.Event, order_id: str, when: datetime) -> list[int]:
    """Record ``event`` accepted then ordered (as ingest would); its history row ids."""
    devices = load_devices(sqlite_utils.Database(conn))
    outcome = ledger.record_event(
        conn, event, devices[event.device_id], now=when, stale_after_s=1e9
    )
    (row,) = [r for r in ledger.due_outbox(conn, when, 100) if r.event_id == event.event_id]
    (ordered,) = ledger.mark_created(
        conn,
        row,
        order_id=order_id,
        state=p.State.ORDERED,
        platform_status=0,
        amount=100,
        currency="BRL",
        now=when,
    )
    return [*outcome.status.history_ids, *ordered.history_ids]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "ingest"
    path.mkdir()
    return path


@pytest.fixture
def retained_probe(mosquitto: MosquittoServer) -> Iterator[MqttProbe]:
    client = MqttProbe(mosquitto.port)
    assert client.wait_connected()
    yield client
    client.close()


@pytest.mark.integration
async def test_unconfirmed_statuses_are_republished_by_the_next_process_at_any_age(
    data_dir: Path,
    mosquitto: MosquittoServer,
    ordercore: OrderCore,
    probe: MqttProbe,
    retained_probe: MqttProbe,
) -> None:
    add_device(data_dir, "late-01", allow_parallel=True)
    add_device(data_dir, "late-02", allow_parallel=True)
    now, old = p.utcnow(), p.utcnow() - timedelta(days=2)
    lost, newest, done = press("late-01", ts=old), press("late-01"), press("late-02")
    bogus = press("late-01").event_id  # a rejected payload: never in the inbox
    conn = open_db(data_dir / "ingest.db").conn
    with atomic(conn):
        lost_rows = _ordered(conn, lost, "900", old)  # 'ordered' never reached the broker
        rejected = ledger.record_rejection(
            conn, "late-01", bogus, "malformed_json", "malformed JSON", old
        )
        assert rejected is not None
        newest_rows = _ordered(conn, newest, "901", now)  # all delivered, just now
        done_rows = _ordered(conn, done, "902", now)  # another device, all delivered
        confirmed = [lost_rows[0], *newest_rows, *done_rows]
        assert ledger.confirm_published(conn, confirmed, now) == len(confirmed)
    conn.close()

    ingest = await Ingest(ingest_settings(data_dir, mosquitto.url, ordercore.url)).start()
    try:
        await wait_for(probe, status_is("late-01", newest.event_id, "ordered"))
        sent = await _settle_and_mark(ingest, probe, "first")
        await _flush(ingest)
    finally:
        await ingest.stop()
    # the current status of each event with an unconfirmed row, in history order, then the
    # device's newest status (so it is the one retained); nothing of late-02
    assert [(m.topic.split("/")[3], _body(m)["event_id"], _body(m)["state"]) for m in sent] == [
        ("late-01", lost.event_id, "ordered"),
        ("late-01", bogus, "rejected"),
        ("late-01", newest.event_id, "ordered"),
    ]
    assert _body(sent[0])["order_id"] == "900"
    assert _unconfirmed(data_dir / "ingest.db") == []
    retained_probe.subscribe(p.device_topic("late-01", p.Channel.STATUS))
    (kept,) = await wait_for(retained_probe, lambda m: m.retain)
    assert _body(kept)["event_id"] == newest.event_id

    # every row is confirmed now: the next process publishes nothing again
    again = await Ingest(ingest_settings(data_dir, mosquitto.url, ordercore.url)).start()
    try:
        after = await _settle_and_mark(again, probe, "second")
    finally:
        await again.stop()
    assert after == sent


@pytest.mark.integration
async def test_a_republished_status_never_overtakes_a_newer_one_of_the_same_event(
    data_dir: Path,
    mosquitto: MosquittoServer,
    ordercore: OrderCore,
    probe: MqttProbe,
    retained_probe: MqttProbe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_device(data_dir, "race-01")
    event = press("race-01")
    conn = open_db(data_dir / "ingest.db").conn
    with atomic(conn):  # committed, never published; its order is still to be made
        devices = load_devices(sqlite_utils.Database(conn))
        ledger.record_event(conn, event, devices["race-01"], now=p.utcnow(), stale_after_s=60)
    conn.close()
    # Widen the race: the start-up read takes its snapshot, then stays "slow" until a newer
    # status was published (or 2 s pass, which is all the fixed start-up ever waits here).
    newer_out = threading.Event()
    real_publish, real_read = StatusPublisher.publish, ledger.unconfirmed_statuses

    def publish(self: StatusPublisher, outs: Iterable[ledger.StatusOut]) -> None:
        outs = list(outs)
        real_publish(self, outs)
        if any(o.status.state is p.State.ORDERED for o in outs):
            newer_out.set()

    def slow_read(conn: sqlite3.Connection) -> list[ledger.StatusOut]:
        snapshot = real_read(conn)
        newer_out.wait(2)
        return snapshot

    monkeypatch.setattr(StatusPublisher, "publish", publish)
    monkeypatch.setattr(ledger, "unconfirmed_statuses", slow_read)
    ingest = await Ingest(ingest_settings(data_dir, mosquitto.url, ordercore.url)).start()
    try:
        await wait_for(probe, status_is("race-01", event.event_id, "ordered"))
        sent = await _settle_and_mark(ingest, probe, "race")
    finally:
        await ingest.stop()
    assert [_body(m)["state"] for m in sent] == ["accepted", "ordered"]
    retained_probe.subscribe(p.device_topic("race-01", p.Channel.STATUS))
    (kept,) = await wait_for(retained_probe, lambda m: m.retain)
    assert _body(kept)["state"] == "ordered"


@pytest.mark.integration
async def test_delivered_statuses_are_confirmed_and_not_published_again(
    data_dir: Path,
    mosquitto: MosquittoServer,
    ordercore: OrderCore,
    probe: MqttProbe,
) -> None:
    add_device(data_dir, "sure-01")
    settings = ingest_settings(data_dir, mosquitto.url, ordercore.url)
    ingest = await Ingest(settings).start()
    event = press("sure-01")
    try:
        probe.publish(p.device_topic("sure-01", p.Channel.EVENTS), p.encode(event))
        await wait_for(probe, status_is("sure-01", event.event_id, "ordered"))
        await asyncio.wait_for(ingest.service.delivery.settled(), 15)
        await _flush(ingest)
        assert _unconfirmed(data_dir / "ingest.db") == []
    finally:
        await ingest.stop()
    before = len([m for m in probe.messages if m.topic != MARKER_TOPIC])
    again = await Ingest(settings).start()  # recent statuses: the old 15-min window re-sent them
    try:
        sent = await _settle_and_mark(again, probe, "restart")
    finally:
        await again.stop()
    assert len(sent) == before


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    add_device(tmp_path, "hook-01", allow_parallel=True)
    return tmp_path / "ingest.db"


def _history_row(db_path: Path) -> int:
    conn = open_db(db_path).conn
    try:
        with atomic(conn):
            out = ledger.record_rejection(
                conn, "hook-01", None, "malformed_json", "bad", p.utcnow()
            )
        assert out is not None
        (row,) = out.history_ids
        return row
    finally:
        conn.close()


async def test_confirmations_ride_along_with_the_next_group_commit(db_path: Path) -> None:
    row = _history_row(db_path)
    commits: list[int] = []
    tracker = DeliveryTracker(idle_flush_s=3600)  # never on its own in this test
    writer = Writer(db_path, on_commit=commits.append, before_commit=tracker.write_confirmed)
    writer.start()
    tracker.start(lambda: writer.submit(tracker.write_confirmed))
    try:
        tracker.sent(7, (row,))
        assert tracker.unanswered == 1
        tracker.confirmed(7)
        assert tracker.unanswered == 0
        assert _unconfirmed(db_path) == [(None, "rejected")]  # not written by itself
        await writer.run(
            lambda conn: conn.execute(
                "INSERT INTO audit (at, actor, action) VALUES ('t', 'test', 'other work')"
            )
        )
        assert commits == [1]  # no transaction of its own
        assert _unconfirmed(db_path) == []
        assert tracker.written == 1
    finally:
        tracker.cancel_timer()
        await writer.stop()


async def test_an_idle_writer_flushes_confirmations_after_a_short_delay(db_path: Path) -> None:
    row = _history_row(db_path)
    loop = asyncio.get_running_loop()
    committed = asyncio.Event()
    tracker = DeliveryTracker(idle_flush_s=0.01)

    def on_commit(jobs: int) -> None:  # the writer's thread
        loop.call_soon_threadsafe(committed.set)

    writer = Writer(db_path, before_commit=tracker.write_confirmed, on_commit=on_commit)
    writer.start()
    tracker.start(lambda: writer.submit(tracker.write_confirmed))
    try:
        tracker.sent(3, (row,))
        tracker.confirmed(99)  # an unknown mid (e.g. a config publish) changes nothing
        tracker.confirmed(3)
        await asyncio.wait_for(committed.wait(), 10)
        assert _unconfirmed(db_path) == []
    finally:
        tracker.cancel_timer()
        await writer.stop()


def test_migration_keeps_only_the_last_15_minutes_unconfirmed(tmp_path: Path) -> None:
    conn = connect(tmp_path / "old.db")
    conn.execute("BEGIN")
    steps = sqlite_steps()
    for statement in (*steps[0], *steps[1]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("COMMIT")
    now = p.utcnow()
    for event_id, at in (("old", now - timedelta(hours=1)), ("recent", now)):
        conn.execute(
            "INSERT INTO status_history (device_id, event_id, state, at) "
            "VALUES ('d', ?, 'accepted', ?)",
            [event_id, p.format_ts(at)],
        )
    migrate(conn)
    rows = conn.execute("SELECT event_id, published_at IS NULL FROM status_history").fetchall()
    conn.close()
    assert sorted(rows) == [("old", 0), ("recent", 1)]
