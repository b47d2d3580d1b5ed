"""The ledger's SQL and the group-commit writer, on real SQLite files in WAL mode."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlite_utils

from edgeorder import protocol as p
from edgeorder.ingest.store import ledger
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.store.registry import load_devices
from edgeorder.ingest.store.writer import Writer, is_transient
from tests.ingest.support import add_device, press

NOW = p.utcnow()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    add_device(tmp_path, "k-01")
    add_device(tmp_path, "k-02", allow_parallel=True)
    return tmp_path / "ingest.db"


def record(conn: sqlite3.Connection, event: p.Event) -> ledger.EventOutcome:
    devices = load_devices(sqlite_utils.Database(conn))
    return ledger.record_event(
        conn, event, devices.get(event.device_id), now=NOW, stale_after_s=3600
    )


def test_the_database_is_wal_and_fully_synchronous(db_path: Path) -> None:
    db = open_db(db_path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_an_event_is_recorded_once_and_a_duplicate_answers_its_current_state(db_path: Path) -> None:
    conn = open_db(db_path).conn
    event = press("k-01", ts=NOW)
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


def test_a_reused_event_id_with_another_payload_is_a_conflict(db_path: Path) -> None:
    conn = open_db(db_path).conn
    event = press("k-01", ts=NOW)
    record(conn, event)
    conflict = record(conn, event.model_copy(update={"seq": 99}))
    assert conflict.rejection_code == "payload_conflict"
    assert conflict.status.status.reason == "event_id reused with a different payload"
    assert conn.execute("SELECT COUNT(*) FROM order_outbox").fetchone()[0] == 1
    assert conn.execute("SELECT code FROM rejections").fetchall() == [("payload_conflict",)]


def test_throttle_counts_pending_outbox_rows_and_open_orders(db_path: Path) -> None:
    conn = open_db(db_path).conn
    assert record(conn, press("k-01", ts=NOW)).status.status.state is p.State.ACCEPTED
    assert record(conn, press("k-01", ts=NOW)).status.status.state is p.State.THROTTLED
    assert record(conn, press("k-02", ts=NOW)).status.status.state is p.State.ACCEPTED
    assert record(conn, press("k-02", ts=NOW)).status.status.state is p.State.ACCEPTED


def test_transient_failures_queue_once_then_the_order_is_created(db_path: Path) -> None:
    conn = open_db(db_path).conn
    event = press("k-01", ts=NOW)
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


def test_order_state_changes_never_go_backwards(db_path: Path) -> None:
    conn = open_db(db_path).conn
    record(conn, press("k-01", ts=NOW))
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


async def test_the_writer_commits_what_waits_in_one_transaction(db_path: Path) -> None:
    commits: list[int] = []
    writer = Writer(db_path, batch_max=512, on_commit=commits.append)
    writer.start()
    gate, inside = threading.Event(), threading.Event()

    def blocker(conn: sqlite3.Connection) -> None:
        inside.set()
        gate.wait(10)  # hold the writer so the next jobs pile up behind it

    first = writer.submit(blocker)
    await asyncio.to_thread(inside.wait, 10)

    def insert(i: int) -> Callable[[sqlite3.Connection], int | None]:
        def job(conn: sqlite3.Connection) -> int | None:
            sql = "INSERT INTO audit (at, actor, action) VALUES ('t', 'test', ?)"
            return conn.execute(sql, [str(i)]).lastrowid

        return job

    futures = [writer.submit(insert(i)) for i in range(100)]
    gate.set()
    await first
    ids = await asyncio.gather(*futures)
    assert len(set(ids)) == 100
    assert commits == [1, 100]  # one commit for the blocker, ONE for the hundred waiting
    await writer.stop()


async def test_a_failing_job_fails_alone(db_path: Path) -> None:
    writer = Writer(db_path)
    writer.start()

    def boom(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO audit (at, actor, action) VALUES ('t', 'x', 'half')")
        raise ValueError("boom")

    ok = writer.submit(
        lambda conn: (
            conn.execute(
                "INSERT INTO audit (at, actor, action) VALUES ('t', 'x', 'kept')"
            ).lastrowid
        )
    )
    bad = writer.submit(boom)
    assert await ok
    with pytest.raises(ValueError, match="boom"):
        await bad
    await writer.stop()
    rows = open_db(db_path).execute("SELECT action FROM audit WHERE actor = 'x'").fetchall()
    assert rows == [("kept",)]


async def test_a_failing_job_in_a_batch_leaves_the_others_committed_once(db_path: Path) -> None:
    """The batch runs without savepoints first; a failure rolls it back and runs it again with
    a savepoint per job: the others are kept exactly once, nothing of the failing job is."""
    commits: list[int] = []
    writer = Writer(db_path, on_commit=commits.append)
    writer.start()
    gate, inside = threading.Event(), threading.Event()

    def blocker(conn: sqlite3.Connection) -> None:
        inside.set()
        gate.wait(10)

    def insert(action: str) -> Callable[[sqlite3.Connection], int | None]:
        return lambda conn: (
            conn.execute(
                "INSERT INTO audit (at, actor, action) VALUES ('t', 'y', ?)", [action]
            ).lastrowid
        )

    def boom(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO audit (at, actor, action) VALUES ('t', 'y', 'half')")
        raise ValueError("boom")

    first = writer.submit(blocker)
    await asyncio.to_thread(inside.wait, 10)
    before, bad, after = (
        writer.submit(insert("before")),
        writer.submit(boom),
        writer.submit(insert("after")),
    )
    gate.set()
    await first
    assert await before
    assert await after
    with pytest.raises(ValueError, match="boom"):
        await bad
    await writer.stop()
    assert commits == [1, 3]  # the three waiting jobs still shared one commit
    rows = (
        open_db(db_path)
        .execute("SELECT action FROM audit WHERE actor = 'y' ORDER BY id")
        .fetchall()
    )
    assert rows == [("before",), ("after",)]


async def test_the_writer_survives_sqlite_rolling_back_by_itself(db_path: Path) -> None:
    """SQLITE_FULL ends the whole transaction inside SQLite; a ROLLBACK after it used to raise
    and end the writer thread, leaving every later write waiting forever."""
    writer = Writer(db_path)
    writer.start()

    def fill(conn: sqlite3.Connection) -> None:
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
    row = await writer.run(
        lambda conn: (
            conn.execute(
                "INSERT INTO audit (at, actor, action) VALUES ('t', 'x', 'after')"
            ).lastrowid
        )
    )
    assert row is not None
    await writer.stop()
    rows = open_db(db_path).execute("SELECT action FROM audit WHERE actor = 'x'").fetchall()
    assert rows == [("after",)]
