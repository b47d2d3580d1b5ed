"""The ledger's SQL and the group-commit writer, on both backends: a real SQLite file in WAL
mode and a real PostgreSQL database (``database`` fixture; one scratch database per test)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.domain import rules
from edgeorder.ingest.store import ledger, registry
from edgeorder.ingest.store.database import Conn, Database
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.store.registry import load_devices
from edgeorder.ingest.store.writer import Writer, is_transient

NOW = p.utcnow()
MAPPING = p.ButtonMapping(
    single=p.ReorderAction(sku="COFFEE-1KG", quantity=1), long=p.CancelLastAction()
)


@pytest.fixture
def db(database: Database) -> Database:
    """The database with two devices: k-01 (throttled) and k-02 (orders in parallel)."""
    with database.open() as conn:
        registry.add_device(conn, "k-01", mapping=MAPPING)
        registry.add_device(conn, "k-02", mapping=MAPPING, allow_parallel=True)
    return database


@pytest.fixture
def conn(db: Database) -> Iterator[Conn]:
    with db.open(migrate=False) as conn:
        yield conn


def record(conn: Conn, event: p.Event, now: object = NOW) -> ledger.EventOutcome:
    devices = load_devices(conn)
    return ledger.record_event(
        conn, event, devices.get(event.device_id), now=NOW, stale_after_s=3600
    )


def press(device_id: str, click: p.Click = p.Click.SINGLE) -> p.Event:
    from tests.ingest.support import press as make

    return make(device_id, click, ts=NOW)


def insert_audit(action: str, actor: str = "test") -> Callable[[Conn], int]:
    def job(conn: Conn) -> int:
        sql = "INSERT INTO audit (at, actor, action) VALUES ('t', ?, ?) RETURNING id"
        return int(conn.execute(sql, [actor, action]).fetchone()[0])

    return job


def actions(database: Database, actor: str) -> list[str]:
    with database.open(migrate=False) as conn:
        rows = conn.execute(
            "SELECT action FROM audit WHERE actor = ? ORDER BY id", [actor]
        ).fetchall()
    return [r[0] for r in rows]


def test_the_database_is_wal_and_fully_synchronous(tmp_path: Path) -> None:
    db = open_db(tmp_path / "ingest.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_an_event_is_recorded_once_and_a_duplicate_answers_its_current_state(conn: Conn) -> None:
    event = press("k-01")
    first = record(conn, event)
    assert (first.status.status.state, first.duplicate, first.outbox_created) == (
        p.State.ACCEPTED,
        False,
        True,
    )
    again = record(conn, event)
    assert (again.status.status.state, again.duplicate) == (p.State.ACCEPTED, True)
    assert conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM order_outbox").fetchone()[0] == 1


def test_a_reused_event_id_with_another_payload_is_a_conflict(conn: Conn) -> None:
    event = press("k-01")
    record(conn, event)
    conflict = record(conn, event.model_copy(update={"seq": 99}))
    assert conflict.rejection_code == "payload_conflict"
    assert conflict.rejection_reason == "event_id reused with a different payload"
    # the press keeps its outcome on the device: the refused copy gets the event's own status
    assert (conflict.status.status.event_id, conflict.status.status.state) == (
        event.event_id,
        p.State.ACCEPTED,
    )
    assert conn.execute("SELECT COUNT(*) FROM order_outbox").fetchone()[0] == 1
    assert conn.execute("SELECT code FROM rejections").fetchall() == [("payload_conflict",)]
    # an undecodable message that carries the recorded id: refused the same way
    bad = ledger.record_rejection(conn, "k-01", event.event_id, "invalid", "seq: too small", NOW)
    assert bad is not None
    assert (bad.status.state, bad.status.reason) == (p.State.ACCEPTED, None)
    fresh = ledger.record_rejection(conn, "k-01", press("k-01").event_id, "invalid", "x", NOW)
    assert fresh is not None
    assert (fresh.status.state, fresh.status.reason) == (p.State.REJECTED, "x")


def test_throttle_counts_pending_outbox_rows_and_open_orders(conn: Conn) -> None:
    assert record(conn, press("k-01")).status.status.state is p.State.ACCEPTED
    assert record(conn, press("k-01")).status.status.state is p.State.THROTTLED
    assert record(conn, press("k-02")).status.status.state is p.State.ACCEPTED
    assert record(conn, press("k-02")).status.status.state is p.State.ACCEPTED


def test_transient_failures_queue_once_then_the_order_is_created(conn: Conn) -> None:
    event = press("k-01")
    record(conn, event)
    (row,) = ledger.due_outbox(conn, NOW, 10)
    later = NOW + timedelta(seconds=5)
    first = ledger.mark_transient(conn, row, error="down", next_attempt_at=later, now=NOW)
    assert [o.status.state for o in first] == [p.State.QUEUED]
    assert ledger.due_outbox(conn, NOW, 10) == []  # not due before its backoff
    (row,) = ledger.due_outbox(conn, later, 10)
    assert ledger.mark_transient(conn, row, error="down", next_attempt_at=later, now=NOW) == []
    (row,) = ledger.due_outbox(conn, later, 10)
    outs = ledger.mark_created(
        conn,
        row,
        order_id="77",
        state=p.State.ORDERED,
        platform_status=0,
        amount=8990,
        currency="BRL",
        now=NOW,
    )
    assert [(o.status.state, o.status.order_id) for o in outs] == [(p.State.ORDERED, "77")]
    assert ledger.due_outbox(conn, later, 10) == []
    assert conn.execute("SELECT attempts, state FROM order_outbox").fetchone() == (3, "done")
    history = conn.execute(
        "SELECT state FROM status_history WHERE event_id = ? ORDER BY id", [event.event_id]
    ).fetchall()
    assert [h[0] for h in history] == ["accepted", "queued", "ordered"]


def _row_of(conn: Conn, event: p.Event) -> ledger.OutboxRow:
    (row,) = [r for r in ledger.due_outbox(conn, NOW, 100) if r.event_id == event.event_id]
    return row


def _created(conn: Conn, event: p.Event, order_id: str) -> None:
    ledger.mark_created(
        conn,
        _row_of(conn, event),
        order_id=order_id,
        state=p.State.ORDERED,
        platform_status=0,
        amount=None,
        currency=None,
        now=NOW,
    )


def test_a_long_press_cancels_the_last_order_never_an_older_one(conn: Conn) -> None:
    """k-02 orders in parallel. A long press while the last press's order is still being
    placed cancels nothing (not the order before it); once it is placed, one long press
    cancels it and the next finds nothing to cancel -- never the order before."""
    first, second = press("k-02"), press("k-02")
    record(conn, first)
    _created(conn, first, "1")
    record(conn, second)  # its create is pending: the platform has not answered yet
    too_early = record(conn, press("k-02", p.Click.LONG))
    assert (too_early.status.status.state, too_early.status.status.reason) == (
        p.State.REJECTED,
        rules.REASON_CANCEL_TOO_EARLY,
    )
    assert too_early.rejection_code == "cancel_too_early"
    cancels = "SELECT target_order_id FROM order_outbox WHERE op = 'cancel' ORDER BY id"
    assert conn.execute(cancels).fetchall() == []  # order 1 stays

    _created(conn, second, "2")
    cancel = record(conn, press("k-02", p.Click.LONG))
    assert (cancel.status.status.state, cancel.outbox_created) == (p.State.ACCEPTED, True)
    again = record(conn, press("k-02", p.Click.LONG))  # order 2 is being cancelled
    assert again.status.status.reason == rules.REASON_NOTHING_TO_CANCEL
    (row,) = [r for r in ledger.due_outbox(conn, NOW, 100) if r.op == "cancel"]
    ledger.mark_cancelled(conn, row, now=NOW)
    after = record(conn, press("k-02", p.Click.LONG))  # order 2 cancelled: still not order 1
    assert after.status.status.reason == rules.REASON_NOTHING_TO_CANCEL
    assert conn.execute(cancels).fetchall() == [("2",)]
    states = "SELECT order_id, state FROM orders ORDER BY order_id"
    assert conn.execute(states).fetchall() == [("1", "ordered"), ("2", "cancelled")]


def test_order_state_changes_never_go_backwards(conn: Conn) -> None:
    record(conn, press("k-01"))
    (row,) = ledger.due_outbox(conn, NOW, 10)
    ledger.mark_created(
        conn,
        row,
        order_id="5",
        state=p.State.ORDERED,
        platform_status=0,
        amount=None,
        currency=None,
        now=NOW,
    )
    shipped = ledger.apply_order_state(conn, "5", p.State.SHIPPED, 5, NOW, source="webhook")
    assert [o.status.state for o in shipped] == [p.State.SHIPPED]
    assert ledger.apply_order_state(conn, "5", p.State.PAID, 2, NOW, source="poll") == []
    assert ledger.apply_order_state(conn, "404", p.State.PAID, 2, NOW, source="poll") == []
    assert conn.execute("SELECT state FROM orders").fetchone()[0] == "shipped"


async def test_the_writer_commits_what_waits_in_one_transaction(db: Database) -> None:
    commits: list[int] = []
    writer = Writer(db, batch_max=512, on_commit=commits.append)
    writer.start()
    gate, inside = threading.Event(), threading.Event()

    def blocker(conn: Conn) -> None:
        inside.set()
        gate.wait(10)  # hold the writer so the next jobs pile up behind it

    first = writer.submit(blocker)
    await asyncio.to_thread(inside.wait, 10)
    futures = [writer.submit(insert_audit(str(i))) for i in range(100)]
    gate.set()
    await first
    ids = await asyncio.gather(*futures)
    assert len(set(ids)) == 100
    assert commits == [1, 100]  # one commit for the blocker, ONE for the hundred waiting
    await writer.stop()


async def test_a_failing_job_fails_alone(db: Database) -> None:
    writer = Writer(db)
    writer.start()

    def boom(conn: Conn) -> None:
        insert_audit("half", "x")(conn)
        raise ValueError("boom")

    ok = writer.submit(insert_audit("kept", "x"))
    bad = writer.submit(boom)
    assert await ok
    with pytest.raises(ValueError, match="boom"):
        await bad
    await writer.stop()
    assert actions(db, "x") == ["kept"]


async def test_a_failing_job_in_a_batch_leaves_the_others_committed_once(db: Database) -> None:
    """The batch runs without savepoints first; a failure rolls it back and runs it again with
    a savepoint per job: the others are kept exactly once, nothing of the failing job is. On
    PostgreSQL the failed statement also aborts the transaction: the rollback must clear it."""
    commits: list[int] = []
    writer = Writer(db, on_commit=commits.append)
    writer.start()
    gate, inside = threading.Event(), threading.Event()

    def blocker(conn: Conn) -> None:
        inside.set()
        gate.wait(10)

    def bad_sql(conn: Conn) -> None:
        insert_audit("half", "y")(conn)
        conn.execute("INSERT INTO audit (at, actor, action) VALUES ('t', 'y', NULL)")  # NOT NULL

    first = writer.submit(blocker)
    await asyncio.to_thread(inside.wait, 10)
    before, bad, after = (
        writer.submit(insert_audit("before", "y")),
        writer.submit(bad_sql),
        writer.submit(insert_audit("after", "y")),
    )
    gate.set()
    await first
    assert await before
    assert await after
    with pytest.raises(Exception) as caught:
        await bad
    assert not is_transient(caught.value)  # a constraint: the same job fails every time
    await writer.stop()
    assert commits == [1, 3]  # the three waiting jobs still shared one commit
    assert actions(db, "y") == ["before", "after"]


async def test_the_writer_survives_sqlite_rolling_back_by_itself(tmp_path: Path) -> None:
    """SQLITE_FULL ends the whole transaction inside SQLite; a ROLLBACK after it used to raise
    and end the writer thread, leaving every later write waiting forever."""
    database = Database.sqlite(tmp_path / "ingest.db")
    database.migrate()
    writer = Writer(database)
    writer.start()

    def fill(conn: Conn) -> None:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # "the disk" is full now
        for _ in range(1000):
            conn.execute(
                "INSERT INTO audit (at, actor, action, detail) VALUES ('t', 'x', 'fill', ?)",
                ["x" * 4000],
            )

    with pytest.raises(sqlite3.OperationalError, match="full") as caught:
        await writer.submit(fill)
    assert is_transient(caught.value)
    await writer.run(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823"))  # freed
    assert await writer.run(insert_audit("after", "x"))
    await writer.stop()
    assert actions(database, "x") == ["after"]


async def test_the_device_cache_reloads_only_when_the_registry_changed(db: Database) -> None:
    """Another process's registry change (any audit row) is found by its mark, on both
    backends; nothing else makes the cache reload."""
    from edgeorder.ingest.store.device_cache import DeviceCache

    cache = DeviceCache(db)
    await cache.reload()
    assert not await cache.reload_if_changed()
    with db.open(migrate=False) as other:
        registry.set_enabled(other, "k-01", False, actor="cli")
    before = cache.get("k-01")
    assert before is not None
    assert before.enabled
    assert await cache.reload_if_changed()
    after = cache.get("k-01")
    assert after is not None
    assert not after.enabled
    assert not await cache.reload_if_changed()
