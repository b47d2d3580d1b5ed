"""Home Assistant MQTT discovery, published by ingest (``--ha-discovery``).

The payloads are ``ingest.domain.homeassistant``'s; this is the I/O shell. One task keeps the
broker's retained configs equal to the registry: it reads every enabled device (with its
presence's firmware), publishes each config that is new or changed (retained, QoS 1) and clears
(an empty retained publish) the configs of devices that are gone or disabled. A sync runs
at start, after a registry change or a presence (the firmware) on the bus, when the broker
hands over a retained config of ours that differs from what this run published (an earlier
run's, on the subscription every connection makes), and -- publishing everything again --
when Home Assistant announces itself (``<prefix>/status`` = ``online``, its birth message).
Requests while a sync runs coalesce into the next one.

Several workers each do the same: the configs are equal bytes, so the broker keeps one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from edgeorder import __version__
from edgeorder import protocol as p
from edgeorder.ingest.bus import Bus
from edgeorder.ingest.domain import homeassistant as ha
from edgeorder.ingest.store.queries import enabled_devices_with_fw

__all__ = ["HaDiscovery"]

log = structlog.get_logger(__name__)

Read = Callable[[Callable[[Any], Any]], Awaitable[Any]]
Publish = Callable[..., Any]


def _ha_device(row: dict[str, Any]) -> ha.HaDevice:
    mapping = p.ButtonMapping.model_validate(
        json.loads(row["mapping"]) if isinstance(row["mapping"], str) else row["mapping"]
    )
    idle = p.NoAction()
    sensor_only = bool(mapping.sensors) and mapping.single == idle and mapping.double == idle
    return ha.HaDevice(row["device_id"], row["name"] or "", row["fw"] or "", sensor_only)


class HaDiscovery:
    """Keeps the retained discovery configs equal to the registry (see the module docstring)."""

    def __init__(
        self,
        *,
        publish: Publish,
        read: Read,
        bus: Bus,
        prefix: str = ha.DEFAULT_PREFIX,
        dashboard_url: str | None = None,
    ) -> None:
        self._publish, self._read, self._bus = publish, read, bus
        self.prefix = prefix
        self._dashboard_url = dashboard_url
        self.published: dict[str, bytes] = {}
        """Topic -> the config we believe the broker keeps retained."""
        self._wanted = asyncio.Event()
        self._force = False
        self.syncs = 0

    @property
    def subscriptions(self) -> tuple[tuple[str, int], ...]:
        """What ingest subscribes to for discovery (QoS 0: nothing to acknowledge)."""
        birth = f"{self.prefix}/{ha.BIRTH_TOPIC}"
        return ((birth, 0), *((f, 0) for f in ha.config_filters(self.prefix)))

    def request(self, *, force: bool = False) -> None:
        """Ask for a sync (``force``: publish every config again)."""
        self._force = self._force or force
        self._wanted.set()

    def on_message(self, topic: str, payload: bytes, retain: bool) -> None:
        """The link's ``on_other`` (on the loop): Home Assistant's birth, or a config."""
        if topic == f"{self.prefix}/{ha.BIRTH_TOPIC}":
            if payload.strip() == b"online":
                log.info("ha.birth", prefix=self.prefix)
                self.request(force=True)
            return
        if ha.node_device_id(self.prefix, topic) is None:
            return
        if not payload:  # cleared (by us, or by Home Assistant deleting the device)
            self.published.pop(topic, None)
        elif retain and self.published.get(topic) != payload:
            # from the broker's retained store on our SUBSCRIBE: an earlier run's config (or
            # another version's). A live one is another worker's publish: never answered, so
            # two workers of different versions cannot take turns forever.
            self.published[topic] = payload
            self.request()

    async def run(self) -> None:
        """Sync now, then whenever asked or the bus says a device changed."""
        self.request()
        async with self._bus.subscribe(frozenset({"device", "presence"})) as notices:
            follow = asyncio.create_task(self._follow(notices), name="ingest-ha-bus")
            try:
                while True:
                    await self._wanted.wait()
                    self._wanted.clear()
                    force, self._force = self._force, False
                    try:
                        await self.sync(force=force)
                    except Exception:  # the database is away: the next change tries again
                        log.exception("ha.sync_failed")
            finally:
                follow.cancel()

    async def _follow(self, notices: asyncio.Queue[Any]) -> None:
        while True:
            await notices.get()
            self.request()

    async def sync(self, *, force: bool = False) -> tuple[int, int]:
        """Publish what changed, clear what is gone; (published, cleared)."""
        rows = await self._read(enabled_devices_with_fw)
        desired: dict[str, bytes] = {}
        for row in rows:
            messages = ha.discovery_messages(
                _ha_device(row),
                prefix=self.prefix,
                version=__version__,
                dashboard_url=self._dashboard_url,
            )
            desired.update({t: ha.encode(m) for t, m in messages.items()})
        published = 0
        for topic, payload in desired.items():
            if force or self.published.get(topic) != payload:
                self._publish(topic, payload, qos=1, retain=True)
                self.published[topic] = payload
                published += 1
        gone = [t for t in self.published if t not in desired]
        for topic in gone:
            self._publish(topic, b"", qos=1, retain=True)
            del self.published[topic]
        self.syncs += 1
        if published or gone:
            log.info("ha.synced", published=published, cleared=len(gone), devices=len(rows))
        return published, len(gone)
