"""The device outbox: every event is stored here before it is published, and stays until its
press is settled (``agent.presses``): first *unacknowledged* (no status yet, ``state`` NULL),
then *open* (``accepted``/``queued`` heard, the outcome still to come), then *settled*. SQLite
in WAL mode with ``synchronous=FULL``: a stored event, and every state recorded for it,
survives an agent crash and a power cut.

Unacknowledged events are bounded by ``max_events``. Overflow policy: ``drop_oldest`` deletes
the oldest unacknowledged event to make room; ``refuse_new`` keeps the stored ones and refuses
the new event (``OutboxFullError``). Either way the ``dropped`` counter (persisted, sent in
telemetry) grows. Settled presses are kept for the last ``keep_settled`` only: their state is
what lets the agent recognise a stale status for them.

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
from edgeorder.kit import migrate, transaction

__all__ = ["AsyncOutbox", "Outbox", "SettledPress", "StoredEvent"]

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

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: a press stays until settled. An outbox written by an older agent holds only
    # unacknowledged events: NULL state, not settled, which is what they are.
    (
        "ALTER TABLE events ADD COLUMN state TEXT",
        "ALTER TABLE events ADD COLUMN settled INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX events_unacked ON events (n) WHERE state IS NULL",
        "CREATE INDEX events_unsettled ON events (n) WHERE settled = 0",
        "CREATE INDEX events_settled ON events (n) WHERE settled = 1",
    ),
)
"""``_MIGRATIONS[v]`` takes the file from ``PRAGMA user_version`` v to v + 1."""


@dataclass(frozen=True)
class StoredEvent:
    """One unsettled event; ``state`` is the latest status heard (None: none yet)."""

    event_id: str
    payload: bytes
    state: str | None = None


@dataclass(frozen=True)
class SettledPress:
    event_id: str
    state: str | None


class Outbox:
    """One device's outbox file. Use from a single thread."""

    def __init__(
        self,
        path: Path,
        *,
        max_events: int = 10_000,
        overflow: Literal["drop_oldest", "refuse_new"] = "drop_oldest",
        keep_settled: int = 1000,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.max_events, self.overflow = path, max_events, overflow
        self.keep_settled = keep_settled
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.Error:
            self._db.close()
            raise

    def _migrate(self) -> None:
        migrate(self._db, _MIGRATIONS, version=_user_version, set_version=_set_user_version)

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
        refused = False
        with transaction(self._db):
            self._db.execute("UPDATE meta SET value = max(value, ?) WHERE key = 'seq'", (seq,))
            if self.depth() >= self.max_events:
                if self.overflow == "refuse_new":
                    self._bump_dropped(1)  # committed: the refusal counts
                    refused = True
                else:
                    excess = self.depth() - self.max_events + 1
                    rows = self._db.execute(
                        "SELECT n, event_id FROM events WHERE state IS NULL ORDER BY n LIMIT ?",
                        (excess,),
                    ).fetchall()
                    self._db.executemany("DELETE FROM events WHERE n = ?", [(r[0],) for r in rows])
                    self._bump_dropped(len(rows))
                    dropped = [r[1] for r in rows]
            if not refused:
                self._db.execute(
                    "INSERT OR IGNORE INTO events (event_id, payload) VALUES (?, ?)",
                    (event_id, payload),
                )
        if refused:
            raise OutboxFullError(f"outbox holds {self.max_events} events; refused new")
        return dropped

    def record(self, event_id: str, state: str, *, settled: bool) -> bool:
        """Remember the latest ``state`` heard for an event (durably, before returning), and
        whether it settles the press; settled presses past ``keep_settled`` are deleted.
        True if the event was stored."""
        with transaction(self._db):
            cur = self._db.execute(
                "UPDATE events SET state = ?, settled = ? WHERE event_id = ?",
                (state, int(settled), event_id),
            )
            if settled and cur.rowcount:
                self._prune_settled()
        return cur.rowcount > 0

    def give_up(self, event_id: str) -> bool:
        """Stop waiting for an open press's outcome: settled with the state it has."""
        with transaction(self._db):
            cur = self._db.execute(
                "UPDATE events SET settled = 1 WHERE event_id = ? AND settled = 0", (event_id,)
            )
            self._prune_settled()
        return cur.rowcount > 0

    def _prune_settled(self) -> None:
        row = self._db.execute(
            "SELECT n FROM events WHERE settled = 1 ORDER BY n DESC LIMIT 1 OFFSET ?",
            (self.keep_settled,),
        ).fetchone()
        if row is not None:
            self._db.execute("DELETE FROM events WHERE settled = 1 AND n <= ?", (row[0],))

    def pending(self, limit: int | None = None) -> list[StoredEvent]:
        """Unsettled events (unacknowledged and open), oldest first."""
        sql = "SELECT event_id, payload, state FROM events WHERE settled = 0 ORDER BY n"
        rows = self._db.execute(sql + " LIMIT ?", (limit,)) if limit else self._db.execute(sql)
        return [StoredEvent(r[0], bytes(r[1]), r[2]) for r in rows]

    def settled(self) -> list[SettledPress]:
        """The settled presses kept, oldest first."""
        rows = self._db.execute(
            "SELECT event_id, state FROM events WHERE settled = 1 ORDER BY n"
        ).fetchall()
        return [SettledPress(r[0], r[1]) for r in rows]

    def depth(self) -> int:
        """Unacknowledged events: the ones ``max_events`` bounds."""
        row = self._db.execute("SELECT count(*) FROM events WHERE state IS NULL").fetchone()
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

    async def record(self, event_id: str, state: str, *, settled: bool) -> bool:
        return await self._call(partial(self._require().record, event_id, state, settled=settled))

    async def give_up(self, event_id: str) -> bool:
        return await self._call(partial(self._require().give_up, event_id))

    async def pending(self, limit: int | None = None) -> list[StoredEvent]:
        return await self._call(partial(self._require().pending, limit))

    async def settled(self) -> list[SettledPress]:
        return await self._call(partial(self._require().settled))

    async def counts(self) -> tuple[int, int]:
        """``(depth, dropped)``."""
        box = self._require()
        return await self._call(partial(lambda: (box.depth(), box.dropped())))

    async def close(self) -> None:
        if self._box is not None:
            await self._call(partial(self._box.close))
            self._box = None
        self._pool.shutdown(wait=True)


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _set_user_version(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(f"PRAGMA user_version = {int(version)}")
