"""Open ingest's SQLite database: WAL, ``synchronous=FULL``, migrations applied in order.

Every connection of ingest (the single writer, readers in executors, the embedded broker's
auth plugin) is opened here so the pragmas are the same everywhere.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from edgeorder.ingest.store.migrations import MIGRATIONS

__all__ = ["SCHEMA_VERSION", "atomic", "connect", "open_db"]

SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """A raw connection with ingest's pragmas; usable from the thread that uses it next."""
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before `accepted` goes out (ARCHITECTURE.md, exactly-once chain).
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


def open_db(
    path: Path | str, *, migrate_schema: bool = True, readonly: bool = False
) -> sqlite_utils.Database:
    """The database at ``path`` (created if missing), migrated to ``SCHEMA_VERSION``.

    ``migrate_schema=False`` for short-lived readers that must not take the write lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path, readonly=readonly)
    try:
        if migrate_schema and not readonly:
            migrate(conn)
        return sqlite_utils.Database(conn)
    except BaseException:
        conn.close()
        raise


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration newer than ``PRAGMA user_version``, each in its own transaction."""
    current: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {current} is newer than this edgeorder ({SCHEMA_VERSION})"
        )
    for number, statements in enumerate(MIGRATIONS[current:], start=current + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION


@contextmanager
def atomic(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE`` .. ``COMMIT``; rolled back on any error).

    Connections here run in autocommit mode (``isolation_level=None``), so ``with conn:``
    alone would not group statements: use this.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
