"""The history, export, device-facts and telemetry-history SQL on both backends (a real
SQLite file, a real PostgreSQL database)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.store import device_facts, history, reports, telemetry_history
from edgeorder.ingest.store.database import Conn, Database
from edgeorder.ingest.store.db import atomic
from tests.web.support import add_device, record_event

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(database: Database) -> Database:
    database.migrate()
    return database


@pytest.fixture
def ro(db: Database) -> Iterator[Conn]:
    conn = db.connect(readonly=True)
    yield conn
    conn.close()


def _events(db: Database, device_id: str, n: int, *, same_time: int = 0) -> list[int]:
    """``n`` events a second apart (the first ``same_time`` share one time); inbox ids."""
    ids = []
    for k in range(n):
        at = T0 + timedelta(seconds=max(0, k - same_time + 1) if k >= same_time else 0)
        ids.append(record_event(db, device_id, at=p.format_ts(at))[0])
    return ids


def _walk_older(ro: Conn, device_id: str, limit: int) -> list[list[int]]:
    pages, before = [], None
    while True:
        page = history.events_page(ro, device_id, before=before, limit=limit)
        pages.append([e["id"] for e in page.events])
        if page.older is None:
            return pages
        before = page.older


def test_keyset_pages_cover_every_event_once_newest_first(db: Database, ro: Conn) -> None:
    add_device(db, "kitchen-01")
    add_device(db, "other-02")
    ids = _events(db, "kitchen-01", 23, same_time=4)  # ties on received_at: id decides
    _events(db, "other-02", 3)
    pages = _walk_older(ro, "kitchen-01", 5)
    assert [len(pg) for pg in pages] == [5, 5, 5, 5, 3]
    flat = [i for pg in pages for i in pg]
    assert flat == sorted(ids, reverse=True)  # (received_at, id) order = insertion order here


def test_newer_pages_walk_back_and_end_on_the_newest_page(db: Database, ro: Conn) -> None:
    add_device(db, "kitchen-01")
    ids = _events(db, "kitchen-01", 12)
    newest = history.events_page(ro, "kitchen-01", limit=5)
    assert (newest.newer, newest.older) == (None, ids[7])
    third = history.events_page(ro, "kitchen-01", before=ids[2], limit=5)
    assert [e["id"] for e in third.events] == [ids[1], ids[0]]
    assert (third.older, third.newer) == (None, ids[1])
    back = history.events_page(ro, "kitchen-01", after=third.newer, limit=5)
    assert [e["id"] for e in back.events] == ids[6:1:-1]
    assert (back.newer, back.older) == (ids[6], ids[2])
    # Fewer than a page newer than the cursor: the newest page, as the first link gave it.
    top = history.events_page(ro, "kitchen-01", after=ids[8], limit=5)
    assert top == history.events_page(ro, "kitchen-01", limit=5)


def test_page_details_and_unknown_cursor(db: Database, ro: Conn) -> None:
    add_device(db, "kitchen-01")
    record_event(db, "kitchen-01", state="ordered", order_id="9")
    page = history.events_page(ro, "kitchen-01")
    assert [s["state"] for s in page.events[0]["statuses"]] == ["accepted", "ordered"]
    assert page.events[0]["order_state"] == "ordered"
    assert history.events_page(ro, "kitchen-01", before=10**12).events == []
    assert history.device_events(ro, "nobody", before=None, after=None, limit=5) is None
    api = history.device_events(ro, "kitchen-01", before=None, after=None, limit=5)
    assert api is not None
    assert "statuses" not in api.events[0]


def test_export_batches_follow_the_cursor_and_the_window(db: Database, ro: Conn) -> None:
    add_device(db, "kitchen-01")
    add_device(db, "other-02")
    _events(db, "kitchen-01", 7, same_time=3)
    _events(db, "other-02", 2)
    window = history.Window(device_id="kitchen-01")
    got, cursor = [], None
    while True:
        rows = history.event_export_batch(ro, window, cursor, 3)
        got += rows
        if len(rows) < 3:
            break
        cursor = (rows[-1]["received_at"], rows[-1]["id"])
    assert len(got) == 7
    assert {r["device_id"] for r in got} == {"kitchen-01"}
    assert [r["id"] for r in got] == sorted(r["id"] for r in got)
    timed = history.Window(
        start=p.format_ts(T0 + timedelta(seconds=1)), end=p.format_ts(T0 + timedelta(seconds=3))
    )
    assert {r["received_at"] for r in history.event_export_batch(ro, timed, None, 100)} == {
        p.format_ts(T0 + timedelta(seconds=1)),
        p.format_ts(T0 + timedelta(seconds=2)),
    }


def test_order_export(db: Database, ro: Conn) -> None:
    add_device(db, "kitchen-01")
    for n in range(5):
        record_event(db, "kitchen-01", state="ordered", order_id=f"o{n}", at=p.format_ts(T0))
    first = history.order_export_batch(ro, history.Window(), None, 2)
    assert [r["order_id"] for r in first] == ["o0", "o1"]
    rest = history.order_export_batch(
        ro, history.Window(), (first[-1]["created_at"], first[-1]["order_id"]), 10
    )
    assert [r["order_id"] for r in rest] == ["o2", "o3", "o4"]
    assert set(rest[0]) == set(history.ORDER_EXPORT_COLUMNS)


def _confirm(db: Database, event_id: str, at: datetime) -> None:
    with db.open() as conn, atomic(conn):
        conn.execute(
            "UPDATE status_history SET published_at = ? WHERE event_id = ?",
            (p.format_ts(at), event_id),
        )


def test_facts_take_the_latest_confirmed_status(db: Database, ro: Conn) -> None:
    add_device(db, "kitchen-01")
    add_device(db, "quiet-02")
    _, first = record_event(db, "kitchen-01", state="ordered", order_id="1")
    _confirm(db, first, T0)
    facts = device_facts.device_facts(ro)
    kitchen = facts["kitchen-01"]
    assert kitchen["led_status"] in ("accepted", "ordered")  # both confirmed at T0: ids decide
    assert kitchen["led_status"] == "ordered"
    assert kitchen["led_status_at"] == p.format_ts(T0)
    assert kitchen["last_event_answered"] == 1
    assert facts["quiet-02"]["led_status"] is None
    assert facts["quiet-02"]["last_event_answered"] == 1  # no event: nothing awaited
    record_event(db, "kitchen-01", state="accepted")  # not confirmed yet: the device waits
    again = device_facts.device_facts(ro, "kitchen-01")
    assert list(again) == ["kitchen-01"]
    assert again["kitchen-01"]["last_event_answered"] == 0


def test_telemetry_history_is_kept_for_the_retention_only(db: Database, ro: Conn) -> None:
    add_device(db, "tank-01")
    keep = 3600
    with db.open() as conn, atomic(conn):
        for minute in range(0, 130, 2):
            report = p.Telemetry.model_validate(
                {"uptime_s": minute * 60, "queue_depth": 0, "sensor.level": 100.0 - minute}
            )
            now = T0 + timedelta(minutes=minute)
            reports.record(conn, p.Channel.TELEMETRY, "tank-01", report, now, telemetry_keep_s=keep)
    now = T0 + timedelta(minutes=128)
    rows = telemetry_history.samples(ro, "tank-01", telemetry_history.WINDOWS["7d"], now)
    assert len(rows) == 2  # one an hour; nothing older than an hour is left at all
    hour = telemetry_history.samples(ro, "tank-01", telemetry_history.WINDOWS["1h"], now)
    assert len(hour) == 31  # every 2 minutes over the last hour (68..128)
    assert hour[-1]["extra"] == '{"sensor.level": -28.0}'
    assert ro.execute("SELECT COUNT(*) FROM telemetry_history").fetchone()[0] == 31
    with db.open() as conn, atomic(conn):  # 0: no history is kept (and the old rows go)
        report = p.Telemetry.model_validate({"uptime_s": 1, "queue_depth": 0})
        reports.record(conn, p.Channel.TELEMETRY, "tank-01", report, now, telemetry_keep_s=0)
    assert ro.execute("SELECT COUNT(*) FROM telemetry_history").fetchone()[0] == 0
    latest = ro.execute("SELECT uptime_s FROM telemetry WHERE device_id = 'tank-01'").fetchone()
    assert latest[0] == 1
