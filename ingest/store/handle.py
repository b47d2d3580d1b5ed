"""``Store``: the one write path and the one read pool of an ingest process, for its HTTP side.

The dashboard, the REST API and the login write through the same group-commit writer as the
event path, so SQLite's write lock is only ever held by that writer's thread, for a batch of
short jobs -- never by a request while it hashes a password or waits for anything else. Reads
run on the service's reader pool (query-only connections). The service owns both and closes
them; a ``Store`` only points at them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from edgeorder.ingest.store.database import Conn
from edgeorder.ingest.store.reader import Reader
from edgeorder.ingest.store.writer import Writer

__all__ = ["Store"]

T = TypeVar("T")


@dataclass(frozen=True)
class Store:
    writer: Writer
    reader: Reader

    async def read(self, fn: Callable[[Conn], T]) -> T:
        """``fn(conn)`` on a query-only connection of the reader pool."""
        return await self.reader(fn)

    async def write(self, fn: Callable[[Conn], T]) -> T:
        """``fn(conn)`` as a job of the next group commit; returns once it is on disk.

        ``fn`` must only run SQL: it may run twice (see ``ingest.store.writer``).
        """
        return await self.writer.run(fn)
