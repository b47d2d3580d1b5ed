"""The device outbox: durable across a restart, overflow policy, counters."""

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
    assert box.ack("E2")
    assert not box.ack("E2")
    box.close()  # the "power cut": nothing else is flushed on purpose

    again = Outbox(path)
    assert [e.event_id for e in again.pending()] == ["E1", "E3", "E4", "E5"]
    assert again.pending()[0].payload == b"payload-1"
    assert again.last_seq() == 5
    assert again.depth() == 4
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
    box.ack("E0")
    box.add("E3", b"x", seq=4)
    assert [e.event_id for e in box.pending()] == ["E1", "E3"]
    box.close()


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
