"""The single SQLite writer of ingest: one thread, group commit.

Every write of the service is a job ``fn(conn) -> T`` submitted from the event loop. The thread
takes everything that is waiting (up to ``batch_max`` jobs), runs it in ONE transaction, commits
once (one fsync), and only then resolves the jobs' futures. A failing job fails alone: the
batch is first run without savepoints (they cost two statements per job) and, should a job
raise, rolled back and run again with a savepoint around each job. Jobs must therefore only
change the database (they may run twice; nothing of the first run is kept). Durable
throughput therefore grows with load instead of collapsing to one fsync per message, and a
future resolved means "on disk".

A failed job is the caller's to judge: ``is_transient(exc)`` says whether the same write can
succeed later (a full disk, a locked database, an I/O error) or will fail the same way again
(bad data, a bug). The writer logs only the state changes of its commits (first failure,
recovery), never every failed attempt: a retry storm must not become a log storm.

``before_commit(conn)``, when given, runs at the end of every group commit's transaction (in
its own savepoint; its failure fails nothing else): bookkeeping that rides along with the
commits there are anyway (ingest.mqtt.delivery's publish confirmations) instead of paying for its
own.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog

from edgeorder.ingest.store.db import connect

__all__ = ["Writer", "WriterClosedError", "is_transient"]

T = TypeVar("T")
log = structlog.get_logger(__name__)


class WriterClosedError(RuntimeError):
    """A job was submitted after ``stop()``."""


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

    Yes for the machine's troubles: SQLite's busy/locked/full/I-O/cannot-open family, an
    ``OSError``, ``MemoryError``. No for everything that depends on the job's data or code
    (a constraint, an integer too large for SQLite, a pydantic ValidationError, a TypeError,
    ...): the same input fails the same way every time, so it must be rejected, not retried.
    An ``OperationalError`` without a SQLite code (raised by Python code) counts as transient.
    """
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None:
            return isinstance(exc, sqlite3.OperationalError)
        return (code & 0xFF) in _TRANSIENT_SQLITE_CODES
    return isinstance(exc, OSError | MemoryError)


@dataclass
class _Job(Generic[T]):
    fn: Callable[[sqlite3.Connection], T]
    future: asyncio.Future[T]


_STOP = object()

SLOW_COMMIT_S = 0.05
SLOW_JOB_S = 0.001
"""A group commit slower than SLOW_COMMIT_S is logged (every write in it waited that long)
unless it was merely big: a flood's 512-write commits take ~0.2 ms per write; a disk stall or
a WAL checkpoint shows as much more per write."""


class _JobFailed(Exception):
    """A job raised inside an optimistic (savepoint-free) transaction."""


