"""The writer thread: group commit, per-write rollback, durability across connections."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from edgeorder.ordercore.store.db import Reader, Writer, connect


def _make_table(path: Path) -> None:
    conn = connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
    conn.close()


def _insert(value: str) -> Callable[[sqlite3.Connection], int | None]:
    def write(conn: sqlite3.Connection) -> int | None:
        return conn.execute("INSERT INTO t (v) VALUES (?)", (value,)).lastrowid

    return write


async def test_concurrent_writes_share_commits_and_a_failure_stays_alone(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite3"
    _make_table(path)
    writer = Writer(path, batch_max=64)
    reader = Reader(path)
    try:
        values = [f"v{i}" for i in range(300)] + ["v7"]  # the last one breaks UNIQUE
        results = await asyncio.gather(
            *(writer.run(_insert(v)) for v in values),
            return_exceptions=True,
        )
        assert isinstance(results[-1], sqlite3.IntegrityError)
        assert all(isinstance(r, int) for r in results[:-1])
        assert writer.writes == 301
        assert writer.commits < writer.writes  # grouped: fewer fsyncs than writes
        count = await reader.run(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0])
        assert count == 300
    finally:
        writer.close()
        reader.close()
    with pytest.raises(RuntimeError):
        await writer.run(_insert("late"))
