"""The single writer of ingest: the kit's group-commit writer on ingest's database.

Every write of the service is a job ``fn(conn) -> T`` submitted from the event loop
(``edgeorder.kit.writer``: one thread, one transaction per batch, futures resolved once the
commit is durable; a failing job fails alone; jobs may run twice). On a shared PostgreSQL the
batch first locks the devices its jobs were submitted for (``submit(fn, key=device_id)``, see
``ingest.store.pg.lock_keys``), so the throttle and ``cancel_last`` decide on a device's orders
while no other worker can change them. Every job that changes a row of one device that other
workers change too (an event, a presence/telemetry/config report) names the device as its key:
the batches of all workers then take those rows in one order, and never deadlock on them.

A failed job is the caller's to judge: ``is_transient(exc)`` says whether the same write can
succeed later (a full disk, a locked database, a lost connection) or will fail the same way
again (bad data, a bug).

``before_commit(conn)``, when given, runs at the end of every group commit's transaction (in its
own savepoint; its failure fails nothing else): bookkeeping that rides along with the commits
there are anyway (ingest.mqtt.delivery's publish confirmations) instead of paying for its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import structlog

from edgeorder.ingest.store.database import Conn, Database, is_transient
from edgeorder.kit import Writer as KitWriter
from edgeorder.kit import WriterClosedError

__all__ = ["Writer", "WriterClosedError", "is_transient"]

log = structlog.get_logger(__name__)


class Writer(KitWriter[Conn]):
    """``await writer.run(fn)`` runs ``fn(conn)`` in the next group commit and returns its
    result once that commit is durable."""

    def __init__(
        self,
        database: Database | Path,
        *,
        batch_max: int = 512,
        on_commit: Callable[[int], None] | None = None,
        before_commit: Callable[[Conn], object] | None = None,
    ) -> None:
        self.database = Database.of(database)
        super().__init__(
            self.database.connect,
            name="writer",
            batch_max=batch_max,
            begin=self.database.begin,
            on_commit=on_commit,
            before_commit=before_commit,
            lock=self.database.lock,
            alive=self.database.alive,
            is_transient=is_transient,
            log=log,
        )
