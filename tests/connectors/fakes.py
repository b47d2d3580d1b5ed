"""Real aiohttp servers speaking each platform's dialect, with recorded requests and faults.

Every fake records what arrived (method, path, query, headers, raw and parsed body), and can be
told to:

- answer the next calls with a forced status/body (``forced``);
- stall a call before handling it until the test ends (``stall_next``: the client's own
  timeout fires; no sleeping anywhere);
- **lose a reply**: handle a matching call completely (the platform commits) and then drop
  the connection without answering (``lose("POST", "/orders", mode="drop")``) or hold the
  answer until the client gave up (``mode="stall"``). This is the fault the exactly-once
  chain exists for: the platform did it, the caller does not know.

The dialect handlers read the raw body themselves: each fake answers a bad JSON body, a wrong
Content-Type or a missing header exactly as its seed documents.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from aiohttp.test_utils import TestServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BODY: web.RequestKey[Any] = web.RequestKey("body")
"""The parsed JSON body (or raw text; None when empty) of the request."""
RAW: web.RequestKey[bytes] = web.RequestKey("raw")
"""The request body as received."""

LoseMode = Literal["drop", "stall"]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class _Loss:
    method: str
    path: re.Pattern[str]
    mode: LoseMode
    times: int


@dataclass
class FakePlatform:
    """Shared recording / fault-injection part of every fake platform."""

    seen: list[Seen] = field(default_factory=list)
    forced: list[tuple[int, Any]] = field(default_factory=list)
    stall_next: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None
    losses: list[_Loss] = field(default_factory=list)
    lost: int = 0
    """Replies lost so far (the call was handled, its answer never reached the client)."""
    reply_lost: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a reply is lost (the work is done; the answer is dropped or held)."""
    answered: asyncio.Condition = field(default_factory=asyncio.Condition)
    """Notified after every call the fake answered."""

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def calls(self, method: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method]

    async def next_call(self) -> None:
        """Return once the fake has answered one more call (no sleeping: it signals)."""
        async with self.answered:
            await self.answered.wait()

    async def _signal(self) -> None:
        async with self.answered:
            self.answered.notify_all()

    def lose(self, method: str, path: str, *, mode: LoseMode = "drop", times: int = 1) -> None:
        """Lose the replies of the next ``times`` successful calls of ``method`` on a path
        matching regex ``path`` (search): the work is done, the answer never arrives."""
        self.losses.append(_Loss(method, re.compile(path), mode, times))

    def _loss_for(self, request: web.Request, response: web.StreamResponse) -> _Loss | None:
        """The loss to apply to this answer: only a call that did its work (2xx) loses it."""
        if not 200 <= response.status < 300:
            return None
        for loss in self.losses:
            if loss.times > 0 and loss.method == request.method and loss.path.search(request.path):
                loss.times -= 1
                return loss
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = raw.decode("utf-8", errors="replace")
        self.seen.append(
            Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        request[BODY] = body
        request[RAW] = raw
        if self.stall_next:
            self.stall_next = False
            await self.release.wait()
        if self.forced:
            status, payload = self.forced.pop(0)
            await self._signal()
            if isinstance(payload, str):
                return web.Response(status=status, text=payload)
            return web.json_response(payload, status=status)
        response = await handler(request)
        await self._signal()
        loss = self._loss_for(request, response)
        if loss is None:
            return response
        self.lost += 1
        self.reply_lost.set()
        if loss.mode == "stall":
            await self.release.wait()  # the client times out first
        assert request.transport is not None
        request.transport.abort()  # the work is done; its answer never leaves
        raise asyncio.CancelledError

    async def start(self, routes: list[web.RouteDef]) -> None:
        app = web.Application(middlewares=[self.middleware])
        app.add_routes(routes)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            await self.server.close()


def form_error(status: int) -> web.Response:
    """An error answer without a body, for seeds that document only the status."""
    return web.Response(status=status)
