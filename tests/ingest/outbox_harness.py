"""An outbox worker on a real SQLite store, without a broker: its statuses go to a
``transport`` the test reads; and events recorded straight into the ledger for it to order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from edgeorder import protocol as p
from edgeorder.ingest.bus import Bus
from edgeorder.ingest.connectors.base import Connector
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.mqtt.statuses import StatusPublisher, Transport
from edgeorder.ingest.orders.outbox import OutboxWorker
from edgeorder.ingest.store import ledger
from edgeorder.ingest.store.db import atomic, open_db
from edgeorder.ingest.store.device_cache import DeviceCache
from edgeorder.ingest.store.reader import Reader
from edgeorder.ingest.store.registry import load_devices
from edgeorder.ingest.store.writer import Writer
from tests.ingest.support import press

ReadFn = Callable[[Callable[[Any], Any]], Any]


def record_presses(db_path: Path, device_id: str, count: int = 1, *, now: Any = None) -> list[str]:
    """``count`` presses of ``device_id`` recorded in the ledger (due for the outbox), in one
    transaction; their event ids."""
    conn = open_db(db_path).conn
    now = now or p.utcnow()
    ids = []
    with atomic(conn):
        device = load_devices(sqlite_utils.Database(conn))[device_id]
        for seq in range(count):
            event = press(device_id, seq=seq, ts=now)
            ledger.record_event(conn, event, device, now=now, stale_after_s=60)
            ids.append(event.event_id)
    conn.close()
    return ids


@asynccontextmanager
async def running_worker(
    db_path: Path,
    connector: Connector,
    transport: Transport,
    *,
    read: Callable[[Reader], ReadFn] | None = None,
    **options: Any,
) -> AsyncIterator[OutboxWorker]:
    """An ``OutboxWorker`` running as a task on ``db_path`` (its own writer and reader;
    ``read`` may wrap the reader to watch the reads); cancelled and closed on exit."""
    reader, writer = Reader(db_path), Writer(db_path)
    writer.start()
    cache = DeviceCache(db_path)
    await cache.reload()
    worker = OutboxWorker(
        writer=writer,
        read=read(reader) if read is not None else reader,
        connector=connector,
        devices=cache,
        statuses=StatusPublisher(transport, Bus()),
        metrics=Metrics(),
        default_profile={},
        **options,
    )
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await writer.stop()
        reader.close()
