"""Two ingest workers on one PostgreSQL: an alert one of them opens, or acknowledges, reaches
the other's banner through the notice fan-out (LISTEN/NOTIFY), not at its next pass."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.database import Database
from edgeorder.ingest.store.reports import record_presence
from tests.ingest.support import Ingest, OrderCore, shared_workers
from tests.support.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def workers(
    tmp_path: Path, pg_url: str, mosquitto: MosquittoServer, ordercore: OrderCore
) -> AsyncIterator[list[Ingest]]:
    async with shared_workers(
        tmp_path,
        mosquitto.url,
        ordercore.url,
        pg_url,
        alert_interval_s=3600,  # passes only when the test says
        alert_offline_s=0.001,
    ) as running:
        yield running


async def refreshed(worker: Ingest, action: asyncio.Future[object]) -> None:
    """Run ``action`` (on another worker) and wait until ``worker`` refreshed its banner."""
    async with worker.service.bus.subscribe(frozenset({"alert_view"})) as seen:
        await action
        async with asyncio.timeout(15):
            while (await seen.get()).kind != "alert_view":
                pass


async def test_the_other_workers_banner_follows(workers: list[Ingest], pg_url: str) -> None:
    first, second = workers
    with Database.from_url(pg_url).open() as conn:
        registry.add_device(
            conn, "k-01", mapping=p.ButtonMapping(single=p.ReorderAction(sku="COFFEE-1KG"))
        )
        record_presence(conn, "k-01", p.Presence(online=False, ts=p.utcnow()), p.utcnow())
    assert second.service.alerts.open == []
    await refreshed(second, asyncio.ensure_future(first.service.alerts.evaluate()))
    assert [(a["kind"], a["state"]) for a in second.service.alerts.open] == [
        ("device_offline", "active")
    ]
    alert_id = second.service.alerts.open[0]["id"]
    await refreshed(
        first, asyncio.ensure_future(second.service.alerts.acknowledge(alert_id, "ops"))
    )
    assert [a["state"] for a in first.service.alerts.open] == ["acknowledged"]
