"""The e-vendi assignment queue on a real SQLite file: claims are exactly-once per press."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ulid import ULID

from edgeorder import protocol as p
from edgeorder.ingest.cli.evendi import main as cli
from edgeorder.ingest.store import evendi_assignments as book
from edgeorder.ingest.store.db import atomic, open_db
from tests.ingest.support import add_device


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    add_device(tmp_path, "kiosk-1")
    add_device(tmp_path, "kiosk-2")
    db = open_db(tmp_path / "ingest.db")
    yield db.conn
    db.conn.close()


def claim(
    conn: sqlite3.Connection, event_id: str, sku: str = "CAFE", device: str = "kiosk-1"
) -> book.Claim | None:
    with atomic(conn):
        return book.claim(conn, device_id=device, sku=sku, event_id=event_id, now=p.utcnow())


def claimed(conn: sqlite3.Connection, event_id: str, sku: str = "CAFE") -> book.Claim:
    """The claim of a press that must get one."""
    got = claim(conn, event_id, sku)
    assert got is not None
    return got


def test_presses_take_the_oldest_order_of_their_device_and_sku(conn: sqlite3.Connection) -> None:
    book.assign(conn, "kiosk-1", "A", sku="TEA")
    book.assign(conn, "kiosk-1", "B")
    book.assign(conn, "kiosk-2", "C")
    book.assign(conn, "kiosk-1", "D", sku="CAFE")
    assert claimed(conn, "e1").order_id == "B"  # A is for TEA presses only
    assert claimed(conn, "e2").order_id == "D"
    assert claim(conn, "e3") is None  # C belongs to kiosk-2
    assert claimed(conn, "e4", sku="TEA").order_id == "A"


def test_a_press_claims_once_and_counts_its_attempts(conn: sqlite3.Connection) -> None:
    book.assign(conn, "kiosk-1", "A")
    book.assign(conn, "kiosk-1", "B")
    first = claimed(conn, "e1")
    again = claimed(conn, "e1")
    assert (first.order_id, first.attempts_before) == ("A", 0)
    assert (again.order_id, again.attempts_before) == ("A", 1)
    with atomic(conn):
        book.mark_closed(conn, "e1", p.utcnow())
    settled = claimed(conn, "e1")
    assert (settled.order_id, settled.state) == ("A", "closed")
    assert claimed(conn, "e2").order_id == "B"


def test_failed_orders_leave_the_queue_until_requeued(conn: sqlite3.Connection) -> None:
    row = book.assign(conn, "kiosk-1", "A")
    claim(conn, "e1")
    with atomic(conn):
        book.mark_failed(conn, "e1", "refused", p.utcnow())
    assert claim(conn, "e2") is None
    requeued = book.requeue(conn, row["id"], actor="op")
    assert (requeued["state"], requeued["event_id"], requeued["attempts"]) == ("pending", None, 0)
    assert claimed(conn, "e3").order_id == "A"
    audit = conn.execute("SELECT action, actor FROM audit WHERE action LIKE 'evendi.%'").fetchall()
    assert audit == [("evendi.assign", "system"), ("evendi.requeue", "op")]


def test_operator_errors_are_clear(conn: sqlite3.Connection) -> None:
    row = book.assign(conn, "kiosk-1", "A")
    with pytest.raises(book.AssignmentConflictError, match="already assigned to kiosk-1"):
        book.assign(conn, "kiosk-2", "A")
    with pytest.raises(book.UnknownDeviceError, match="no device 'ghost'"):
        book.assign(conn, "ghost", "B")
    with pytest.raises(book.AssignmentError, match="printable"):
        book.assign(conn, "kiosk-1", "bad\x00id")
    with pytest.raises(book.AssignmentConflictError, match="is pending, not failed"):
        book.requeue(conn, row["id"])
    with pytest.raises(book.UnknownAssignmentError):
        book.withdraw(conn, 999)
    with pytest.raises(book.AssignmentError, match="state must be one of"):
        book.list_assignments(conn, state="lost")
    book.withdraw(conn, row["id"])
    with pytest.raises(book.AssignmentConflictError, match="is withdrawn, not pending"):
        book.withdraw(conn, row["id"])
    assert claim(conn, "e1") is None
    again = book.assign(conn, "kiosk-2", "A")  # a withdrawn order may be assigned again
    assert (again["device_id"], again["state"]) == ("kiosk-2", "pending")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    orders=st.integers(min_value=0, max_value=5),
    presses=st.lists(st.integers(min_value=0, max_value=6), max_size=25),
)
def test_no_order_is_ever_claimed_by_two_presses(
    tmp_path_factory: pytest.TempPathFactory, orders: int, presses: list[int]
) -> None:
    """Any sequence of (re)tried presses: each press always gets the same order, no order goes
    to two presses, and presses get orders while any are left."""
    path = tmp_path_factory.mktemp("claims")
    add_device(path, "kiosk-1")
    db = open_db(path / "ingest.db")
    try:
        for n in range(orders):
            book.assign(db.conn, "kiosk-1", f"O{n}")
        events = [str(ULID()) for _ in range(7)]
        got: dict[str, str | None] = {}
        for n in presses:
            result = claim(db.conn, events[n])
            order = result.order_id if result else None
            if events[n] in got and got[events[n]] is not None:
                assert order == got[events[n]]
            got[events[n]] = got.get(events[n]) or order
        taken = [o for o in got.values() if o is not None]
        assert len(taken) == len(set(taken))
        assert len(taken) == min(orders, len(got))
    finally:
        db.conn.close()


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_device(tmp_path, "kiosk-1")
    base = ["--data-dir", str(tmp_path)]
    assert cli([*base, "assign", "kiosk-1", "PED-1", "--sku", "CAFE", "--note", "café"], "ev") == 0
    assert "PED-1" in capsys.readouterr().out
    assert cli([*base, "assign", "kiosk-1", "PED-1"], "ev") == 1
    assert "already assigned" in capsys.readouterr().err
    assert cli([*base, "list", "--device", "kiosk-1", "--state", "pending"], "ev") == 0
    assert "PED-1" in capsys.readouterr().out
    assert cli([*base, "withdraw", "1"], "ev") == 0
    assert "withdrawn" in capsys.readouterr().out
    assert cli([*base, "show", "1", "--json"], "ev") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["order_id"], shown["sku"], shown["state"]) == ("PED-1", "CAFE", "withdrawn")
