"""Real aiohttp servers speaking each platform's dialect, with recorded requests and faults.

Every fake records what arrived (method, path, query, headers, JSON body), can be told to
answer the next calls with a forced status/body, or to stall a call until the test ends (the
client's own timeout then fires: no sleeping anywhere).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BODY: web.RequestKey[Any] = web.RequestKey("body")
"""The parsed JSON body (or raw text) of the request, for the dialect handlers."""


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakePlatform:
    """Shared recording / fault-injection part of every fake platform."""

    seen: list[Seen] = field(default_factory=list)
    forced: list[tuple[int, Any]] = field(default_factory=list)
    stall_next: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def calls(self, method: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.text()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw
        self.seen.append(
            Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        request[BODY] = body
        if self.stall_next:
            self.stall_next = False
            await self.release.wait()
        if self.forced:
            status, payload = self.forced.pop(0)
            if isinstance(payload, str):
                return web.Response(status=status, text=payload)
            return web.json_response(payload, status=status)
        return await handler(request)

    async def start(self, routes: list[web.RouteDef]) -> None:
        app = web.Application(middlewares=[self.middleware])
        app.add_routes(routes)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            await self.server.close()
