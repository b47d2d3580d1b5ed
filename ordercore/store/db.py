"""SQLite access off the event loop: one writer thread with group commit, pooled readers.

Every write is a function ``fn(conn) -> T`` run on the single writer thread. The thread takes
every queued write (up to ``batch_max``), runs them in one transaction, commits once (one fsync
for the whole batch), then resolves the callers' futures (one loop wake-up per batch). A write
that raises is rolled back alone and the others still commit: the batch runs without
savepoints first (they cost two statements per write) and, only if a write raises, is rolled
back and run again with a savepoint around each. Writes must therefore only change the
database (they may run twice; nothing of the first run is kept).
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils
import structlog

from edgeorder.files import make_private_file

__all__ = ["Reader", "Writer", "connect"]

T = TypeVar("T")
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


_Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]


def _resolve(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


class Writer:
    """The one thread that writes to the database (see module docstring)."""

    def __init__(self, path: Path, *, batch_max: int = 512) -> None:
        self._conn = connect(path)
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="ordercore-writer", daemon=True)
        self._closed = False
        self.commits = 0
        self.writes = 0
        self._thread.start()

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in the next group-committed transaction and return its result."""
        if self._closed:
            raise RuntimeError("writer is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, fut, loop))
        return await fut

    def close(self) -> None:
        """Finish every queued write, then close the connection (blocks; call from a thread)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self._conn.close()

    def _take_batch(self, first: _Job) -> tuple[list[_Job], bool]:
        batch = [first]
        while len(batch) < self._batch_max:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
        return batch, False

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch, stop = self._take_batch(first)
            self._commit_batch(batch)

    def _commit_batch(self, batch: list[_Job]) -> None:
        conn = self._conn
        outcomes: list[tuple[Any, BaseException | None]]
        try:
            try:
                outcomes = self._transaction([fn for fn, _, _ in batch], careful=False)
            except _JobFailed:
                # Jobs only touch the database: roll the batch back and run it again with a
                # savepoint around each job, so the failing one fails alone.
                conn.execute("ROLLBACK")
                outcomes = self._transaction([fn for fn, _, _ in batch], careful=True)
            self.commits += 1
            self.writes += len(batch)
        except sqlite3.Error as exc:  # the commit itself failed: nothing of the batch stuck
            log.error("group_commit_failed", error=str(exc), batch=len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(None, exc)] * len(batch)
        # one wake-up of each caller's loop per batch, not one per job
        by_loop: dict[
            asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]
        ] = {}
        for (_, fut, loop), (result, error) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((fut, result, error))
        for loop, resolved in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_all, resolved)
            except RuntimeError:  # the caller's loop is gone (shutdown)
                pass

    def _transaction(
        self, fns: list[Callable[[sqlite3.Connection], Any]], *, careful: bool
    ) -> list[tuple[Any, BaseException | None]]:
        """One transaction over the jobs. Optimistic (``careful=False``): no savepoint per job
        (two statements fewer per write) and ``_JobFailed`` at the first job that raises,
        the transaction left open for the caller's rollback."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        if careful:
            outcomes = [self._run_one(fn) for fn in fns]
        else:
            outcomes = []
            for fn in fns:
                try:
                    outcomes.append((fn(conn), None))
                except Exception as exc:
                    raise _JobFailed from exc
        conn.execute("COMMIT")
        return outcomes

    def _run_one(self, fn: Callable[[sqlite3.Connection], Any]) -> tuple[Any, BaseException | None]:
        conn = self._conn
        conn.execute("SAVEPOINT job")
        try:
            result = fn(conn)
        except Exception as exc:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            return None, exc
        conn.execute("RELEASE job")
        return result, None


class _JobFailed(Exception):
    """A job raised inside an optimistic (savepoint-free) transaction."""


def _resolve_all(resolved: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for fut, result, error in resolved:
        _resolve(fut, result, error)


class Reader:
    """Read-only queries on a small thread pool, one connection per pool thread."""

    def __init__(self, path: Path, *, threads: int = 2) -> None:
        self._path = path
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ordercore-read")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn()
        conn.execute("BEGIN")  # one consistent snapshot for the whole read
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in a read transaction on a pool thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
