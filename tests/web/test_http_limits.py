"""Connection bounds of the HTTP servers (``edgeorder.httpserver``) on a real aiohttp server
and real sockets: silent and slow clients are closed, idle connections make room for new
ones, and when every connection is busy a new one gets a 503 at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from edgeorder.httpserver import GuardedSite, ServerLimits, make_runner
from tests.support.net import free_port

# The waits below are liveness bounds (a closed socket reads EOF well before), never asserts.
EOF_WITHIN_S = 20.0


@dataclass
class Served:
    url: str
    site: GuardedSite
    release: asyncio.Event
    four_inside: asyncio.Event
    four_reading: asyncio.Event  # four requests of /echo wait for their bodies


@pytest.fixture
async def served(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    limits: ServerLimits = getattr(request, "param", ServerLimits(4, 0.3, 0.3, 0.3))
    release, four_inside, inside = asyncio.Event(), asyncio.Event(), [0]
    four_reading, reading = asyncio.Event(), [0]

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def echo(request: web.Request) -> web.Response:
        reading[0] += 1
        if reading[0] == 4:
            four_reading.set()
        return web.Response(text=f"{len(await request.read())} bytes")

    async def slow(request: web.Request) -> web.Response:
        inside[0] += 1
        if inside[0] == 4:
            four_inside.set()
        await release.wait()
        return web.Response(text="done")

    app = web.Application(client_max_size=1000)
    app.router.add_get("/", hello)
    app.router.add_post("/echo", echo)
    app.router.add_get("/slow", slow)
    runner = make_runner(app, limits)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", free_port(), limits=limits)
    await site.start()
    try:
        yield Served(f"http://127.0.0.1:{site.port}", site, release, four_inside, four_reading)
    finally:
        release.set()
        await runner.cleanup()


async def _connect(served: Served) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", served.site.port)


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(EOF_WITHIN_S):
        return await reader.read()  # everything until EOF


async def test_a_silent_connection_is_closed(served: Served) -> None:
    reader, writer = await _connect(served)
    assert await _closed_by_server(reader) == b""
    writer.close()
    assert served.site.guard.dropped["header_timeout"] == 1


async def test_a_request_head_sent_too_slowly_is_closed(served: Served) -> None:
    reader, writer = await _connect(served)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # ... and the rest never comes
    assert await _closed_by_server(reader) == b""
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed(served: Served) -> None:
    reader, writer = await _connect(served)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await _closed_by_server(reader)  # answered, then closed once idle
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"hello")
    writer.close()


async def test_a_body_sent_too_slowly_is_closed(served: Served) -> None:
    """The head promises 100 bytes, 10 come: the connection is closed, not held for ever."""
    reader, writer = await _connect(served)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    assert await _closed_by_server(reader) == b""
    writer.close()
    assert served.site.guard.dropped["body_timeout"] == 1


async def test_a_body_too_large_is_refused_before_it_is_sent(served: Served) -> None:
    reader, writer = await _connect(served)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
    answer = await _closed_by_server(reader)  # no byte of the body was needed for it
    writer.close()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"the body is 5000 bytes, more than 1000" in answer
    async with (
        aiohttp.ClientSession() as http,
        http.post(served.url + "/echo", data=b"x" * 999) as r,
    ):
        assert (r.status, await r.text()) == (200, "999 bytes")  # a whole body in time is served
    assert served.site.guard.dropped["body_timeout"] == 0


PATIENT = ServerLimits(4, keepalive_s=60, header_timeout_s=60, body_timeout_s=60)


@pytest.mark.parametrize("served", [PATIENT], indirect=True)
async def test_idle_connections_make_room_for_a_new_request(served: Served) -> None:
    idle = [await _connect(served) for _ in range(4)]  # the cap
    async with aiohttp.ClientSession() as http, http.get(served.url + "/") as resp:
        assert (resp.status, await resp.text()) == (200, "hello")
    assert served.site.guard.dropped == {
        "evicted": 1,
        "refused": 0,
        "header_timeout": 0,
        "body_timeout": 0,
    }
    closed = [asyncio.create_task(_closed_by_server(r)) for r, _ in idle]
    done, _ = await asyncio.wait(closed, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1  # the one idle the longest made room; the others are still open
    assert done == {closed[0]}
    for task in closed:
        task.cancel()
    for _, writer in idle:
        writer.close()


@pytest.mark.parametrize("served", [PATIENT], indirect=True)
async def test_connections_waiting_for_a_body_make_room_for_a_whole_request(
    served: Served,
) -> None:
    """Every connection holds a head whose body does not come (the timer is 60 s here): a new
    client is still served, in place of the one that has waited the longest."""
    slow = [await _connect(served) for _ in range(4)]
    for _, writer in slow:
        writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n01")
        await writer.drain()
    await served.four_reading.wait()  # each head reached the application
    async with aiohttp.ClientSession() as http, http.get(served.url + "/") as resp:
        assert (resp.status, await resp.text()) == (200, "hello")
    assert served.site.guard.dropped["evicted"] == 1
    assert await _closed_by_server(slow[0][0]) == b""  # the first to wait made room
    for _, writer in slow:
        writer.close()


@pytest.mark.parametrize("served", [PATIENT], indirect=True)
async def test_when_every_connection_is_busy_a_new_one_gets_503(served: Served) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        busy = [asyncio.create_task(http.get(served.url + "/slow")) for _ in range(4)]
        await served.four_inside.wait()  # four connections, each busy with a request
        reader, writer = await _connect(served)
        refusal = await _closed_by_server(reader)
        writer.close()
        assert refusal.startswith(b"HTTP/1.1 503 Service Unavailable")
        assert b"too many connections" in refusal
        assert served.site.guard.dropped["refused"] == 1
        served.release.set()
        for task in busy:
            async with await task as resp:
                assert (resp.status, await resp.text()) == (200, "done")


def test_connections_and_backlog_keep_half_the_descriptors_for_everything_else() -> None:
    limits = ServerLimits(max_connections=1000)
    assert limits.plan(open_files=1024) == (384, 128)  # systemd's default LimitNOFILE
    assert limits.plan(open_files=256) == (96, 32)
    assert limits.plan(open_files=65536) == (1000, 128)
    assert ServerLimits(max_connections=4).plan(open_files=1024) == (4, 128)
    for open_files in (128, 256, 1024, 4096, 65536):
        cap, backlog = limits.plan(open_files=open_files)
        assert cap + backlog <= open_files // 2


async def test_a_body_cut_off_is_one_info_line_not_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The connection of a body that never finished is closed by the guard; the handler
    reading it then fails, and aiohttp would log that at ERROR with a traceback, once per
    attacker's connection. Through ``ProtocolErrorLogger`` it is no error at all."""
    import logging

    from edgeorder.logs import ProtocolErrorLogger

    adapter = ProtocolErrorLogger(logging.getLogger("test.aiohttp.server"))
    done = asyncio.Event()

    async def echo(request: web.Request) -> web.Response:
        try:
            return web.Response(text=f"{len(await request.read())} bytes")
        finally:
            done.set()

    app = web.Application(handler_args={"logger": adapter})
    app.router.add_post("/echo", echo)
    limits = ServerLimits(4, 60, 60, 0.2)
    runner = make_runner(app, limits)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", free_port(), limits=limits)
    await site.start()
    try:
        with caplog.at_level(logging.INFO, logger="test.aiohttp.server"):
            reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
            writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n01")
            assert await _closed_by_server(reader) == b""
            writer.close()
            async with asyncio.timeout(EOF_WITHIN_S):
                await done.wait()
            await asyncio.sleep(0)  # aiohttp logs as the handler's task ends
        assert site.guard.dropped["body_timeout"] == 1
        errors = [r for r in caplog.records if r.name == "test.aiohttp.server"]
        assert errors == []
    finally:
        await runner.cleanup()
