"""One PostgreSQL ledger shared by several workers: what must hold between their transactions.

Each "worker" here is its own writer (its own session), as in N ingest processes. Where a
test needs to show that one worker is kept out while another holds something, the waiting
session gets a short ``lock_timeout``: it then fails with lock_not_available instead of
waiting, which proves it was kept out -- no sleeping, no timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.store import ledger, registry
from edgeorder.ingest.store.database import Conn, Database, is_transient
from edgeorder.ingest.store.registry import load_devices
from edgeorder.ingest.store.writer import Writer
from tests.ingest.support import press

NOW = p.utcnow()
MAPPING = p.ButtonMapping(
    single=p.ReorderAction(sku="COFFEE-1KG", quantity=1), long=p.CancelLastAction()
)


@pytest.fixture
def shared(pg_url: str) -> Database:
    database = Database.from_url(pg_url)
    with database.open() as conn:
        registry.add_device(conn, "k-01", mapping=MAPPING)
    return database


def record(event: p.Event) -> Callable[[Conn], ledger.EventOutcome]:
    def job(conn: Conn) -> ledger.EventOutcome:
        device = load_devices(conn).get(event.device_id)
        return ledger.record_event(conn, event, device, now=NOW, stale_after_s=3600)

    return job


def short_lock_wait(conn: Conn) -> None:
    conn.execute("SET lock_timeout = '200ms'")


async def test_a_press_waits_for_the_device_lock_of_another_worker(shared: Database) -> None:
    """Worker A records a press and holds its transaction open; worker B's press for the same
    device cannot even start deciding (its lock wait times out), and once A committed, B sees
    A's order in flight: throttled. Without the lock both would be accepted: two orders."""
    a, b = Writer(shared), Writer(shared)
    a.start()
    b.start()
    gate, inside = threading.Event(), threading.Event()
    first, second = press("k-01", ts=NOW), press("k-01", ts=NOW)

    def hold(conn: Conn) -> ledger.EventOutcome:
        outcome = record(first)(conn)
        inside.set()
        gate.wait(10)
        return outcome

    held = a.submit(hold, key="k-01")
    await asyncio.to_thread(inside.wait, 10)
    await b.run(short_lock_wait)
    with pytest.raises(Exception) as kept_out:
        await b.run(record(second), key="k-01")
    assert getattr(kept_out.value, "sqlstate", None) == "55P03"  # lock_not_available
    assert is_transient(kept_out.value)  # the router retries it
    gate.set()
    assert (await held).status.status.state is p.State.ACCEPTED
    retried = await b.run(record(second), key="k-01")
    assert retried.status.status.state is p.State.THROTTLED
    await a.stop()
    await b.stop()


async def test_a_redelivery_on_another_worker_is_a_duplicate(shared: Database) -> None:
    a, b = Writer(shared), Writer(shared)
    a.start()
    b.start()
    event = press("k-01", ts=NOW)
    outcomes = await asyncio.gather(
        a.run(record(event), key="k-01"), b.run(record(event), key="k-01")
    )
    assert sorted(o.duplicate for o in outcomes) == [False, True]
    assert {o.status.status.state for o in outcomes} == {p.State.ACCEPTED}
    with shared.open(migrate=False) as conn:
        assert conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM order_outbox").fetchone()[0] == 1
    await a.stop()
    await b.stop()


def _outbox_rows(shared: Database, presses: int) -> None:
    with shared.open(migrate=False) as conn:
        registry.update_mapping(conn, "k-01", MAPPING)
        conn.execute("UPDATE devices SET allow_parallel = 1")
        for _ in range(presses):
            record(press("k-01", ts=NOW))(conn)


def test_two_workers_claiming_at_once_take_different_rows(shared: Database) -> None:
    """A's claim is still uncommitted (its rows locked); B's claim skips them at once
    (SKIP LOCKED) and leases the others; a third claim finds nothing left."""
    _outbox_rows(shared, 4)
    with shared.open(migrate=False) as a, shared.open(migrate=False) as b:
        a.execute("BEGIN")
        mine = ledger.claim_due(a, "worker-a", NOW, 30, limit=2)
        short_lock_wait(b)
        theirs = ledger.claim_due(b, "worker-b", NOW, 30, limit=10)  # never waits for A
        a.execute("COMMIT")
        assert len(mine) == 2
        assert len(theirs) == 2
        assert not {r.id for r in mine} & {r.id for r in theirs}
        assert ledger.claim_due(b, "worker-c", NOW, 30, limit=10) == []
        assert all(r.claims == 1 for r in mine + theirs)


def test_a_lease_that_ran_out_is_taken_over(shared: Database) -> None:
    """A killed worker never settles its rows: once the lease is over, another takes them,
    knowing an earlier worker may have called the platform (claims > 1)."""
    _outbox_rows(shared, 1)
    with shared.open(migrate=False) as conn:
        (dead,) = ledger.claim_due(conn, "killed", NOW, 30, limit=10)
        assert ledger.claim_due(conn, "alive", NOW + timedelta(seconds=29), 30, limit=10) == []
        wake = ledger.next_wake(conn, NOW)
        assert wake is not None
        assert p.format_ts(wake) == p.format_ts(NOW + timedelta(seconds=30))
        (taken,) = ledger.claim_due(conn, "alive", NOW + timedelta(seconds=30), 30, limit=10)
        assert (taken.id, taken.claims) == (dead.id, 2)


