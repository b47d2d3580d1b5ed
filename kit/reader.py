"""The reader pool: ``await reader(fn)`` runs ``fn(conn)`` on one of a few threads.

Reads never run on the event loop. Each pool thread keeps one connection (``connect()``, opened
on first use) -- or, with ``acquire``, borrows one from a pool that the backend provides (a
``psycopg_pool.ConnectionPool``'s ``connection``). ``snapshot`` (default ``BEGIN``) wraps every
call in a read transaction, so the queries of one call see one consistent state of the database
even while the writer commits. A connection the ``alive`` check finds dead after a failed call
is dropped and opened again by the next call on that thread. ``close()`` stops the threads and
closes every connection: call it once, at the service's cleanup.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Generic, TypeVar

from edgeorder.kit.tx import C, rollback

__all__ = ["Reader", "ReaderClosedError"]

T = TypeVar("T")


class ReaderClosedError(RuntimeError):
    """A read was asked for after ``close()``."""


class Reader(Generic[C]):
    """Read-only queries off the event loop (see the module docstring)."""

    def __init__(
        self,
        connect: Callable[[], C] | None = None,
        *,
        acquire: Callable[[], AbstractContextManager[C]] | None = None,
        threads: int = 2,
        name: str = "reader",
        snapshot: str | None = "BEGIN",
        alive: Callable[[C], bool] | None = None,
    ) -> None:
        if (connect is None) == (acquire is None):
            raise ValueError("give either connect or acquire")
        self._connect, self._acquire = connect, acquire
        self._snapshot, self._alive = snapshot, alive
        self._local = threading.local()
        self._conns: list[C] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._closed = False

    async def __call__(self, fn: Callable[[C], T]) -> T:
        """``fn(conn)`` on a pool thread; its result (or its exception)."""
        if self._closed:
            raise ReaderClosedError("the reader is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.run_sync, fn)

    run = __call__

    def run_sync(self, fn: Callable[[C], T]) -> T:
        """``fn(conn)`` in the calling thread (a pool thread, or a tool without a loop)."""
        with self._connection() as conn:
            if self._snapshot is None:
                return fn(conn)
            conn.execute(self._snapshot)
            try:
                return fn(conn)
            finally:
                rollback(conn)  # nothing to keep: ends the read transaction cheaply

    def _connection(self) -> AbstractContextManager[C]:
        if self._acquire is not None:
            return self._acquire()
        return self._thread_connection()

    @contextmanager
    def _thread_connection(self) -> Iterator[C]:
        conn: C | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self._connect is not None
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        try:
            yield conn
        except BaseException:
            if self._alive is not None and not self._alive(conn):
                self._forget(conn)
            raise

    def _forget(self, conn: C) -> None:
        self._local.conn = None
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)
        try:
            conn.close()
        except Exception:  # it is dead already
            pass

    def close(self) -> None:
        """Stop the threads -- waiting for the reads in progress: closing a SQLite connection
        under a running query crashes the process -- then close every connection they opened
        (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
