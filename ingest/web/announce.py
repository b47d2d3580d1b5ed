"""After a registry change is committed, before the handler answers: the running service's
device cache is reloaded (the next event of a changed device follows the change -- an
operator who PATCHes a mapping and presses the button gets the new mapping, not the cached
one), open pages and the other workers hear a ``device`` notice, and devices whose desired
config changed get it again (retained)."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from aiohttp import web

from edgeorder.ingest.bus import Notice
from edgeorder.ingest.keys import BUS_KEY, PUBLISHER_KEY
from edgeorder.ingest.store.bulk import BulkResult

__all__ = ["announce", "announce_bulk"]

log = structlog.get_logger(__name__)


async def announce(
    request: web.Request,
    changed: Iterable[str | None],
    *,
    source: str,
    config_changed: Iterable[str] = (),
) -> None:
    """``changed``: the devices whose registry rows changed (None: a change of no one device);
    ``config_changed``: those of them whose desired config (mapping, env) changed."""
    publisher = request.app.get(PUBLISHER_KEY)
    changed = tuple(changed)
    reloaded = False
    if publisher is not None and changed:
        try:
            await publisher.reload_devices()
            reloaded = True
        except Exception:  # committed all the same: the registry follower reloads it later
            log.exception("devices.reload_failed", devices=len(changed))
    bus = request.app.get(BUS_KEY)
    if bus is not None:
        # "reloaded": this process's cache is current; other workers still reload on it
        data = {"source": source, "reloaded": reloaded}
        for device_id in changed:
            bus.publish(Notice("device", device_id, dict(data)))
    for device_id in config_changed:
        if publisher is None:
            log.warning("config_not_pushed", device_id=device_id, reason="no MQTT publisher")
            continue
        try:
            await publisher.publish_config(device_id)
        except Exception:  # committed: the reload (now or the follower's) publishes it too
            log.exception("config_not_pushed", device_id=device_id)


async def announce_bulk(request: web.Request, done: BulkResult, *, source: str) -> None:
    await announce(request, done.changed, source=source, config_changed=done.config_changed)
