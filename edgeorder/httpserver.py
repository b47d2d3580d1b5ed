"""Serve an aiohttp application with bounded connections, for ingest and the order core.

Without bounds, 1,100 idle sockets took every file descriptor of a process run by systemd
(``LimitNOFILE`` 1,024): ``/healthz``, the API and the MQTT reconnect all failed, and asyncio
logged ~1 M "Too many open files" lines in 40 s. Here:

- an idle keep-alive connection is closed after ``keepalive_s`` (aiohttp's own timer, set on
  the runner by ``make_runner``);
- a new connection that has not sent a whole request head within ``header_timeout_s`` is
  closed (slow or silent clients);
- a request whose body has not all arrived within ``body_timeout_s`` of its head has its
  connection closed (a head that promises 100 kB and sends 10 bytes held a connection for
  ever), and a ``Content-Length`` over the application's ``client_max_size`` is answered
  ``413`` at once, without waiting for the body;
- at most ``max_connections`` are open, and with the listen backlog never more than half the
  process's open-file limit: past that, the connection idle the longest is closed to make
  room (else the one waiting the longest for the rest of a request body), and when every
  connection is busy with a whole request the new one is answered ``503`` and closed at once.

So the process keeps descriptors for its database, its broker link and its own health check,
whatever clients do. ``GuardedSite`` replaces ``web.TCPSite``; the runner cleans it up as usual.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

__all__ = ["ConnectionGuard", "GuardedSite", "ServerLimits", "make_runner", "open_file_limit"]

log = structlog.get_logger("edgeorder.http")

_REFUSAL_BODY = b"503: too many connections, try again\n"
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: "
    + str(len(_REFUSAL_BODY)).encode()
    + b"\r\n\r\n"
    + _REFUSAL_BODY
)


@dataclass(frozen=True)
class ServerLimits:
    max_connections: int = 1000
    keepalive_s: float = 15.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0

    def plan(self, open_files: int | None = None) -> tuple[int, int]:
        """``(connections at most, listen backlog)`` for a process that may open
        ``open_files`` descriptors (its soft ``RLIMIT_NOFILE`` by default).

        asyncio accepts up to ``backlog`` connections per loop iteration, and a closed
        connection frees its descriptor only at the next one: the server may hold ``cap +
        backlog`` descriptors at a time. Together they take at most half the limit; the other
        half stays for the database, the broker link, the platform's connections and logs.
        """
        limit = open_file_limit() if open_files is None else open_files
        backlog = min(128, max(32, limit // 8))
        return max(1, min(self.max_connections, limit // 2 - backlog)), backlog


def open_file_limit() -> int:
    """The soft limit on open file descriptors of this process."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def make_runner(app: web.Application, limits: ServerLimits, **kwargs: Any) -> web.AppRunner:
    """An ``AppRunner`` whose idle keep-alive connections close after ``limits.keepalive_s``."""
    return web.AppRunner(app, keepalive_timeout=limits.keepalive_s, **kwargs)


Handler = Callable[[BaseRequest], Awaitable[StreamResponse]]


class _Conn:
    """What the guard knows of one open connection."""

    __slots__ = ("busy", "closing", "handler", "last_active", "receiving", "served", "timer")

    def __init__(self, handler: asyncio.Protocol, now: float) -> None:
        self.handler = handler
        self.busy = 0  # requests being handled right now
        self.served = 0  # requests that reached the application
        self.last_active = now
        self.closing = False  # closed by the guard; its descriptor goes at the next iteration
        self.timer: asyncio.TimerHandle | None = None
        # (since, request) while a request's body is still arriving: such a connection makes
        # room for a new one when none is idle (a slow body is the likelier attacker)
        self.receiving: tuple[float, BaseRequest] | None = None


