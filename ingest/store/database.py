"""``Database``: where everything ingest stores lives -- one SQLite file, or one PostgreSQL.

The embedded default is SQLite, ``ingest.db`` in ``--data-dir``; ``--db-url
postgresql://USER@HOST:PORT/DB`` (env ``EDGEORDER_INGEST_DB_URL``) puts the registry, inbox,
order outbox, orders, status history, presence/telemetry, e-vendi assignments, operators,
sessions and audit in a PostgreSQL that several ingest workers share. Everything else of the
store is written once: the same functions run on a ``Conn`` of either backend (``sqlite3``'s
connection or ``ingest.store.pg.PgConnection``).

``Database`` is what the service and the tools hold: it connects, migrates, and makes the
group-commit writer and the reader pool with the backend's hooks (which errors are transient,
per-device locks, dead-connection checks).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from edgeorder.files import make_private_dir
from edgeorder.ingest.store import db as sqlite_db
from edgeorder.ingest.store import pg
from edgeorder.ingest.store.migrations import MIGRATIONS, postgres_steps
from edgeorder.kit import Connection

__all__ = [
    "DB_FILE",
    "Conn",
    "Database",
    "DatabaseUrlError",
    "dialect",
    "dicts",
    "handle",
    "is_transient",
]

DB_FILE = "ingest.db"
"""The SQLite file's name in ``--data-dir``."""

Conn = Connection
"""A connection of either backend, as the store's functions take it (``kit.tx.Connection``)."""

Backend = Literal["sqlite", "postgres"]


class DatabaseUrlError(ValueError):
    """A ``--db-url`` that names no database ingest can use."""


def dicts(cursor: Any) -> list[dict[str, Any]]:
    """The rows of an executed query as dicts by column name (either backend's cursor; the
    rows first: a pipelined PostgreSQL result knows its columns once it was fetched)."""
    rows = cursor.fetchall()
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in rows]


def handle(db: Any) -> Conn:
    """The connection to use for ``db``: a ``Conn`` itself, or the connection of a
    ``sqlite_utils.Database`` (tools and tests that open a SQLite file with ``open_db``)."""
    conn = getattr(db, "conn", db)
    return conn


def dialect(conn: Any) -> Backend:
    """Which backend ``conn`` talks to (for the few statements said differently)."""
    return "postgres" if getattr(conn, "dialect", None) == "postgres" else "sqlite"


# SQLite primary result codes (https://sqlite.org/rescode.html) of failures that depend on the
# machine, not on the data: they can pass (space freed, lock released, disk replaced, file
# restored). CORRUPT/NOTADB count too: rejecting every press until an operator restores the
# database would lose them all, while waiting loses nothing.
_TRANSIENT_SQLITE_CODES = frozenset(
    {
        5,  # SQLITE_BUSY
        6,  # SQLITE_LOCKED
        7,  # SQLITE_NOMEM
        8,  # SQLITE_READONLY
        9,  # SQLITE_INTERRUPT
        10,  # SQLITE_IOERR
        11,  # SQLITE_CORRUPT
        13,  # SQLITE_FULL
        14,  # SQLITE_CANTOPEN
        15,  # SQLITE_PROTOCOL
        26,  # SQLITE_NOTADB
    }
)


def is_transient(exc: BaseException) -> bool:
    """Can a write that failed with ``exc`` succeed if it is simply tried again later?

    Yes for the machine's troubles: SQLite's busy/locked/full/I-O/cannot-open family,
    PostgreSQL's lost connection, deadlock, out of space, shutdown (by SQLSTATE class), an
    ``OSError``, ``MemoryError``. No for everything that depends on the job's data or code (a
    constraint, an integer too large, a pydantic ValidationError, a TypeError, ...): the same
    input fails the same way every time, so it must be rejected, not retried. A SQLite
    ``OperationalError`` without a code (raised by Python code) counts as transient.
    """
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None:
            return isinstance(exc, sqlite3.OperationalError)
        return (code & 0xFF) in _TRANSIENT_SQLITE_CODES
    if type(exc).__module__.startswith("psycopg"):
        return pg.is_transient(exc)
    return isinstance(exc, OSError | MemoryError)


