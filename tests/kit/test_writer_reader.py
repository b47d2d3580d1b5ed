"""The kit's group-commit writer and reader pool, on real SQLite files (the backend hooks:
locks in key order, reconnecting after a dead connection)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from edgeorder.kit import Reader, ReaderClosedError, Writer, WriterClosedError


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "kit.db"
    conn = connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x INTEGER NOT NULL)")
    conn.close()
    return path


async def test_the_batch_locks_its_jobs_keys_once_in_order(path: Path) -> None:
    locked: list[list[str]] = []
    writer: Writer[sqlite3.Connection] = Writer(
        lambda: connect(path), lock=lambda conn, keys: locked.append(keys)
    )
    writer.start()
    gate, inside = threading.Event(), threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        inside.set()
        gate.wait(10)

    first = writer.submit(hold)
    await asyncio.to_thread(inside.wait, 10)
    jobs = [
        writer.submit(lambda conn: conn.execute("INSERT INTO t VALUES (1)"), key=key)
        for key in ("dev-b", "dev-a", "dev-b", None)
    ]
    gate.set()
    await asyncio.gather(first, *jobs)
    await writer.stop()
    assert locked == [["dev-a", "dev-b"]]  # the first batch had no keys: no lock call


async def test_a_dead_connection_is_opened_again_for_the_next_batch(path: Path) -> None:
    opened: list[sqlite3.Connection] = []
    dead: set[int] = set()

    def make() -> sqlite3.Connection:
        opened.append(connect(path))
        return opened[-1]

    writer: Writer[sqlite3.Connection] = Writer(make, alive=lambda conn: id(conn) not in dead)
    writer.start()

    def fail(conn: sqlite3.Connection) -> None:
        dead.add(id(conn))  # as a lost server connection would look
        raise sqlite3.OperationalError("server closed the connection")

    with pytest.raises(sqlite3.OperationalError):
        await writer.run(fail)
    await writer.run(lambda conn: conn.execute("INSERT INTO t VALUES (2)"))
    await writer.stop()
    assert len(opened) == 2
    with pytest.raises(WriterClosedError):
        writer.submit(lambda conn: None)


async def test_each_read_sees_one_snapshot_and_close_ends_every_connection(path: Path) -> None:
    conns: list[sqlite3.Connection] = []

    def make() -> sqlite3.Connection:
        conns.append(connect(path))
        return conns[-1]

    reader: Reader[sqlite3.Connection] = Reader(make, threads=2)
    writer: Writer[sqlite3.Connection] = Writer(lambda: connect(path))
    writer.start()
    seen, wrote = threading.Event(), threading.Event()

    def read_twice(conn: sqlite3.Connection) -> tuple[int, int]:
        before = conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
        seen.set()
        wrote.wait(10)
        return before, conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]

    reading = asyncio.ensure_future(reader(read_twice))
    await asyncio.to_thread(seen.wait, 10)
    await writer.run(lambda conn: conn.execute("INSERT INTO t VALUES (3)"))
    wrote.set()
    assert await reading == (0, 0)  # the commit in between is not seen half-way
    assert await reader(lambda conn: conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]) == 1
    await writer.stop()
    reader.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        conns[0].execute("SELECT 1")


async def test_a_read_after_close_is_refused_plainly(path: Path) -> None:
    reader: Reader[sqlite3.Connection] = Reader(lambda: connect(path))
    assert await reader(lambda conn: conn.execute("SELECT 1").fetchone()[0]) == 1
    reader.close()
    with pytest.raises(ReaderClosedError):
        await reader(lambda conn: conn.execute("SELECT 1").fetchone()[0])