class ConnectionGuard:
    """The protocol factory between the listening socket and aiohttp's ``web.Server``."""

    def __init__(
        self,
        server: web.Server,
        limits: ServerLimits,
        *,
        on_drop: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._server = server
        self.limits = limits
        self.cap, self.backlog = limits.plan()
        self._on_drop = on_drop
        self._clock = clock
        self._conns: dict[asyncio.BaseTransport, _Conn] = {}
        self.dropped: dict[str, int] = {
            "evicted": 0,
            "refused": 0,
            "header_timeout": 0,
            "body_timeout": 0,
        }
        inner: Handler = server.request_handler
        # Every connection's handler reads this attribute when it is made: track requests.
        server.request_handler = self._tracking(inner)

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    def __call__(self) -> asyncio.Protocol:
        if len(self._conns) >= self.cap and not self._evict_idlest():
            self._drop("refused")
            return _Refusal()
        return _Tracked(self, self._server())

    # --- called by _Tracked ------------------------------------------------------------------

    def opened(self, transport: asyncio.BaseTransport, handler: asyncio.Protocol) -> None:
        conn = _Conn(handler, self._clock())
        loop = asyncio.get_running_loop()
        conn.timer = loop.call_later(self.limits.header_timeout_s, self._header_due, transport)
        self._conns[transport] = conn

    def closed(self, transport: asyncio.BaseTransport) -> None:
        conn = self._conns.pop(transport, None)
        if conn is not None and conn.timer is not None:
            conn.timer.cancel()

    # --- internals -----------------------------------------------------------------------------

    def _tracking(self, inner: Handler) -> Handler:
        async def handle(request: BaseRequest) -> StreamResponse:
            too_large = _too_large(request)
            if too_large is not None:
                return too_large
            conn = self._conns.get(request.transport) if request.transport else None
            if conn is None:
                return await inner(request)
            conn.busy += 1
            conn.served += 1
            timer = None
            if request.body_exists and not request.content.is_eof():
                loop = asyncio.get_running_loop()
                timer = loop.call_later(self.limits.body_timeout_s, self._body_due, conn, request)
                conn.receiving = (self._clock(), request)
            try:
                return await inner(request)
            finally:
                if timer is not None:
                    timer.cancel()
                conn.receiving = None
                conn.busy -= 1
                conn.last_active = self._clock()

        return handle

    def _body_due(self, conn: _Conn, request: BaseRequest) -> None:
        if not request.content.is_eof() and not conn.closing:
            self._drop("body_timeout")
            self._close(conn)

    def _header_due(self, transport: asyncio.BaseTransport) -> None:
        conn = self._conns.get(transport)
        if conn is not None and conn.served == 0 and not conn.closing:
            self._drop("header_timeout")
            self._close(conn)

    def _evict_idlest(self) -> bool:
        """Close the connection idle the longest, else the one waiting the longest for the
        rest of a request body; False if every connection is busy with a whole request."""
        idle = [c for c in self._conns.values() if c.busy == 0 and not c.closing]
        if idle:
            self._drop("evicted")
            self._close(min(idle, key=lambda c: c.last_active))
            return True
        waiting = [
            c
            for c in self._conns.values()
            if c.receiving is not None and not c.closing and not c.receiving[1].content.is_eof()
        ]
        if not waiting:
            return False
        self._drop("evicted")
        self._close(min(waiting, key=lambda c: c.receiving[0] if c.receiving else 0.0))
        return True

    @staticmethod
    def _close(conn: _Conn) -> None:
        conn.closing = True
        force_close = getattr(conn.handler, "force_close", None)
        if force_close is not None:
            force_close()

    def _drop(self, reason: str) -> None:
        self.dropped[reason] += 1
        log.warning("http.connection_dropped", reason=reason, open=len(self._conns), cap=self.cap)
        if self._on_drop is not None:
            self._on_drop(reason)


def _too_large(request: BaseRequest) -> StreamResponse | None:
    """413 for a ``Content-Length`` the application would refuse once read (its
    ``client_max_size``), before a byte of the body is waited for."""
    limit, length = request.client_max_size, request.content_length
    if not limit or length is None or length <= limit:
        return None
    response = web.Response(
        status=413,
        text=f"413: the body is {length} bytes, more than {limit}\n",
        headers={"Connection": "close"},
    )
    response.force_close()
    return response


class _Tracked(asyncio.Protocol):
    """aiohttp's handler for one connection, with the guard told when it opens and closes."""

    def __init__(self, guard: ConnectionGuard, handler: asyncio.Protocol) -> None:
        self._guard = guard
        self._handler = handler
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._guard.opened(transport, self._handler)
        self._handler.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard.closed(self._transport)
        self._handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self._handler.eof_received()

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()


class _Refusal(asyncio.Protocol):
    """Answers ``503`` at once and closes: the descriptor is free again right away."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_REFUSAL)
        transport.close()


class GuardedSite(web.BaseSite):
    """``web.TCPSite`` with a ``ConnectionGuard`` in front of the runner's server."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        limits: ServerLimits,
        on_drop: Callable[[str], None] | None = None,
    ) -> None:
        assert runner.server is not None, "call runner.setup() first"
        guard = ConnectionGuard(runner.server, limits, on_drop=on_drop)
        super().__init__(runner, backlog=guard.backlog)
        self._host, self._port = host, port
        self.guard = guard

    @property
    def port(self) -> int:
        """The bound port once started (useful with port 0)."""
        server = self._server
        if isinstance(server, asyncio.Server) and server.sockets:
            return int(server.sockets[0].getsockname()[1])
        return self._port

    @property
    def name(self) -> str:
        return f"http://{self._host or '0.0.0.0'}:{self.port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.guard, self._host, self._port, backlog=self._backlog
        )
        log.info(
            "http.listening",
            url=self.name,
            max_connections=self.guard.cap,
            backlog=self.guard.backlog,
            keepalive_s=self.guard.limits.keepalive_s,
            header_timeout_s=self.guard.limits.header_timeout_s,
        )
