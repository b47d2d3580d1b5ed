"""The in-memory device cache of the event path: no registry query per message.

With several workers on one PostgreSQL, a change made through another worker reaches this one
as a ``device`` notice too (``ingest.store.fanout``), so no worker keeps ordering for a device
another has disabled.

Reloaded (off the event loop) at start, on every ``device`` notice of the bus (a change made
by the dashboard or the REST API), and when an event names a device the cache does not know (a
device added by the CLI in another process) -- such miss reloads at most once per
``miss_refresh_s``, so a stream of unknown ids cannot turn into a stream of queries.
``on_config_change`` hears of every device that is new or has a new config version (so the
service can publish its retained config, also for devices added by the CLI).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from edgeorder.ingest.domain.devices import Device
from edgeorder.ingest.store.database import Conn, Database
from edgeorder.ingest.store.registry import load_devices

__all__ = ["DeviceCache"]

Read = Callable[[Callable[[Conn], Any]], Awaitable[Any]]


def _load(database: Database) -> dict[str, Device]:
    with database.open(migrate=False) as conn:
        return load_devices(conn)


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

    def get(self, device_id: str) -> Device | None:
        return self._devices.get(device_id)

    def __len__(self) -> int:
        return len(self._devices)

    async def reload(self) -> None:
        async with self._lock:
            old, self._devices = self._devices, await self._load()
        if self._on_config_change is None:
            return
        for device_id, device in self._devices.items():
            before = old.get(device_id)
            if before is None or before.config_version != device.config_version:
                self._on_config_change(device)

    async def _load(self) -> dict[str, Device]:
        """The registry, through the service's reader pool when given one."""
        if self._read is not None:
            devices: dict[str, Device] = await self._read(load_devices)
            return devices
        return await asyncio.to_thread(_load, self._database)

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
