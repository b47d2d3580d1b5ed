"""Open ingest's SQLite database: WAL, ``synchronous=FULL``, migrations applied in order.

Every connection of ingest (the single writer, readers in executors, the embedded broker's
auth plugin) is opened here so the pragmas are the same everywhere. The database holds password
hashes and session tokens: it and its WAL/SHM files are created ``0600`` whatever the umask
(``edgeorder.files``), and an older world-readable file is narrowed when it is opened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils
import structlog

from edgeorder.files import make_private_dir, make_private_file
from edgeorder.ingest.store.migrations import MIGRATIONS

__all__ = ["SCHEMA_VERSION", "atomic", "connect", "open_db"]

SCHEMA_VERSION = len(MIGRATIONS)
log = structlog.get_logger(__name__)


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """A raw connection with ingest's pragmas; usable from the thread that uses it next."""
    if not readonly:
        narrowed = make_private_file(Path(path))
        if narrowed:
            log.warning("db.permissions_narrowed", files=[str(f) for f in narrowed])
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
    make_private_dir(path.parent)
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
    alone would not group statements: use this. Inside a transaction already open (a job of
    the service's group-commit writer) it is a savepoint instead: the registry's functions run
    the same way from the CLI and through the writer, and a failing one undoes only its own
    changes.
    """
    if conn.in_transaction:
        with _savepoint(conn):
            yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def _savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("SAVEPOINT atomic")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # else SQLite already rolled everything back (SQLITE_FULL)
            conn.execute("ROLLBACK TO atomic")
            conn.execute("RELEASE atomic")
        raise
    conn.execute("RELEASE atomic")
