"""Free loopback ports."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def raw_http(host: str, port: int, head: bytes) -> tuple[int, bytes]:
    """Send ``head`` (a request without a body, its lines as bytes that an HTTP client library
    would refuse to send, e.g. header values that are not UTF-8) with ``Connection: close``;
    the status code and the raw answer."""
    import asyncio

    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head.rstrip(b"\r\n") + b"\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(20):
            answer = await reader.read()
    finally:
        writer.close()
    return int(answer.split(b" ", 2)[1]), answer
