"""``GET /live``: Server-Sent Events fed by the ingest ``Bus`` (one event per ``Notice``).

The browser re-reads the page regions it shows when a notice arrives (the database stays the
source of truth), so a notice carries only what changed, never the data to display.
"""

from __future__ import annotations

import asyncio
import json

import structlog
from aiohttp import web

from edgeorder.ingest.bus import Bus, Notice
from edgeorder.ingest.keys import BUS_KEY

__all__ = ["HEARTBEAT_S", "LIVE_STREAMS_KEY", "LiveStreams", "encode_notice", "stream"]

log = structlog.get_logger("edgeorder.ingest.web.live")
HEARTBEAT_S = 15.0


class LiveStreams:
    """The handler tasks of open streams, ended at shutdown so no open tab delays it."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[object]] = set()
        self.closing = False

    async def close_all(self, app: web.Application) -> None:
        """``on_shutdown``: end every open stream (the browser reconnects by itself)."""
        self.closing = True
        for task in list(self.tasks):
            task.cancel()


LIVE_STREAMS_KEY = web.AppKey("web_live_streams", LiveStreams)


def encode_notice(notice: Notice) -> bytes:
    """One SSE frame: ``event: notice`` with ``{"kind", "device_id"}`` as JSON data."""
    data = json.dumps({"kind": notice.kind, "device_id": notice.device_id}, separators=(",", ":"))
    return f"event: notice\ndata: {data}\n\n".encode()


async def stream(request: web.Request) -> web.StreamResponse:
    bus = request.app.get(BUS_KEY)
    if bus is None:
        raise web.HTTPServiceUnavailable(text="live updates are not available\n")
    streams = request.app[LIVE_STREAMS_KEY]
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    task = asyncio.current_task()
    assert task is not None
    streams.tasks.add(task)
    try:
        await _pump(resp, bus)
    except asyncio.CancelledError:
        if not streams.closing:
            raise  # the client went away: aiohttp's own cancellation
        log.debug("live_closed_for_shutdown", peer=request.remote)
    except ConnectionResetError:
        log.debug("live_closed", peer=request.remote)
    finally:
        streams.tasks.discard(task)
    return resp


async def _pump(resp: web.StreamResponse, bus: Bus) -> None:
    async with bus.subscribe() as queue:
        # Tells the page it is connected; sent after subscribing so nothing is missed.
        await resp.write(b"retry: 2000\nevent: hello\ndata: {}\n\n")
        while True:
            try:  # asyncio.timeout: on 3.11 wait_for can swallow the disconnect's cancel
                async with asyncio.timeout(HEARTBEAT_S):
                    notice = await queue.get()
            except TimeoutError:
                await resp.write(b": keep-alive\n\n")
                continue
            await resp.write(encode_notice(notice))