@dataclass(frozen=True)
class Database:
    """A SQLite file (``path``) or a PostgreSQL database (``url``)."""

    path: Path | None = None
    url: str | None = None

    @classmethod
    def sqlite(cls, path: Path | str) -> Database:
        return cls(path=Path(path))

    @classmethod
    def from_url(cls, url: str) -> Database:
        """``postgresql://USER@HOST:PORT/DB`` (or ``postgres://``; no host: the local socket), or
        ``sqlite:///PATH``."""
        parts = urlsplit(url)
        if parts.scheme in ("postgresql", "postgres"):
            if not parts.path.strip("/"):
                raise DatabaseUrlError(f"{pg.redact(url)}: no database name")
            return cls(url=url)
        if parts.scheme == "sqlite" and parts.path:
            return cls(path=Path(unquote(parts.path)))
        raise DatabaseUrlError(
            f"{pg.redact(url)}: not a database URL (postgresql://USER@HOST:PORT/DB or "
            "sqlite:///PATH)"
        )

    @classmethod
    def of(cls, where: Database | Path | str) -> Database:
        """A ``Database`` for a ``Database``, a SQLite path, or a URL."""
        if isinstance(where, Database):
            return where
        if isinstance(where, str) and "://" in where:
            return cls.from_url(where)
        return cls.sqlite(where)

    @classmethod
    def for_service(cls, data_dir: Path, db_url: str | None) -> Database:
        """``--db-url`` if given, else ``ingest.db`` in ``--data-dir``."""
        return cls.from_url(db_url) if db_url else cls.sqlite(Path(data_dir) / DB_FILE)

    @property
    def backend(self) -> Backend:
        return "postgres" if self.url is not None else "sqlite"

    @property
    def shared(self) -> bool:
        """True when several ingest processes may write to it at once (PostgreSQL)."""
        return self.url is not None

    def __str__(self) -> str:
        return pg.redact(self.url) if self.url is not None else str(self.path)

    # --- connections ------------------------------------------------------------------------

    def connect(self, *, readonly: bool = False) -> Conn:
        """A new connection (autocommit: transactions are explicit)."""
        if self.url is not None:
            return pg.connect(self.url, readonly=readonly)
        assert self.path is not None
        make_private_dir(self.path.parent)  # the registry's hashes stay the service's
        return sqlite_db.connect(self.path, readonly=readonly)

    def migrate(self) -> int:
        """Bring the schema up to date; safe while other workers do the same."""
        conn = self.connect()
        try:
            return self.migrate_conn(conn)
        finally:
            conn.close()

    def migrate_conn(self, conn: Conn) -> int:
        if isinstance(conn, pg.PgConnection):
            return pg.migrate(conn, postgres_steps())
        assert isinstance(conn, sqlite3.Connection)
        return sqlite_db.migrate(conn)

    @contextmanager
    def open(self, *, migrate: bool = True) -> Iterator[Conn]:
        """A connection for a tool (``edgeorder device``, ``broker-auth``, ...), migrated
        first unless ``migrate=False``; closed at the end of the block."""
        conn = self.connect()
        try:
            if migrate:
                self.migrate_conn(conn)
            yield conn
        finally:
            conn.close()

    @staticmethod
    def alive(conn: Conn) -> bool:
        """False for a connection to drop (PostgreSQL's, once lost); SQLite's always live."""
        return not isinstance(conn, pg.PgConnection) or conn.alive

    @property
    def lock(self) -> Any:
        """The writer's per-key lock hook: ``pg.lock_keys`` on a shared database, else None
        (SQLite's single writer holds the whole database's write lock)."""
        return pg.lock_keys if self.shared else None

    @property
    def begin(self) -> str:
        return "BEGIN" if self.shared else "BEGIN IMMEDIATE"


SCHEMA_VERSION = len(MIGRATIONS)
