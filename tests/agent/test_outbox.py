"""The device outbox: durable across a restart, overflow policy, counters, and presses kept
until settled."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edgeorder.agent.errors import OutboxFullError
from edgeorder.agent.outbox import Outbox


def test_survives_restart_with_order_and_seq(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    for i in range(1, 6):
        box.add(f"E{i}", f"payload-{i}".encode(), seq=i)
    assert box.record("E2", "ordered", settled=True)
    assert box.record("E3", "accepted", settled=False)
    assert not box.record("E9", "ordered", settled=True)  # not stored
    box.close()  # the "power cut": nothing else is flushed on purpose

    again = Outbox(path)
    assert [(e.event_id, e.state) for e in again.pending()] == [
        ("E1", None),
        ("E3", "accepted"),
        ("E4", None),
        ("E5", None),
    ]
    assert again.pending()[0].payload == b"payload-1"
    assert [(s.event_id, s.state) for s in again.settled()] == [("E2", "ordered")]
    assert again.last_seq() == 5
    assert again.depth() == 3  # E3 is acknowledged: it no longer counts against max_events
    again.close()


def test_wal_and_full_sync(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    mode = box._db.execute("PRAGMA journal_mode").fetchone()[0]
    sync = box._db.execute("PRAGMA synchronous").fetchone()[0]
    assert (mode, sync) == ("wal", 2)
    box.close()


def test_drop_oldest_keeps_newest_and_counts(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_events=3, overflow="drop_oldest")
    for i in range(3):
        assert box.add(f"E{i}", b"x", seq=i + 1) == []
    assert box.add("E3", b"x", seq=4) == ["E0"]
    assert box.add("E4", b"x", seq=5) == ["E1"]
    assert [e.event_id for e in box.pending()] == ["E2", "E3", "E4"]
    assert box.dropped() == 2
    box.close()
    assert Outbox(tmp_path / "o.db").dropped() == 2  # the counter is persisted


def test_refuse_new_keeps_old_and_counts(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_events=2, overflow="refuse_new")
    box.add("E0", b"x", seq=1)
    box.add("E1", b"x", seq=2)
    with pytest.raises(OutboxFullError):
        box.add("E2", b"x", seq=3)
    assert [e.event_id for e in box.pending()] == ["E0", "E1"]
    assert box.dropped() == 1
    assert box.last_seq() == 3  # a refused event still used its number up
    box.record("E0", "accepted", settled=False)  # open presses leave room for new ones
    box.add("E3", b"x", seq=4)
    assert [e.event_id for e in box.pending()] == ["E0", "E1", "E3"]
    box.close()


def test_drop_oldest_never_drops_an_acknowledged_press(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_events=2, overflow="drop_oldest")
    box.add("E0", b"x", seq=1)
    box.record("E0", "queued", settled=False)
    box.add("E1", b"x", seq=2)
    box.add("E2", b"x", seq=3)
    assert box.add("E3", b"x", seq=4) == ["E1"]
    assert [e.event_id for e in box.pending()] == ["E0", "E2", "E3"]
    box.close()


def test_only_the_last_settled_presses_are_kept(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", keep_settled=2)
    for i in range(5):
        box.add(f"E{i}", b"x", seq=i + 1)
    box.record("E1", "accepted", settled=False)
    for i in (0, 2, 3, 4):
        box.record(f"E{i}", "ordered", settled=True)
    assert [s.event_id for s in box.settled()] == ["E3", "E4"]
    assert [e.event_id for e in box.pending()] == ["E1"]  # open: never pruned
    assert box.give_up("E1")
    assert not box.give_up("E1")
    assert [(s.event_id, s.state) for s in box.settled()] == [("E3", "ordered"), ("E4", "ordered")]
    assert box.pending() == []
    box.close()


def test_an_outbox_of_an_older_agent_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)  # the layout before presses were kept until settled
    old.executescript(
        "CREATE TABLE events (n INTEGER PRIMARY KEY AUTOINCREMENT, "
        "event_id TEXT NOT NULL UNIQUE, payload BLOB NOT NULL);"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT INTO meta VALUES ('seq', 7), ('dropped', 1);"
        "INSERT INTO events (event_id, payload) VALUES ('E6', x'01'), ('E7', x'02');"
    )
    old.close()
    box = Outbox(path)
    assert [(e.event_id, e.payload, e.state) for e in box.pending()] == [
        ("E6", b"\x01", None),
        ("E7", b"\x02", None),
    ]
    assert (box.last_seq(), box.dropped(), box.depth()) == (7, 1, 2)
    box.close()
    again = Outbox(path)  # opening a migrated file again changes nothing
    assert again._db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert len(again.pending()) == 2
    again.close()


def test_same_event_id_stored_once(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.add("E1", b"first", seq=1)
    box.add("E1", b"again", seq=1)
    assert [(e.event_id, e.payload) for e in box.pending()] == [("E1", b"first")]
    box.close()


def test_visible_to_another_reader_once_add_returns(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    box = Outbox(path)
    box.add("E1", b"x", seq=1)
    other = sqlite3.connect(path)
    assert other.execute("SELECT event_id FROM events").fetchall() == [("E1",)]
    other.close()
    box.close()
