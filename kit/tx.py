"""The one transaction helper: ``with transaction(conn): ...``.

Connections here run in autocommit mode (``sqlite3.connect(..., isolation_level=None)``, or
psycopg's ``autocommit=True`` behind ingest's adapter), so transactions are explicit. The guards
are sqlite-utils' (``Database.conn`` as a context manager, ``atomic``-style helpers):

- ``BEGIN IMMEDIATE`` by default: a SQLite writer takes the write lock up front instead of
  failing with SQLITE_BUSY halfway through (PostgreSQL's adapter reads it as ``BEGIN``);
- nesting: inside an open transaction the block becomes a ``SAVEPOINT``, so a function that
  runs its own transaction can also run as one job of the group-commit writer;
- rollback only while a transaction is open: SQLite ends a transaction by itself after some
  errors (SQLITE_FULL, SQLITE_IOERR), and a ``ROLLBACK`` then would raise and hide the cause;
- rollback when ``COMMIT`` fails (SQLITE_BUSY at commit, a deferred constraint, a lost
  connection), so the connection is usable again.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

__all__ = ["BEGIN_IMMEDIATE", "Connection", "rollback", "transaction"]

BEGIN_IMMEDIATE = "BEGIN IMMEDIATE"


class Connection(Protocol):
    """What the kit needs of a connection: ``sqlite3.Connection`` has it, and so has ingest's
    PostgreSQL adapter (``edgeorder.ingest.store.pg.PgConnection``)."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def close(self) -> None: ...


C = TypeVar("C", bound=Connection)

_savepoints = itertools.count(1)


def rollback(conn: Connection) -> None:
    """End the open transaction, if the database has not already ended it itself; a failure
    of the ROLLBACK (the connection is gone) is not raised over the error that led here."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except Exception:  # the caller is already raising the real cause
            pass


@contextmanager
def transaction(conn: C, *, begin: str = BEGIN_IMMEDIATE) -> Iterator[C]:
    """One transaction (or a savepoint inside the caller's): committed when the block ends,
    rolled back when it raises."""
    if conn.in_transaction:
        with _savepoint(conn):
            yield conn
        return
    conn.execute(begin)
    try:
        yield conn
    except BaseException:
        rollback(conn)
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


@contextmanager
def _savepoint(conn: C) -> Iterator[C]:
    name = f"kit_{next(_savepoints)}"
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # else the database already rolled everything back
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")