class Writer:
    """``await writer.run(fn)`` runs ``fn(conn)`` in the next group commit and returns its
    result once that commit is durable."""

    def __init__(
        self,
        path: Path,
        *,
        batch_max: int = 512,
        on_commit: Callable[[int], None] | None = None,
        before_commit: Callable[[sqlite3.Connection], object] | None = None,
    ) -> None:
        self._path = path
        self._batch_max = batch_max
        self._on_commit = on_commit
        self._before_commit = before_commit
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._failed_commits = 0  # in a row (writer thread only): log the first, not each

    def start(self) -> None:
        """Open the connection and start the thread (call from the event loop)."""
        self._loop = asyncio.get_running_loop()
        conn = connect(self._path)
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name="ingest-writer", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        """Finish every job already submitted, then close."""
        if self._thread is None or self._closed:
            return
        self._closed = True
        self._jobs.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue ``fn`` for the next commit; the future resolves after the commit."""
        if self._closed or self._loop is None:
            raise WriterClosedError("the writer is stopped")
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put(_Job(fn, future))
        return future

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.submit(fn)

    # --- the writer thread ----------------------------------------------------------------

    def _run(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                first = self._jobs.get()
                if first is _STOP:
                    return
                batch: list[_Job[Any]] = [first]
                stop = False
                while len(batch) < self._batch_max:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is _STOP:
                        stop = True
                        break
                    batch.append(job)
                self._commit(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Job[Any]]) -> None:
        started = time.perf_counter()
        try:
            results = self._transaction(conn, batch, careful=False)
        except _JobFailed:
            # One job failed. Jobs only touch the database, so run the batch again with a
            # savepoint around each: the failing one fails alone, the others commit.
            _rollback(conn)
            try:
                results = self._transaction(conn, batch, careful=True)
            except Exception as exc:
                results = self._failed(conn, batch, exc)
            else:
                self._committed()
        except Exception as exc:  # the commit itself failed: nothing of this batch is durable
            results = self._failed(conn, batch, exc)
        else:
            self._committed()
        if self._on_commit is not None:
            self._on_commit(len(batch))
        took = time.perf_counter() - started
        if took >= SLOW_COMMIT_S and took / len(batch) >= SLOW_JOB_S:
            log.warning("writer.slow_commit", ms=round(took * 1000, 1), jobs=len(batch))
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(_resolve, results)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _transaction(
        self, conn: sqlite3.Connection, batch: list[_Job[Any]], *, careful: bool
    ) -> list[tuple[_Job[Any], Any, BaseException | None]]:
        """One transaction over ``batch``. Optimistic (``careful=False``): no savepoint per
        job -- two statements fewer per event on the hot path -- and ``_JobFailed`` at the first
        failing job, transaction left open for the caller's rollback."""
        conn.execute("BEGIN IMMEDIATE")
        if careful:
            results = [self._one(conn, job) for job in batch]
        else:
            results = []
            for job in batch:
                try:
                    results.append((job, job.fn(conn), None))
                except Exception as exc:
                    raise _JobFailed from exc
        if self._before_commit is not None:
            self._piggyback(conn, self._before_commit)
        conn.execute("COMMIT")
        return results

    def _failed(
        self, conn: sqlite3.Connection, batch: list[_Job[Any]], exc: Exception
    ) -> list[tuple[_Job[Any], Any, BaseException | None]]:
        self._failed_commits += 1
        if self._failed_commits == 1:  # a state change; the next failures only count
            log.error(
                "writer.commit_failed",
                error=str(exc),
                jobs=len(batch),
                transient=is_transient(exc),
            )
        _rollback(conn)
        return [(job, None, exc) for job in batch]

    def _committed(self) -> None:
        if self._failed_commits:
            log.info("writer.commit_recovered", failed_commits=self._failed_commits)
            self._failed_commits = 0

    @staticmethod
    def _piggyback(conn: sqlite3.Connection, hook: Callable[[sqlite3.Connection], object]) -> None:
        conn.execute("SAVEPOINT hook")
        try:
            hook(conn)
        except Exception as exc:
            if not conn.in_transaction:
                raise
            conn.execute("ROLLBACK TO hook")
            log.error("writer.hook_failed", error=repr(exc))
        conn.execute("RELEASE hook")

    @staticmethod
    def _one(
        conn: sqlite3.Connection, job: _Job[Any]
    ) -> tuple[_Job[Any], Any, BaseException | None]:
        conn.execute("SAVEPOINT job")
        try:
            value = job.fn(conn)
        except Exception as exc:
            if not conn.in_transaction:  # SQLite rolled back everything (SQLITE_FULL, ...):
                raise  # the whole batch fails with this job's own error, not "no savepoint"
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            # The caller judges and logs it (is_transient): bad data is its message's outcome.
            log.debug("writer.job_failed", error=repr(exc))
            return job, None, exc
        conn.execute("RELEASE job")
        return job, value, None


def _rollback(conn: sqlite3.Connection) -> None:
    """End the open transaction, if SQLite has not already (it rolls back by itself after some
    errors, e.g. SQLITE_FULL; a ROLLBACK then would raise and stop the writer thread)."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _resolve(results: list[tuple[_Job[Any], Any, BaseException | None]]) -> None:
    for job, value, error in results:
        if job.future.done():
            continue
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(value)
