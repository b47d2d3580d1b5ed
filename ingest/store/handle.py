"""``Store``: the one write path and the one read pool of an ingest process, for its HTTP side.

The dashboard, the REST API and the login write through the same group-commit writer as the
event path, so SQLite's write lock is only ever held by that writer's thread, for a batch of
short jobs -- never by a request while it hashes a password or waits for anything else. Reads
run on the service's reader pool (query-only connections). The service owns both and closes
them; a ``Store`` only points at them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import sqlite_utils

from edgeorder.ingest.store.reader import Reader
from edgeorder.ingest.store.writer import Writer

__all__ = ["Store"]

T = TypeVar("T")


@dataclass(frozen=True)
class Store:
    writer: Writer
    reader: Reader

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)`` on a query-only connection of the reader pool."""
        return await self.reader(fn)

    async def read_db(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """``fn`` with a ``sqlite_utils.Database`` over a query-only connection (registry reads)."""
        return await self.reader(lambda conn: fn(sqlite_utils.Database(conn)))

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)`` as a job of the next group commit; returns once it is on disk.

        ``fn`` must only run SQL: it may run twice (see ``ingest.store.writer``).
        """
        return await self.writer.run(fn)

    async def write_db(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """``fn`` with a ``sqlite_utils.Database`` over the writer's connection, inside the
        job's transaction: the registry's and the outbox's own ``atomic`` blocks become
        savepoints there (``ingest.store.db.atomic``)."""
        return await self.writer.run(lambda conn: fn(sqlite_utils.Database(conn)))
