"""The dashboard's own database access: reads never block the event loop.

Reads run in a small thread pool, each thread with its own read-only connection
(``ingest.store.db.connect(..., readonly=True)``). The few writes the dashboard itself makes
(sessions, login failures, API tokens, audit rows) go through one dedicated writer thread with
one connection, so they are serialised exactly like ingest's own writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from edgeorder.ingest.store.db import connect

__all__ = ["WebDb"]

T = TypeVar("T")


class WebDb:
    """Run ``fn(conn)`` for reads (``read``) or writes (``write``) off the event loop."""

    def __init__(self, path: Path | str, *, readers: int = 2) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="web-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="web-write")

    def _conn(self, readonly: bool) -> sqlite3.Connection:
        attr = "ro" if readonly else "rw"
        conn: sqlite3.Connection | None = getattr(self._local, attr, None)
        if conn is None:
            conn = connect(self.path, readonly=readonly)
            setattr(self._local, attr, conn)
            with self._lock:
                self._conns.append(conn)
        return conn

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` on a read-only connection in a reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._conn(True)))

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` inside one ``BEGIN IMMEDIATE`` transaction on the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._transaction, fn)

    async def write_db(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """``fn`` on the writer thread with a ``sqlite_utils.Database`` that manages its own
        transactions (the registry's and outbox's functions use ``atomic``)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._writer, lambda: fn(sqlite_utils.Database(self._conn(False)))
        )

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn(False)
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def close(self) -> None:
        """Stop the threads and close every connection they opened."""
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
