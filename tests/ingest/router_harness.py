"""The real message path without a broker: Router + Writer on a real SQLite file (WAL) + ledger.

Only the MQTT transport is replaced: statuses (and retained clears) are recorded in a list,
and ``ack`` records which delivery was acknowledged, so a test can await "this message reached
its final outcome" instead of sleeping.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeorder import protocol as p
from edgeorder.ingest.bus import Bus
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.mqtt.link import Inbound
from edgeorder.ingest.mqtt.router import Router
from edgeorder.ingest.mqtt.statuses import StatusPublisher
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.store.device_cache import DeviceCache
from edgeorder.ingest.store.writer import Writer

STALE_S = 24 * 3600


@dataclass(frozen=True)
class Published:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class RecordingTransport:
    """Stands in for the MQTT link's ``publish``: keeps every publish, in order."""

    sent: list[Published] = field(default_factory=list)
    _mids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> int | None:
        self.sent.append(Published(topic, payload, retain))
        return next(self._mids)

    def statuses(self, device_id: str) -> list[dict[str, Any]]:
        topic = p.device_topic(device_id, p.Channel.STATUS)
        return [json.loads(m.payload) for m in self.sent if m.topic == topic]


class RouterHarness:
    """One router over ``data_dir/ingest.db``; ``deliver`` hands it a message the way the
    MQTT link does and waits (without sleeping) until the router acknowledged it."""

    def __init__(self, data_dir: Path, **router_kw: Any) -> None:
        self.db_path = data_dir / "ingest.db"
        open_db(self.db_path).conn.close()  # migrate
        self.metrics = Metrics()
        self.bus = Bus()
        self.transport = RecordingTransport()
        self.writer = Writer(self.db_path, on_commit=self.metrics.on_commit)
        self.devices = DeviceCache(self.db_path)
        self.statuses = StatusPublisher(self.transport, self.bus)
        self.acks: Counter[tuple[int, int]] = Counter()
        self._acked: dict[tuple[int, int], asyncio.Event] = {}
        self._mids = itertools.count(1)
        router_kw.setdefault("stale_after_s", STALE_S)
        self.router = Router(
            writer=self.writer,
            devices=self.devices,
            statuses=self.statuses,
            metrics=self.metrics,
            bus=self.bus,
            ack=self._ack,
            on_outbox=lambda: None,
            **router_kw,
        )

    async def start(self) -> RouterHarness:
        self.writer.start()
        await self.devices.reload()
        return self

    async def stop(self) -> None:
        self.router.close()
        await self.writer.stop()

    def _ack(self, message: Inbound) -> None:
        key = (message.generation, message.mid)
        self.acks[key] += 1
        event = self._acked.get(key)
        if event is not None:
            event.set()

    def message(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> Inbound:
        kw: dict[str, Any] = {"retain": retain} if retain else {}
        return Inbound(topic, payload, qos, next(self._mids), 1, **kw)

    def send(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> Inbound:
        """Hand one message to the router (as the MQTT link does); ``acked`` awaits it."""
        message = self.message(topic, payload, qos=qos, retain=retain)
        self._acked[(message.generation, message.mid)] = asyncio.Event()
        self.router.handle(message)
        return message

    async def acked(self, message: Inbound, within_s: float = 10.0) -> None:
        """Return once ``message`` is acknowledged (TimeoutError if it is not)."""
        async with asyncio.timeout(within_s):
            await self._acked[(message.generation, message.mid)].wait()

    async def deliver(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        within_s: float = 10.0,
    ) -> Inbound:
        """Route one message; return once it is acknowledged (TimeoutError if it is not)."""
        message = self.send(topic, payload, qos=qos, retain=retain)
        await self.acked(message, within_s)
        return message

    async def until_not_failing(self, within_s: float = 10.0) -> None:
        """Return once no message waits for a retry (the router's retries report changes)."""
        retries = self.router._retries
        settled = asyncio.Event()
        report = retries._on_change

        def watch(failing: int, parked: int) -> None:
            report(failing, parked)
            if failing == 0:
                settled.set()

        retries._on_change = watch
        try:
            if self.router.failing() == 0:
                return
            async with asyncio.timeout(within_s):
                await settled.wait()
        finally:
            retries._on_change = report

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else value
