"""SQLite access off the event loop: one writer thread with group commit, pooled readers.

Both are the shared kit's (``edgeorder.kit``), on the order core's SQLite file: every write is a
function ``fn(conn) -> T`` run on the single writer thread, which runs every queued write (up to
``batch_max``) in one transaction, commits once (one fsync for the whole batch), then resolves
the callers' futures. A write that raises fails alone; writes may run twice (they must only
change the database).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils
import structlog

from edgeorder.files import make_private_file
from edgeorder.kit import Reader as KitReader
from edgeorder.kit import Writer as KitWriter

__all__ = ["Reader", "Writer", "connect"]

log = structlog.get_logger("ordercore.db")


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (explicit transactions), WAL, synchronous=FULL.

    The database holds the webhook secrets: it is created ``0600`` (its WAL/SHM files take the
    same mode) whatever the umask, and an older world-readable one is narrowed.
    """
    if not readonly:
        narrowed = make_private_file(path)
        if narrowed:
            log.warning("db_permissions_narrowed", files=[str(f) for f in narrowed])
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=10000")
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


def database(conn: sqlite3.Connection) -> sqlite_utils.Database:
    return sqlite_utils.Database(conn)


class Writer(KitWriter[sqlite3.Connection]):
    """The one thread that writes to the database: the shared kit's group-commit writer
    (``edgeorder.kit.writer``), started at once on the database at ``path``."""

    def __init__(self, path: Path, *, batch_max: int = 512) -> None:
        super().__init__(
            lambda: connect(path), name="ordercore-writer", batch_max=batch_max, log=log
        )
        self.start()


class Reader(KitReader[sqlite3.Connection]):
    """Read-only queries on a small thread pool, one connection per pool thread, each call in
    one read transaction (``edgeorder.kit.reader``)."""

    def __init__(self, path: Path, *, threads: int = 2) -> None:
        super().__init__(
            lambda: connect(path, readonly=True), threads=threads, name="ordercore-read"
        )
