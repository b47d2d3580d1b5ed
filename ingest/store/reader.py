"""Read-only queries off the event loop: the kit's reader pool on ingest's database.

SQLite: one query-only connection per pool thread. PostgreSQL: a ``psycopg_pool`` of read-only
sessions. Each call sees one snapshot (a read transaction). One ``Reader`` per service, closed
at its cleanup.
"""

from __future__ import annotations

from pathlib import Path

from edgeorder.ingest.store import pg
from edgeorder.ingest.store.database import Conn, Database
from edgeorder.kit import Reader as KitReader

__all__ = ["Reader"]


class Reader(KitReader[Conn]):
    """``await reader(fn)`` runs ``fn(conn)`` in a thread on a read-only connection."""

    def __init__(self, database: Database | Path, *, threads: int = 4) -> None:
        self.database = db = Database.of(database)
        self._pg: pg.PgReaders | None = None
        if db.url is not None:
            self._pg = pg.PgReaders(db.url, size=threads)
            super().__init__(acquire=self._pg.acquire, threads=threads, name="ingest-read")
        else:
            super().__init__(
                lambda: db.connect(readonly=True),
                threads=threads,
                name="ingest-read",
                alive=db.alive,
            )

    def close(self) -> None:
        super().close()
        if self._pg is not None:
            self._pg.close()
