"""Running ingest and the real order core in the test's event loop, on free ports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from ulid import ULID

from edgeorder import protocol as p
from edgeorder.ingest.app import SERVICE_KEY, create_app
from edgeorder.ingest.connectors.settings import ConnectorSettings
from edgeorder.ingest.service import IngestService
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from edgeorder.ordercore.app import create_app as create_core_app
from edgeorder.ordercore.settings import SEED_CATALOG
from edgeorder.ordercore.settings import Settings as CoreSettings
from tests.support.mqtt import MqttProbe, Received
from tests.support.net import free_port

CORE_TOKEN = "test-core-token"
"""ingest's token: the order core's app principal, as a deployment configures it."""
CORE_ADMIN_TOKEN = "test-core-admin"
"""The tests' own look at every order (an admin)."""
COFFEE_PRICE = 8990  # COFFEE-1KG in ordercore/catalog_seed.json


@dataclass
class OrderCore:
    """The real order core on a fixed port; ``stop()``/``start()`` keep port and data."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> OrderCore:
        settings = CoreSettings(
            data_dir=self.data_dir,
            port=self.port,
            tokens=[f"ops={CORE_ADMIN_TOKEN}:role=admin", f"ingest={CORE_TOKEN}:role=app"],
            catalog_seed=SEED_CATALOG,
            webhook_backoff_base_s=0.05,
            webhook_backoff_max_s=0.5,
        )
        self._runner = web.AppRunner(create_core_app(settings))
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {CORE_ADMIN_TOKEN}"}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.request(method, self.url + path, json=body) as resp,
        ):
            assert resp.status < 300, (resp.status, await resp.text())
            return await resp.json()

    async def orders(self, device_id: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = []
        index = 1
        while True:
            page = await self.call(
                "GET", f"/api/order/received?device={device_id}&pageSize=200&pageIndex={index}"
            )
            data += page["Data"]
            if len(data) >= page["Total"] or not page["Data"]:
                return data
            index += 1


@dataclass
class Ingest:
    """ingest running in this event loop (as the demo runs it)."""

    settings: Settings
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    @property
    def service(self) -> IngestService:
        assert self._runner is not None
        return self._runner.app[SERVICE_KEY]

    async def start(self) -> Ingest:
        self._runner = web.AppRunner(create_app(self.settings))
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.settings.http_port).start()
        await asyncio.wait_for(self.service.link.subscribed.wait(), 15)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(self.url + path) as resp:
            return resp.status, await resp.text()


@asynccontextmanager
async def shared_workers(
    base: Path, mqtt_url: str, core_url: str, pg_url: str, count: int = 2, **extra: Any
) -> AsyncIterator[list[Ingest]]:
    """``count`` ingest workers ``w0``, ``w1``, ... on one PostgreSQL ledger and one shared
    MQTT group, each started and listening for the others' notices; stopped at the end."""
    running: list[Ingest] = []
    try:
        for n in range(count):
            settings = ingest_settings(
                base / f"w{n}",
                mqtt_url,
                core_url,
                db_url=pg_url,
                mqtt_shared_group="ingest",
                worker_id=f"w{n}",
                **extra,
            )
            running.append(await Ingest(settings).start())
        for worker in running:
            fanout = worker.service.fanout
            assert fanout is not None
            await asyncio.wait_for(fanout.listening.wait(), 10)
        yield running
    finally:
        for worker in running:
            await worker.stop()


def ingest_settings(data_dir: Path, mqtt_url: str, core_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "mqtt_url": mqtt_url,
        "mqtt_username": "",
        "mqtt_client_id": f"ingest-{ULID()}",
        "http_port": free_port(),
        "connector": ConnectorSettings(base_url=core_url, token=CORE_TOKEN, timeout_s=2),
        "retry_base_s": 0.05,
        "retry_max_s": 0.3,
        "poll_interval_s": 3600,
    }
    values.update(extra)
    return Settings(**values)


def add_device(data_dir: Path, device_id: str, sku: str = "COFFEE-1KG", **kw: Any) -> str:
    db = open_db(data_dir / "ingest.db")
    try:
        mapping = p.ButtonMapping(single=p.ReorderAction(sku=sku, quantity=kw.pop("quantity", 1)))
        _, password = registry.add_device(db, device_id, mapping=mapping, **kw)
        return password
    finally:
        db.conn.close()


def press(device_id: str, click: p.Click = p.Click.SINGLE, **kw: Any) -> p.Event:
    values: dict[str, Any] = {
        "event_id": str(ULID()),
        "device_id": device_id,
        "seq": 1,
        "kind": p.EventKind.PRESS,
        "click": click,
        "ts": p.utcnow(),
        "fw": "test",
    }
    values.update(kw)
    return p.Event(**values)


def status_is(device_id: str, event_id: str | None, state: str) -> Callable[[Received], bool]:
    topic = p.device_topic(device_id, p.Channel.STATUS)

    def match(m: Received) -> bool:
        if m.topic != topic:
            return False
        body = json.loads(m.payload)
        return bool(body.get("event_id") == event_id and body["state"] == state)

    return match


async def wait_for(
    probe: MqttProbe,
    pred: Callable[[Received], bool],
    count: int = 1,
    within_s: float = 20,
    *,
    distinct_events: bool = False,
) -> list[Received]:
    """``probe.wait_for`` off the loop (ingest runs on this loop and must keep running).

    ``distinct_events``: count distinct ``event_id``s, not messages (statuses may be re-sent).
    """
    key = event_id_of if distinct_events else None
    return await asyncio.to_thread(partial(probe.wait_for, pred, within_s, count, key=key))


def event_id_of(message: Received) -> object:
    """The ``event_id`` of a Status message (None if it has none)."""
    return json.loads(message.payload).get("event_id")


def metric(text: str, name: str) -> float | None:
    """The value of sample ``name`` (with its labels, if any) in a Prometheus text page."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None
