"""The in-memory device cache of the event path: no registry query per message.

With several workers on one PostgreSQL, a change made through another worker reaches this one
as a ``device`` notice too (``ingest.store.fanout``), so no worker keeps ordering for a device
another has disabled.

Reloaded (off the event loop) at start, by the dashboard and the REST API before they answer
a change, on every ``device`` notice of the bus, when the registry's audit trail has grown
(``follow``: a change made by another process -- ``edgeorder device disable`` on the same
SQLite file -- takes effect within a period, not at the next restart), and when an event names a
device the cache does not know (a device just added by the CLI) -- such miss reloads at most
once per ``miss_refresh_s``, so a stream of unknown ids cannot turn into a stream of queries.
``on_config_change`` hears of every device that is new or has a new config version (so the
service can publish its retained config, also for devices added by the CLI).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from edgeorder.ingest.domain.devices import Device
from edgeorder.ingest.store.database import Conn, Database
from edgeorder.ingest.store.registry import load_devices, registry_mark

__all__ = ["DeviceCache"]

Read = Callable[[Callable[[Conn], Any]], Awaitable[Any]]

log = structlog.get_logger(__name__)


def _snapshot(conn: Conn) -> tuple[int, dict[str, Device]]:
    """The mark first: a change committed between the two reads is in the devices and, with
    the older mark, makes the next ``follow`` look reload once more (never once too few)."""
    return registry_mark(conn), load_devices(conn)


def _open_and(database: Database, fn: Callable[[Conn], Any]) -> Any:
    with database.open(migrate=False) as conn:
        return fn(conn)


class DeviceCache:
    """``get(device_id)`` answers from memory; ``reload()`` re-reads the registry."""

    def __init__(
        self,
        database: Database | Path,
        *,
        read: Read | None = None,
        miss_refresh_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_config_change: Callable[[Device], None] | None = None,
    ) -> None:
        self._database = Database.of(database)
        self._read = read
        self._on_config_change = on_config_change
        self._devices: dict[str, Device] = {}
        self._miss_refresh_s = miss_refresh_s
        self._clock = clock
        self._last_miss_reload = float("-inf")
        self._miss_reload: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()
        self._mark: int | None = None  # the registry mark of the devices held

    def get(self, device_id: str) -> Device | None:
        return self._devices.get(device_id)

    def __len__(self) -> int:
        return len(self._devices)

    async def reload(self) -> None:
        async with self._lock:
            mark, devices = await self._query(_snapshot)
            old, self._devices, self._mark = self._devices, devices, mark
        if self._on_config_change is None:
            return
        for device_id, device in self._devices.items():
            before = old.get(device_id)
            if before is None or before.config_version != device.config_version:
                self._on_config_change(device)

    async def _query(self, fn: Callable[[Conn], Any]) -> Any:
        """Through the service's reader pool when given one, else a connection of its own."""
        if self._read is not None:
            return await self._read(fn)
        return await asyncio.to_thread(_open_and, self._database, fn)

    async def reload_if_changed(self) -> bool:
        """Reload if the registry changed since the devices held were read; True if it did."""
        if await self._query(registry_mark) == self._mark:
            return False
        await self.reload()
        return True

    async def follow(self, period_s: float, on_reload: Callable[[], None]) -> None:
        """Every ``period_s``, reload if the registry changed since the devices held were read
        (``on_reload`` then tells the service); runs until cancelled. A failing read is logged
        when it starts and when it ends, and looked at again next period."""
        failing = False
        while True:
            await asyncio.sleep(period_s)  # a period, not a readiness wait
            try:
                changed = await self.reload_if_changed()
            except Exception:
                if not failing:
                    log.exception("devices.follow_failed")
                failing = True
                continue
            if failing:
                log.info("devices.follow_recovered")
                failing = False
            if changed:
                log.info("devices.reloaded", reason="registry changed", devices=len(self))
                on_reload()

    async def lookup(self, device_id: str) -> Device | None:
        """Like ``get``, but an unknown id may trigger a (rate-limited) reload first; lookups
        that arrive while that reload runs wait for it instead of answering "unknown"."""
        device = self._devices.get(device_id)
        if device is not None:
            return device
        running = self._miss_reload is not None and not self._miss_reload.done()
        if not running and self._clock() - self._last_miss_reload >= self._miss_refresh_s:
            self._last_miss_reload = self._clock()
            self._miss_reload = asyncio.ensure_future(self.reload())
            running = True
        if running and self._miss_reload is not None:
            await asyncio.shield(self._miss_reload)
        return self._devices.get(device_id)
