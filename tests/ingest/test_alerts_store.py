"""The alerts' SQL on both backends: facts, lifecycle, one open alert per (kind, device) and one
message per transition even with several writers (workers) on one database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.domain.alerts import AlertKind, Condition
from edgeorder.ingest.store import alerts as store
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.database import Database
from edgeorder.ingest.store.reports import record_presence, record_telemetry
from edgeorder.ingest.store.writer import Writer

NOW = p.utcnow()
MAPPING = p.ButtonMapping(single=p.ReorderAction(sku="COFFEE-1KG", quantity=1))
CHANNELS = ("webhook", "email")


def offline(device_id: str = "k-01", detail: str = "offline since then") -> dict:
    c = Condition(AlertKind.DEVICE_OFFLINE, device_id, NOW - timedelta(minutes=5), detail)
    return {c.key: c}


@pytest.fixture
def db(database: Database) -> Database:
    with database.open() as conn:
        registry.add_device(conn, "k-01", mapping=MAPPING)
        registry.add_device(conn, "k-02", mapping=MAPPING)
    return database


def test_facts_come_from_presence_telemetry_config_and_the_inbox(db: Database) -> None:
    with db.open() as conn:
        record_presence(conn, "k-01", p.Presence(online=False, fw="1", ts=NOW), NOW)
        record_telemetry(conn, "k-02", p.Telemetry(uptime_s=5, queue_depth=7, dropped=2), NOW)
        registry.set_enabled(conn, "k-02", True, actor="t")
        facts = store.gather_facts(conn, NOW, 600)
    assert facts["oldest_pending"] is None
    assert facts["pending"] == 0
    by_id = {d.device_id: d for d in facts["devices"]}
    assert by_id["k-01"].online is False
    assert by_id["k-01"].presence_at == NOW.replace(microsecond=NOW.microsecond // 1000 * 1000)
    assert (by_id["k-02"].queue_depth, by_id["k-02"].dropped) == (7, 2)
    assert by_id["k-02"].online is None
    assert not by_id["k-02"].config_reported


def test_lifecycle_open_acknowledge_clear_then_a_new_alert(db: Database) -> None:
    with db.open() as conn:
        made = store.apply(conn, offline(), NOW, hold_s=0, channels=CHANNELS)
        assert [(t.transition, t.device_id) for t in made] == [("opened", "k-01")]
        assert store.apply(conn, offline(), NOW, hold_s=0, channels=CHANNELS) == []
        alert_id = made[0].alert_id
        store.apply(conn, offline(detail="offline since, still"), NOW, hold_s=0, channels=())
        acked = store.acknowledge(conn, alert_id, actor="ops", now=NOW, channels=CHANNELS)
        assert acked["state"] == "acknowledged"
        assert acked["acknowledged_by"] == "ops"
        assert acked["detail"] == "offline since, still"
        with pytest.raises(store.AlertNotActiveError):
            store.acknowledge(conn, alert_id, actor="ops", now=NOW, channels=CHANNELS)
        with pytest.raises(store.AlertNotFoundError):
            store.acknowledge(conn, 999, actor="ops", now=NOW, channels=CHANNELS)
        cleared = store.apply(conn, {}, NOW, hold_s=0, channels=CHANNELS)
        assert [t.transition for t in cleared] == ["cleared"]
        again = store.apply(conn, offline(), NOW, hold_s=0, channels=CHANNELS)
        assert again[0].alert_id != alert_id
        rows = store.list_alerts(conn)
        assert [(r["id"], r["state"]) for r in rows] == [
            (again[0].alert_id, "active"),
            (alert_id, "cleared"),
        ]
        assert store.list_alerts(conn, state="cleared")[0]["cleared_at"] is not None
        assert store.open_counts(conn) == {"device_offline": 1}
        audit = conn.execute(
            "SELECT actor, action FROM audit WHERE action = ?", ["alert.acknowledge"]
        )
        assert audit.fetchall() == [("ops", "alert.acknowledge")]
        queued = conn.execute(
            "SELECT transition, channel FROM alert_notifications WHERE alert_id = ? ORDER BY id",
            [alert_id],
        ).fetchall()
    assert [tuple(r) for r in queued] == [
        ("opened", "webhook"),
        ("opened", "email"),
        ("acknowledged", "webhook"),
        ("acknowledged", "email"),
        ("cleared", "webhook"),
        ("cleared", "email"),
    ]


def test_the_clear_hold_keeps_a_flapping_alert_open(db: Database) -> None:
    with db.open() as conn:
        store.apply(conn, offline(), NOW, hold_s=60, channels=CHANNELS)
        store.apply(conn, {}, NOW + timedelta(seconds=10), hold_s=60, channels=CHANNELS)
        store.apply(conn, offline(), NOW + timedelta(seconds=20), hold_s=60, channels=CHANNELS)
        store.apply(conn, {}, NOW + timedelta(seconds=30), hold_s=60, channels=CHANNELS)
        assert store.apply(conn, {}, NOW + timedelta(seconds=89), hold_s=60, channels=()) == []
        made = store.apply(conn, {}, NOW + timedelta(seconds=90), hold_s=60, channels=CHANNELS)
        assert [t.transition for t in made] == ["cleared"]
        count = conn.execute("SELECT COUNT(*) FROM alert_notifications").fetchone()[0]
    assert count == 4  # opened and cleared, on two channels: no message for the flaps


async def test_two_workers_open_one_alert_and_send_each_message_once(db: Database) -> None:
    a, b = Writer(db), Writer(db)
    a.start()
    b.start()
    try:
        job = partial(store.apply, desired=offline(), now=NOW, hold_s=0, channels=CHANNELS)
        made = await asyncio.gather(*(w.run(job) for w in (a, b, a, b)))
        assert sum(len(m) for m in made) == 1
        claim = partial(store.claim_notifications, now=NOW, lease_s=60)
        got = await asyncio.gather(
            a.run(partial(claim, owner="a")), b.run(partial(claim, owner="b"))
        )
        ids = [n.id for batch in got for n in batch]
        assert len(ids) == 2
        assert len(set(ids)) == 2
        assert {n.alert["kind"] for batch in got for n in batch} == {"device_offline"}
        assert await a.run(partial(claim, owner="a")) == []  # leased
        later = NOW + timedelta(seconds=61)  # the leases ran out: a dead worker's rows
        again = await b.run(partial(store.claim_notifications, owner="b", now=later, lease_s=60))
        assert sorted(n.id for n in again) == sorted(ids)
        await b.run(partial(store.mark_sent, ids=[again[0].id], now=later))
        await b.run(partial(store.mark_summarised, ids=[again[1].id], now=later))
        sent = await b.run(partial(store.sent_since, channel=again[0].channel, since=NOW))
        assert sent == 1
        assert await b.run(partial(claim, owner="b", now=later + timedelta(hours=1))) == []
    finally:
        await a.stop()
        await b.stop()


def test_failed_notifications_retry_then_give_up(db: Database) -> None:
    with db.open() as conn:
        store.apply(conn, offline(), NOW, hold_s=0, channels=("webhook",))
        [n] = store.claim_notifications(conn, owner="w", now=NOW, lease_s=60)
        retry_at = NOW + timedelta(seconds=5)
        store.mark_failed(conn, [n.id], error="boom", retry_at=retry_at)
        assert store.claim_notifications(conn, owner="w", now=NOW, lease_s=60) == []
        [again] = store.claim_notifications(conn, owner="w", now=retry_at, lease_s=60)
        assert again.attempts == 1
        store.mark_failed(conn, [n.id], error="boom", retry_at=None)
        row = conn.execute(
            "SELECT state, attempts, last_error FROM alert_notifications WHERE id = ?", [n.id]
        ).fetchone()
    assert tuple(row) == ("failed", 2, "boom")
