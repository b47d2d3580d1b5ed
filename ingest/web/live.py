"""``GET /live``: Server-Sent Events fed by the ingest ``Bus`` (one event per ``Notice``).

The browser re-reads the page regions it shows when a notice arrives (the database stays the
source of truth), so a notice carries only what changed, never the data to display.
"""

from __future__ import annotations

import asyncio
import json

import structlog
from aiohttp import web

from ingest.bus import Notice
from ingest.keys import BUS_KEY

__all__ = ["HEARTBEAT_S", "encode_notice", "stream"]

log = structlog.get_logger("ingest.web.live")
HEARTBEAT_S = 15.0


def encode_notice(notice: Notice) -> bytes:
    """One SSE frame: ``event: notice`` with ``{"kind", "device_id"}`` as JSON data."""
    data = json.dumps({"kind": notice.kind, "device_id": notice.device_id},
                      separators=(",", ":"))
    return f"event: notice\ndata: {data}\n\n".encode()


async def stream(request: web.Request) -> web.StreamResponse:
    bus = request.app.get(BUS_KEY)
    if bus is None:
        raise web.HTTPServiceUnavailable(text="live updates are not available\n")
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    async with bus.subscribe() as queue:
        # Tells the page it is connected; sent after subscribing so nothing is missed.
        await resp.write(b"retry: 2000\nevent: hello\ndata: {}\n\n")
        try:
            while True:
                try:
                    notice = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                await resp.write(encode_notice(notice))
        except ConnectionResetError:
            log.debug("live_closed", peer=request.remote)
    return resp
