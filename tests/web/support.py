"""Test helpers for the dashboard: seed rows in ingest's real database (a SQLite file, or a
PostgreSQL database given as a ``Database``), a simulator double."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from ulid import ULID

from edgeorder import protocol as p
from edgeorder.ingest.bus import Bus, Notice
from edgeorder.ingest.keys import BUS_KEY, SETTINGS_KEY, STORE_KEY
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.database import Conn, Database
from edgeorder.ingest.store.db import atomic, open_db
from edgeorder.ingest.store.handle import Store
from edgeorder.ingest.store.reader import Reader
from edgeorder.ingest.store.writer import Writer

ADMIN_PASSWORD = "correct horse battery staple"


def unstarted_store(db_path: Path) -> Store:
    """A writer and a reader pool on ``db_path``, as an ingest service holds them."""
    return Store(Writer(db_path), Reader(db_path))


async def serve_store(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx of a dashboard-only app: migrate, run the store's writer, close both, as
    ``IngestService.start``/``stop`` do for the real app."""
    store, path = app[STORE_KEY], app[SETTINGS_KEY].db_path
    await asyncio.to_thread(lambda: open_db(path).conn.close())
    store.writer.start()
    try:
        yield
    finally:
        await store.writer.stop()
        store.reader.close()


@asynccontextmanager
async def api_alone(data_dir: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A client of the REST API's routes alone, on a store in ``data_dir``: no auth
    middleware, no service (for tests of the API's contract and input)."""
    from edgeorder.ingest.settings import Settings
    from edgeorder.ingest.web.api import install_api

    settings = Settings(data_dir=data_dir)
    open_db(settings.db_path).conn.close()
    app = web.Application()
    app[SETTINGS_KEY] = settings
    app[BUS_KEY] = Bus()
    app[STORE_KEY] = unstarted_store(settings.db_path)
    app.cleanup_ctx.append(serve_store)
    install_api(app)
    async with TestClient(TestServer(app)) as client:
        yield client


def add_device(
    db_path: Path | Database, device_id: str, *, env: str = "prod", simulated: bool = False
) -> str:
    """Register a device through the real registry; returns its MQTT password."""
    with Database.of(db_path).open() as db:
        mapping = p.ButtonMapping(single=p.ReorderAction(sku="COFFEE-1KG", quantity=1))
        _, password = registry.add_device(
            db,
            device_id,
            name=f"{device_id} name",
            mapping=mapping,
            env="dev" if env == "dev" else "prod",
            simulated=simulated,
        )
        return password


def set_presence(db_path: Path | Database, device_id: str, online: bool, fw: str = "0.1.0") -> None:
    now = p.format_ts(p.utcnow())
    with _conn(db_path) as conn, atomic(conn):
        conn.execute(
            "INSERT INTO presence (device_id, online, fw, ts, received_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, fw = excluded.fw, "
            "ts = excluded.ts, received_at = excluded.received_at",
            (device_id, int(online), fw, now, now),
        )


def record_event(
    db_path: Path | Database,
    device_id: str,
    *,
    click: str = "single",
    state: str = "accepted",
    order_id: str | None = None,
    order_state: str | None = None,
    pending: bool = False,
    last_error: str | None = None,
    at: str | None = None,
) -> tuple[int, str]:
    """An inbox row with its status history (and an order and/or an outbox row);
    returns (inbox id, event id)."""
    now = at or p.format_ts(p.utcnow())
    event_id = str(ULID())
    with _conn(db_path) as conn, atomic(conn):
        cur = conn.execute(
            "INSERT INTO inbox (device_id, event_id, payload_hash, payload, kind, trigger, seq, "
            "ts, received_at, action, state, order_id, reason, updated_at) "
            "VALUES (?, ?, 'h', '{}', 'press', ?, 1, ?, ?, ?, ?, ?, NULL, ?) RETURNING id",
            (
                device_id,
                event_id,
                click,
                now,
                now,
                json.dumps({"type": "reorder"}),
                state,
                order_id,
                now,
            ),
        )
        inbox_id = int(cur.fetchone()[0])
        for step in ["accepted", *([state] if state != "accepted" else [])]:
            conn.execute(
                "INSERT INTO status_history (device_id, event_id, state, order_id, at) "
                "VALUES (?, ?, ?, ?, ?)",
                (device_id, event_id, step, order_id, now),
            )
        if order_id is not None:
            conn.execute(
                "INSERT INTO orders (order_id, inbox_id, device_id, event_id, sku, quantity, "
                "state, created_at, updated_at) VALUES (?, ?, ?, ?, 'COFFEE-1KG', 1, ?, ?, ?)",
                (order_id, inbox_id, device_id, event_id, order_state or "ordered", now, now),
            )
        if pending:
            conn.execute(
                "INSERT INTO order_outbox (inbox_id, device_id, event_id, op, sku, quantity, "
                "attempts, next_attempt_at, last_error, created_at, updated_at) "
                "VALUES (?, ?, ?, 'create', 'COFFEE-1KG', 1, 3, ?, ?, ?, ?)",
                (inbox_id, device_id, event_id, now, last_error, now, now),
            )
    return inbox_id, event_id


def record_rejection(db_path: Path | Database, device_id: str, code: str = "stale") -> None:
    with _conn(db_path) as conn, atomic(conn):
        conn.execute(
            "INSERT INTO rejections (device_id, code, detail, at) VALUES (?, ?, ?, ?)",
            (device_id, code, "test rejection", p.format_ts(p.utcnow())),
        )


def _conn(where: Path | Database) -> AbstractContextManager[Conn]:
    """A short-lived, migrated connection to the test database (closed on exit)."""
    return Database.of(where).open()


class RecordingSimulator:
    """Stands in for the demo's simulated devices: a press becomes what ingest would record
    (an accepted event, then an order) in the real database, announced on the real bus."""

    def __init__(self, db_path: Path, bus: Bus) -> None:
        self.db_path, self.bus = db_path, bus
        self.devices: set[str] = set()
        self.presses: list[tuple[str, str]] = []
        self.next_order = 100
        self._tasks: set[asyncio.Task[None]] = set()

    def simulated_devices(self) -> set[str]:
        return set(self.devices)

    def press(self, device_id: str, click: str) -> None:
        """Like the demo: returns at once; the outcome arrives later through the bus."""
        if device_id not in self.devices:
            raise KeyError(device_id)
        self.presses.append((device_id, click))
        self.next_order += 1
        task = asyncio.get_running_loop().create_task(
            self._order(device_id, click, str(self.next_order))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _order(self, device_id: str, click: str, order_id: str) -> None:
        await asyncio.to_thread(
            record_event,
            self.db_path,
            device_id,
            click=click,
            state="ordered",
            order_id=order_id,
            order_state="ordered",
        )
        self.bus.publish(Notice("status", device_id, {"state": "ordered"}))


class RecordingPublisher:
    """Stands in for ingest's MQTT link: records which device configs were pushed and how
    often the device cache was asked to reload."""

    def __init__(self) -> None:
        self.pushed: list[str] = []
        self.reloads = 0

    async def publish_config(self, device_id: str) -> None:
        self.pushed.append(device_id)

    async def reload_devices(self) -> None:
        self.reloads += 1
