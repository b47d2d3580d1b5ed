"""Several ingest workers evaluate the same alerts on one database (PostgreSQL as a cluster
shares it; SQLite too): one alert opens, and each transition reaches the webhook once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from edgeorder import protocol as p
from edgeorder.ingest.alerting import AlertService
from edgeorder.ingest.bus import Bus
from edgeorder.ingest.health import PlatformMonitor
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.database import Database
from edgeorder.ingest.store.reader import Reader
from edgeorder.ingest.store.reports import record_presence
from edgeorder.ingest.store.writer import Writer
from tests.ingest.alert_receivers import SECRET, WebhookReceiver

MAPPING = p.ButtonMapping(single=p.ReorderAction(sku="COFFEE-1KG", quantity=1))


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    receiver = await WebhookReceiver().start()
    yield receiver
    await receiver.stop()


class Worker:
    def __init__(self, database: Database, name: str, settings: Settings, clock: list) -> None:
        self.writer, self.reader = Writer(database), Reader(database)
        self.platform = PlatformMonitor("http://127.0.0.1:9")
        self.platform.answered()
        self.service = AlertService(
            settings,
            writer=self.writer,
            reader=self.reader,
            platform=self.platform,
            bus=Bus(),
            metrics=Metrics(),
            owner=name,
            clock=lambda: clock[0],
        )

    async def close(self) -> None:
        await self.service.close()
        await self.writer.stop()
        self.reader.close()


async def test_two_workers_one_alert_one_message_per_transition(
    database: Database, hook: WebhookReceiver
) -> None:
    database.migrate()
    with database.open() as conn:
        registry.add_device(conn, "k-01", mapping=MAPPING)
        record_presence(conn, "k-01", p.Presence(online=False, ts=p.utcnow()), p.utcnow())
    settings = Settings(
        alert_offline_s=60,
        alert_clear_hold_s=0,
        alert_webhook_url=hook.url,
        alert_webhook_secret=SECRET,
    )
    clock = [p.utcnow() + timedelta(minutes=2)]
    workers = [Worker(database, f"w{i}", settings, clock) for i in range(3)]
    for w in workers:
        w.writer.start()
    try:

        async def pass_(w: Worker) -> None:
            await w.service.evaluate()
            await w.service.notifier.run_once(clock[0])

        await asyncio.gather(*(pass_(w) for w in workers))
        await asyncio.gather(*(pass_(w) for w in workers))
        assert hook.transitions() == [("opened", "device_offline", "k-01")]
        assert all(len(w.service.open) == 1 for w in workers)

        with database.open() as conn:
            record_presence(conn, "k-01", p.Presence(online=True, ts=p.utcnow()), p.utcnow())
        await asyncio.gather(*(pass_(w) for w in workers))
        await asyncio.gather(*(pass_(w) for w in workers))
        assert hook.transitions() == [
            ("opened", "device_offline", "k-01"),
            ("cleared", "device_offline", "k-01"),
        ]
        assert hook.refused == []
    finally:
        for w in workers:
            await w.close()


async def test_a_failing_pass_is_logged_and_the_loop_goes_on(tmp_path: Path) -> None:
    database = Database.sqlite(tmp_path / "ingest.db")
    database.migrate()
    settings = Settings(alert_interval_s=0.01)
    worker = Worker(database, "w", settings, [p.utcnow()])
    # the writer never started: every write fails (WriterClosedError), every pass logs it
    try:
        with capture_logs() as captured:
            task = asyncio.create_task(worker.service.run())
            async with asyncio.timeout(10):
                for _ in range(3):
                    await worker.service.passed.wait()
                    worker.service.passed.clear()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        await worker.close()
    failed = [e for e in captured if e["event"] == "alerts.evaluate_failed"]
    assert len(failed) >= 3
    assert failed[0]["log_level"] == "error"
