"""The kit's transaction helper and migration runner, on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edgeorder.kit import SchemaTooNewError, migrate, rollback, transaction


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "kit.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("CREATE TABLE t (x INTEGER NOT NULL)")
    return conn


def values(conn: sqlite3.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT x FROM t ORDER BY x")]


def insert_then_fail(conn: sqlite3.Connection, x: int) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (?)", [x])
        raise ValueError(f"no {x}")


def test_a_block_commits_or_rolls_back_as_a_whole(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.in_transaction
    with pytest.raises(ValueError, match="no 2"):
        insert_then_fail(conn, 2)
    assert values(conn) == [1]
    assert not conn.in_transaction


def test_nested_blocks_are_savepoints(conn: sqlite3.Connection) -> None:
    """A function that runs its own transaction can run inside the caller's: its failure
    undoes only its own statements."""
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(ValueError, match="no 2"):
            insert_then_fail(conn, 2)
        with transaction(conn):
            conn.execute("INSERT INTO t VALUES (3)")
    assert values(conn) == [1, 3]


def test_begin_immediate_takes_the_write_lock_up_front(tmp_path: Path) -> None:
    first = sqlite3.connect(tmp_path / "lock.db", isolation_level=None, timeout=0)
    second = sqlite3.connect(tmp_path / "lock.db", isolation_level=None, timeout=0)
    first.execute("CREATE TABLE t (x)")
    second.execute("PRAGMA busy_timeout = 0")
    with transaction(first), pytest.raises(sqlite3.OperationalError, match="locked"):
        insert_then_fail(second, 1)  # fails at BEGIN, before any statement of its own
    assert not second.in_transaction


def test_a_failed_commit_is_rolled_back(conn: sqlite3.Connection) -> None:
    """A deferred foreign key fails at COMMIT and leaves SQLite's transaction open: the helper
    rolls it back so the connection is usable again."""
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(sqlite3.IntegrityError), transaction(conn):
        conn.execute("INSERT INTO child VALUES (42)")
    assert not conn.in_transaction
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (7)")
    assert values(conn) == [7]


def test_rollback_only_while_a_transaction_is_open(conn: sqlite3.Connection) -> None:
    rollback(conn)  # nothing open: no "cannot rollback - no transaction is active"
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t VALUES (1)")
    rollback(conn)
    assert values(conn) == []


STEPS = [
    ("CREATE TABLE a (x)", "INSERT INTO a VALUES (1)"),
    ("CREATE TABLE b (y)",),
]


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _set(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(f"PRAGMA user_version = {version}")


def test_migrations_apply_once_each_in_order(conn: sqlite3.Connection) -> None:
    assert migrate(conn, STEPS[:1], version=_version, set_version=_set) == 1
    assert migrate(conn, STEPS, version=_version, set_version=_set) == 2
    assert migrate(conn, STEPS, version=_version, set_version=_set) == 2
    assert conn.execute("SELECT x FROM a").fetchall() == [(1,)]


def test_a_failing_step_leaves_the_schema_at_the_last_whole_version(
    conn: sqlite3.Connection,
) -> None:
    broken = [*STEPS, ("CREATE TABLE c (z)", "INSERT INTO nowhere VALUES (1)")]
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        migrate(conn, broken, version=_version, set_version=_set)
    assert _version(conn) == 2
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'c'").fetchone() is None


def test_a_newer_schema_is_refused(conn: sqlite3.Connection) -> None:
    _set(conn, 9)
    with pytest.raises(SchemaTooNewError, match="newer"):
        migrate(conn, STEPS, version=_version, set_version=_set)


def test_a_step_may_be_a_function_of_the_connection(conn: sqlite3.Connection) -> None:
    def backfill(c: sqlite3.Connection) -> None:
        c.executemany("INSERT INTO a VALUES (?)", [(n,) for n in range(2, 5)])

    assert migrate(conn, [*STEPS, backfill], version=_version, set_version=_set) == 3
    assert [r[0] for r in conn.execute("SELECT x FROM a ORDER BY x")] == [1, 2, 3, 4]
