"""Read-only queries off the event loop: one connection per worker thread, reused."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from edgeorder.ingest.store.db import connect

__all__ = ["Reader"]

T = TypeVar("T")


class Reader:
    """``await reader(fn)`` runs ``fn(conn)`` in a thread on a query-only connection."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return fn(self._conn())

    async def __call__(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self.run_sync, fn)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
