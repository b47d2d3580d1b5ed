"""The device outbox: every event is stored here before it is published, until any Status
for its ``event_id`` arrives. SQLite in WAL mode with ``synchronous=FULL``: a stored event
survives an agent crash and a power cut.

Bounded by ``max_events``. Overflow policy: ``drop_oldest`` deletes the oldest unacknowledged
event to make room; ``refuse_new`` keeps the stored ones and refuses the new event
(``OutboxFullError``). Either way the ``dropped`` counter (persisted, sent in telemetry) grows.

``Outbox`` is synchronous and owned by one thread; ``AsyncOutbox`` runs it on a dedicated
thread so the asyncio worker never blocks on a disk flush.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal, ParamSpec, TypeVar

from edgeorder.agent.errors import OutboxFullError

__all__ = ["AsyncOutbox", "Outbox", "StoredEvent"]

P = ParamSpec("P")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('seq', 0), ('dropped', 0);
"""


@dataclass(frozen=True)
class StoredEvent:
    event_id: str
    payload: bytes


class Outbox:
    """One device's outbox file. Use from a single thread."""

    def __init__(
        self,
        path: Path,
        *,
        max_events: int = 10_000,
        overflow: Literal["drop_oldest", "refuse_new"] = "drop_oldest",
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.max_events, self.overflow = path, max_events, overflow
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error:
            self._db.close()
            raise

    def last_seq(self) -> int:
        """The highest ``seq`` ever stored: sequence numbers keep growing across restarts."""
        return self._meta("seq")

    def add(self, event_id: str, payload: bytes, seq: int = 0) -> list[str]:
        """Store an event (durably, before returning); returns the ids dropped to make room.

        ``seq`` (the event's sequence number) is remembered for ``last_seq`` in the same
        transaction. Raises OutboxFullError under ``refuse_new`` when full (``seq`` is still
        used up). Adding a stored id is a no-op.
        """
        dropped: list[str] = []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("UPDATE meta SET value = max(value, ?) WHERE key = 'seq'", (seq,))
            if self.depth() >= self.max_events:
                if self.overflow == "refuse_new":
                    self._bump_dropped(1)
                    self._db.execute("COMMIT")
                    raise OutboxFullError(f"outbox holds {self.max_events} events; refused new")
                excess = self.depth() - self.max_events + 1
                rows = self._db.execute(
                    "SELECT n, event_id FROM events ORDER BY n LIMIT ?", (excess,)
                ).fetchall()
                self._db.executemany("DELETE FROM events WHERE n = ?", [(r[0],) for r in rows])
                self._bump_dropped(len(rows))
                dropped = [r[1] for r in rows]
            self._db.execute(
                "INSERT OR IGNORE INTO events (event_id, payload) VALUES (?, ?)",
                (event_id, payload),
            )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return dropped

    def ack(self, event_id: str) -> bool:
        """Forget an event (a Status arrived for it). True if it was stored."""
        with self._db:
            cur = self._db.execute("DELETE FROM events WHERE event_id = ?", (event_id,))
        return cur.rowcount > 0

    def pending(self, limit: int | None = None) -> list[StoredEvent]:
        """Unacknowledged events, oldest first."""
        sql = "SELECT event_id, payload FROM events ORDER BY n"
        rows = self._db.execute(sql + " LIMIT ?", (limit,)) if limit else self._db.execute(sql)
        return [StoredEvent(r[0], bytes(r[1])) for r in rows]

    def depth(self) -> int:
        row = self._db.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0])

    def dropped(self) -> int:
        """Events lost to the overflow policy since the outbox was created."""
        return self._meta("dropped")

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0])

    def _bump_dropped(self, n: int) -> None:
        self._db.execute("UPDATE meta SET value = value + ? WHERE key = 'dropped'", (n,))

    def close(self) -> None:
        self._db.close()


class AsyncOutbox:
    """``Outbox`` on its own thread: every call is awaited, none blocks the event loop."""

    def __init__(self, outbox_factory: partial[Outbox]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._factory = outbox_factory
        self._box: Outbox | None = None

    async def open(self) -> None:
        self._box = await self._call(self._factory)

    def _require(self) -> Outbox:
        if self._box is None:
            raise RuntimeError("outbox is not open")
        return self._box

    async def _call(self, fn: partial[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def last_seq(self) -> int:
        return await self._call(partial(self._require().last_seq))

    async def add(self, event_id: str, payload: bytes, seq: int = 0) -> list[str]:
        return await self._call(partial(self._require().add, event_id, payload, seq))

    async def ack(self, event_id: str) -> bool:
        return await self._call(partial(self._require().ack, event_id))

    async def pending(self, limit: int | None = None) -> list[StoredEvent]:
        return await self._call(partial(self._require().pending, limit))

    async def counts(self) -> tuple[int, int]:
        """``(depth, dropped)``."""
        box = self._require()
        return await self._call(partial(lambda: (box.depth(), box.dropped())))

    async def close(self) -> None:
        if self._box is not None:
            await self._call(partial(self._box.close))
            self._box = None
        self._pool.shutdown(wait=True)
