"""SQLite for ingest's store: WAL, ``synchronous=FULL``, migrations applied in order.

Every SQLite connection of ingest (the single writer, the readers, the tools, the embedded
broker's auth plugin) is opened here so the pragmas are the same everywhere. The database holds
password hashes and session tokens: it and its WAL/SHM files are created ``0600`` whatever the
umask (``edgeorder.files``), and an older world-readable file is narrowed when it is opened.
The backend-neutral handle is ``ingest.store.database.Database``; ``open_db`` stays for tools and
tests that work on a SQLite file through sqlite-utils.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils
import structlog

from edgeorder.files import make_private_dir, make_private_file
from edgeorder.ingest.store.migrations import MIGRATIONS, sqlite_steps
from edgeorder.kit import migrate as kit_migrate
from edgeorder.kit import transaction

__all__ = ["SCHEMA_VERSION", "atomic", "connect", "migrate", "open_db"]

SCHEMA_VERSION = len(MIGRATIONS)
log = structlog.get_logger(__name__)

atomic = transaction
"""One write transaction (``BEGIN IMMEDIATE`` .. ``COMMIT``), or a savepoint inside an open one
(a job of the group-commit writer): ``kit.tx.transaction``, on either backend."""


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """A raw connection with ingest's pragmas; usable from the thread that uses it next."""
    if not readonly:
        narrowed = make_private_file(Path(path))
        if narrowed:
            log.warning("db.permissions_narrowed", files=[str(f) for f in narrowed])
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before `accepted` goes out (ARCHITECTURE.md, the chain).
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        if readonly:
            conn.execute("PRAGMA query_only=ON")
    except BaseException:
        conn.close()
        raise
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
    return kit_migrate(conn, sqlite_steps(), version=_user_version, set_version=_set_user_version)


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _set_user_version(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(f"PRAGMA user_version = {int(version)}")
