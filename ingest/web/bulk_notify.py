"""After a bulk action is committed: tell the running service about every device changed
(the device cache reloads, open pages refresh) and push the new retained config of those
whose desired config changed (``set_env``)."""

from __future__ import annotations

from aiohttp import web

from edgeorder.ingest.bus import Notice
from edgeorder.ingest.keys import BUS_KEY, PUBLISHER_KEY
from edgeorder.ingest.store.bulk import BulkResult

__all__ = ["announce_bulk"]


async def announce_bulk(request: web.Request, done: BulkResult, *, source: str) -> None:
    bus = request.app.get(BUS_KEY)
    if bus is not None:
        for device_id in done.changed:
            bus.publish(Notice("device", device_id, {"source": source}))
    publisher = request.app.get(PUBLISHER_KEY)
    if publisher is not None:
        for device_id in done.config_changed:
            await publisher.publish_config(device_id)