def test_workers_starting_together_migrate_once(pg_url: str) -> None:
    database = Database.from_url(pg_url)
    with ThreadPoolExecutor(4) as pool:
        versions = list(pool.map(lambda _: database.migrate(), range(4)))
    assert set(versions) == {len(ledger_migrations())}
    with database.open(migrate=False) as conn:
        rows = conn.execute("SELECT version FROM edgeorder_schema ORDER BY version").fetchall()
    assert [r[0] for r in rows] == list(range(1, len(ledger_migrations()) + 1))


def ledger_migrations() -> list[object]:
    from edgeorder.ingest.store.migrations import MIGRATIONS

    return list(MIGRATIONS)


def test_a_row_two_workers_both_called_for_is_settled_once(shared: Database) -> None:
    """A lease ran out while its worker was still waiting for the platform; the worker that
    took the row over called too (the idempotency key keeps it one order). Whichever records
    first wins; the other's record changes nothing -- checked and changed in one statement."""
    _outbox_rows(shared, 1)
    with shared.open(migrate=False) as a, shared.open(migrate=False) as b:
        (slow,) = ledger.claim_due(a, "slow", NOW, 30, limit=1)
        later = NOW + timedelta(seconds=31)
        (fast,) = ledger.claim_due(b, "fast", later, 30, limit=1)

        def create(conn: Conn, row: ledger.OutboxRow) -> list[ledger.StatusOut]:
            return ledger.mark_created(
                conn,
                row,
                order_id="77",
                state=p.State.ORDERED,
                platform_status=0,
                amount=None,
                currency=None,
                now=later,
            )

        assert [o.status.state for o in create(b, fast)] == [p.State.ORDERED]
        assert create(a, slow) == []
        assert ledger.mark_failed(a, slow, reason="timeout", now=later) == []
        history = a.execute("SELECT state FROM status_history ORDER BY id").fetchall()
        assert [h[0] for h in history] == ["accepted", "ordered"]


def test_order_states_from_two_workers_never_go_backwards(shared: Database) -> None:
    """A webhook (``paid``) on one worker, a poll (``shipped``) on another: the first to lock
    the order wins the race, the other re-reads it and moves only forward."""
    _outbox_rows(shared, 1)
    with shared.open(migrate=False) as a, shared.open(migrate=False) as b:
        (row,) = ledger.claim_due(a, "w", NOW, 30, limit=1)
        ledger.mark_created(
            a,
            row,
            order_id="5",
            state=p.State.ORDERED,
            platform_status=0,
            amount=None,
            currency=None,
            now=NOW,
        )
        a.execute("BEGIN")
        shipped = ledger.apply_order_state(a, "5", p.State.SHIPPED, 5, NOW, source="poll")
        short_lock_wait(b)
        with pytest.raises(Exception) as waited:  # b must wait for a's lock on the order
            ledger.apply_order_state(b, "5", p.State.PAID, 2, NOW, source="webhook")
        assert getattr(waited.value, "sqlstate", None) == "55P03"
        a.execute("COMMIT")
        assert [o.status.state for o in shipped] == [p.State.SHIPPED]
        assert ledger.apply_order_state(b, "5", p.State.PAID, 2, NOW, source="webhook") == []
        assert b.execute("SELECT state FROM orders").fetchone()[0] == "shipped"


def terminate_sessions(database: Database) -> int:
    """What a restarting PostgreSQL does to ingest: every session of ingest's ends."""
    assert database.url is not None
    import psycopg

    with psycopg.connect(database.url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database() "
            "AND pid <> pg_backend_pid()",
            ["edgeorder-ingest"],
        ).fetchall()
    return len(rows)


async def test_the_writer_and_readers_come_back_after_the_server_dropped_them(
    shared: Database,
) -> None:
    from edgeorder.ingest.store.reader import Reader

    writer, reader = Writer(shared), Reader(shared, threads=1)
    writer.start()
    try:
        count = "SELECT COUNT(*) FROM devices"
        assert await writer.run(lambda c: c.execute(count).fetchone()[0]) == 1
        assert await reader(lambda c: c.execute(count).fetchone()[0]) == 1
        assert terminate_sessions(shared) >= 2
        with pytest.raises(Exception) as lost:  # the job that meets the dead session
            await writer.run(lambda c: c.execute(count).fetchone()[0])
        assert is_transient(lost.value)  # so the router and the worker retry it
        assert await writer.run(lambda c: c.execute(count).fetchone()[0]) == 1
        assert await reader(lambda c: c.execute(count).fetchone()[0]) == 1  # checked, replaced
    finally:
        await writer.stop()
        reader.close()


def test_a_stopping_worker_gives_its_leases_up(shared: Database) -> None:
    _outbox_rows(shared, 2)
    with shared.open(migrate=False) as conn:
        (first,) = ledger.claim_due(conn, "stopping", NOW, 60, limit=1)
        assert len(ledger.claim_due(conn, "staying", NOW, 60, limit=1)) == 1
        assert ledger.release_leases(conn, "stopping") == 1
        (taken,) = ledger.claim_due(conn, "other", NOW, 60, limit=10)  # at once, not in 60 s
        assert (taken.id, taken.claims) == (first.id, 2)  # "may exist": it was sent before
        assert ledger.claim_due(conn, "third", NOW, 60, limit=10) == []  # "staying" keeps its
