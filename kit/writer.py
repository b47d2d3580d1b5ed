"""The group-commit writer: one thread, one connection, one transaction per batch of jobs.

Every write of a service is a job ``fn(conn) -> T`` submitted from an event loop. The thread
takes everything that is waiting (up to ``batch_max`` jobs), runs it in ONE transaction, commits
once (one fsync on SQLite, one WAL flush on PostgreSQL), and only then resolves the jobs'
futures, one wake-up per loop and batch. Durable throughput therefore grows with load instead of
collapsing to one commit per write, and a resolved future means "on disk".

A failing job fails alone: the batch runs without savepoints first (they cost two statements
per job) and, should a job raise, is rolled back and run again with a savepoint around each
job. Jobs must therefore only change the database: they may run twice, and nothing of the first
run is kept. A job that runs ``kit.tx.transaction`` itself gets a savepoint inside the batch.

Hooks for what depends on the backend or the service:

- ``connect()`` opens the connection, on the writer thread (no blocking connect on a loop);
  after each batch ``alive(conn)`` says whether to keep it (else it is closed and opened
  again before the next batch: a restarted database server);
- ``lock(conn, keys)`` runs first in every transaction with the sorted keys its jobs were
  submitted with (``submit(fn, key=...)``): a shared database takes per-key locks there, always
  in the same order, so concurrent writers of several processes cannot deadlock on them;
- ``before_commit(conn)`` runs last in every transaction, in its own savepoint (its failure
  fails nothing else): bookkeeping that rides along with the commits there are anyway;
- ``is_transient(exc)`` says whether a failed write can pass when tried again (a full disk, a
  lost connection) -- only for the log line; judging a failure is the caller's job.

The writer logs the state changes of its commits (first failure, recovery), never every failed
attempt: a retry storm must not become a log storm.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from edgeorder.kit.log import Log, StdLog
from edgeorder.kit.tx import BEGIN_IMMEDIATE, C, rollback

__all__ = ["SLOW_COMMIT_S", "SLOW_JOB_S", "Writer", "WriterClosedError"]

T = TypeVar("T")

SLOW_COMMIT_S = 0.05
SLOW_JOB_S = 0.001
"""A group commit slower than SLOW_COMMIT_S is logged (every write in it waited that long)
unless it was merely big: a flood's 512-write commits take ~0.2 ms per write; a disk stall or
a WAL checkpoint shows as much more per write."""


class WriterClosedError(RuntimeError):
    """A job was submitted after ``stop()``, or before ``start()``."""


@dataclass
class _Job(Generic[C]):
    fn: Callable[[C], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    key: str | None


class _JobFailed(Exception):
    """A job raised inside an optimistic (savepoint-free) transaction."""


_STOP = object()
_Outcome = tuple[_Job[Any], Any, BaseException | None]


class Writer(Generic[C]):
    """``await writer.run(fn)`` runs ``fn(conn)`` in the next group commit and returns its
    result once that commit is durable (see the module docstring)."""

    def __init__(
        self,
        connect: Callable[[], C],
        *,
        name: str = "writer",
        batch_max: int = 512,
        begin: str = BEGIN_IMMEDIATE,
        on_commit: Callable[[int], None] | None = None,
        before_commit: Callable[[C], object] | None = None,
        lock: Callable[[C, list[str]], None] | None = None,
        alive: Callable[[C], bool] | None = None,
        is_transient: Callable[[BaseException], bool] = lambda exc: False,
        log: Log | None = None,
    ) -> None:
        self._connect, self._name, self._begin = connect, name, begin
        self._batch_max = batch_max
        self._on_commit, self._before_commit = on_commit, before_commit
        self._lock, self._alive, self._is_transient = lock, alive, is_transient
        self._log: Log = log or StdLog(f"edgeorder.kit.{name}")
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: C | None = None
        self._closed = False
        self._failed_commits = 0  # in a row (writer thread only): log the first, not each
        self.commits = 0
        self.writes = 0

    # --- the caller's side ------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread; it connects before its first batch."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Finish every job already submitted, then close (from an event loop)."""
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Finish every job already submitted, then close the connection (blocks)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._thread.join()

    def submit(self, fn: Callable[[C], T], *, key: str | None = None) -> asyncio.Future[T]:
        """Queue ``fn`` for the next commit (from a running event loop); the future resolves
        after that commit. ``key``: what the ``lock`` hook locks for this job."""
        if self._closed or self._thread is None:
            raise WriterClosedError(f"the {self._name} is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(fn, future, loop, key))
        return future

    async def run(self, fn: Callable[[C], T], *, key: str | None = None) -> T:
        return await self.submit(fn, key=key)

    # --- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                batch, stop = self._take()
                if batch:
                    self._commit(batch)
                if stop:
                    return
        finally:
            self._disconnect()

    def _take(self) -> tuple[list[_Job[Any]], bool]:
        first = self._jobs.get()
        if first is _STOP:
            return [], True
        batch: list[_Job[Any]] = [first]
        while len(batch) < self._batch_max:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return batch, True
            batch.append(job)
        return batch, False

    def _connection(self) -> C:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:
                self._log.warning(f"{self._name}.close_failed", exc_info=exc)

    def _commit(self, batch: list[_Job[Any]]) -> None:
        started = time.perf_counter()
        try:
            outcomes = self._attempt(batch)
        except Exception as exc:  # the commit failed: nothing of this batch is durable
            outcomes = self._failed(batch, exc)
        else:
            self._committed(len(batch))
        if self._on_commit is not None:
            self._on_commit(len(batch))
        took = time.perf_counter() - started
        if took >= SLOW_COMMIT_S and took / len(batch) >= SLOW_JOB_S:
            self._log.warning(
                f"{self._name}.slow_commit", ms=round(took * 1000, 1), jobs=len(batch)
            )
        if self._alive is not None and self._conn is not None and not self._alive(self._conn):
            self._disconnect()  # opened again before the next batch (a restarted server)
        _resolve_by_loop(outcomes)

    def _attempt(self, batch: list[_Job[Any]]) -> list[_Outcome]:
        conn = self._connection()
        try:
            return self._transaction(conn, batch, careful=False)
        except _JobFailed:
            # One job failed. Jobs only touch the database, so run the batch again with a
            # savepoint around each: the failing one fails alone, the others commit.
            rollback(conn)
            return self._transaction(conn, batch, careful=True)

    def _transaction(self, conn: C, batch: list[_Job[Any]], *, careful: bool) -> list[_Outcome]:
        """One transaction over ``batch``. Optimistic (``careful=False``): no savepoint per
        job and ``_JobFailed`` at the first failing job, the transaction left open for the
        caller's rollback."""
        conn.execute(self._begin)
        try:
            if self._lock is not None:
                keys = sorted({job.key for job in batch if job.key is not None})
                if keys:
                    self._lock(conn, keys)
            if careful:
                outcomes = [self._one(conn, job) for job in batch]
            else:
                outcomes = []
                for job in batch:
                    try:
                        outcomes.append((job, job.fn(conn), None))
                    except Exception as exc:
                        raise _JobFailed from exc
            if self._before_commit is not None:
                self._piggyback(conn, self._before_commit)
            conn.execute("COMMIT")
        except _JobFailed:
            raise
        except BaseException:
            rollback(conn)
            raise
        return outcomes

    def _one(self, conn: C, job: _Job[Any]) -> _Outcome:
        conn.execute("SAVEPOINT job")
        try:
            value = job.fn(conn)
        except Exception as exc:
            if not conn.in_transaction:  # the database rolled back everything (SQLITE_FULL):
                raise  # the whole batch fails with this job's own error, not "no savepoint"
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            # The caller judges and logs it: bad data is its message's outcome.
            self._log.debug(f"{self._name}.job_failed", error=repr(exc))
            return job, None, exc
        conn.execute("RELEASE job")
        return job, value, None

    def _piggyback(self, conn: C, hook: Callable[[C], object]) -> None:
        conn.execute("SAVEPOINT hook")
        try:
            hook(conn)
        except Exception as exc:
            if not conn.in_transaction:
                raise
            conn.execute("ROLLBACK TO hook")
            self._log.error(f"{self._name}.hook_failed", exc_info=exc)
        conn.execute("RELEASE hook")

    def _failed(self, batch: list[_Job[Any]], exc: Exception) -> list[_Outcome]:
        self._failed_commits += 1
        if self._failed_commits == 1:  # a state change; the next failures only count
            self._log.error(
                f"{self._name}.commit_failed",
                error=str(exc),
                jobs=len(batch),
                transient=self._is_transient(exc),
                exc_info=exc,
            )
        if self._conn is not None:
            rollback(self._conn)
        return [(job, None, exc) for job in batch]

    def _committed(self, jobs: int) -> None:
        self.commits += 1
        self.writes += jobs
        if self._failed_commits:
            self._log.info(f"{self._name}.commit_recovered", failed_commits=self._failed_commits)
            self._failed_commits = 0


def _resolve_by_loop(outcomes: list[_Outcome]) -> None:
    """One ``call_soon_threadsafe`` per event loop and batch, not one per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, resolved in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, resolved)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _resolve(outcomes: list[_Outcome]) -> None:
    for job, value, error in outcomes:
        if job.future.done():
            continue
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(value)
