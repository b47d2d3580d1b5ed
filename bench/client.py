"""A lean MQTT 3.1.1 client on asyncio for the bench's own connections (QoS 1 only).

It queues outgoing packets and writes them with one ``transport.write`` per ``flush`` (a burst
of publishes is one system call, not one each), counts PUBACKs instead of tracking each
publish, and answers incoming QoS 1 messages with PUBACKs written together after each read.
Everything runs on the loop's thread; callbacks are plain functions called there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from edgeorder.bench import wire

__all__ = ["BenchClient", "OnAcks", "OnMessage", "open_client"]

OnAcks = Callable[[int], None]
OnMessage = Callable[[str, bytes], None]
_KEEPALIVE_S = 60


class BenchClient(asyncio.Protocol):
    """One connection. ``queue_publish`` then ``flush``; ``on_acks(n)`` after each read that
    held n PUBACKs; ``on_message(topic, payload)`` for each incoming PUBLISH."""

    def __init__(self, client_id: str, on_acks: OnAcks, on_message: OnMessage | None) -> None:
        self.client_id = client_id
        self._on_acks, self._on_message = on_acks, on_message
        self._reader = wire.PacketReader()
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._mid = 0
        self._ping: asyncio.TimerHandle | None = None
        loop = asyncio.get_running_loop()
        self.connected: asyncio.Future[None] = loop.create_future()
        self._subacks: dict[int, asyncio.Future[int]] = {}
        self.lost: BaseException | None = None

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(wire.connect(self.client_id, keepalive=_KEEPALIVE_S))
        self._schedule_ping()

    def data_received(self, data: bytes) -> None:
        try:
            acks, packets = self._reader.feed(data)
        except wire.ProtocolError as exc:
            self._abort(exc)
            return
        if acks:
            self._on_acks(acks)
        for packet in packets:
            self._handle(packet)
        self.flush()  # the PUBACKs of what was just read, in one write

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError(f"{self.client_id}: connection closed")
        if self._ping is not None:
            self._ping.cancel()
        futures: list[asyncio.Future[Any]] = [self.connected, *self._subacks.values()]
        for future in futures:
            if not future.done():
                future.set_exception(self.lost)

    # --- packets ------------------------------------------------------------------------------

    def _handle(self, packet: wire.Packet) -> None:
        if packet.kind == wire.PUBLISH:
            topic, payload, mid, _ = wire.parse_publish(packet)
            if mid is not None:
                self._out.append(wire.puback(mid))
            if self._on_message is not None:
                self._on_message(topic, payload)
        elif packet.kind == wire.CONNACK:
            code = packet.body[1] if len(packet.body) == 2 else -1
            if code == 0:
                self.connected.set_result(None)
            else:
                self._abort(ConnectionError(f"{self.client_id}: CONNACK return code {code}"))
        elif packet.kind == wire.SUBACK:
            future = self._subacks.pop(int.from_bytes(packet.body[:2], "big"), None)
            if future is not None and not future.done():
                future.set_result(packet.body[2] if len(packet.body) > 2 else 0x80)
        # PINGRESP and anything else: nothing to do

    def _abort(self, exc: BaseException) -> None:
        if not self.connected.done():
            self.connected.set_exception(exc)
        self.lost = exc
        if self._transport is not None:
            self._transport.abort()

    def _schedule_ping(self) -> None:
        loop = asyncio.get_running_loop()
        self._ping = loop.call_later(_KEEPALIVE_S / 2, self._send_ping)

    def _send_ping(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(wire.PINGREQ_PACKET)
            self._schedule_ping()

    # --- what the generator and the watcher call ----------------------------------------------

    def next_mid(self) -> int:
        """Packet ids 1..65535 in turn: fewer than 65,535 are ever in flight (the window)."""
        self._mid = self._mid % 0xFFFF + 1
        return self._mid

    def queue_publish(self, topic: bytes, payload: bytes) -> None:
        """A QoS 1 publish, written at the next ``flush``."""
        if self.lost is not None:
            raise ConnectionError(f"{self.client_id}: connection lost: {self.lost}")
        self._out.append(wire.publish(topic, payload, self.next_mid()))

    def flush(self) -> None:
        if self._out and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(self._out))
        self._out.clear()

    async def subscribe(self, topic_filter: str, qos: int = 1) -> int:
        """SUBSCRIBE and wait for the SUBACK; its granted QoS (0x80: refused)."""
        assert self._transport is not None
        mid = self.next_mid()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._subacks[mid] = future
        self._transport.write(wire.subscribe(mid, topic_filter, qos))
        return await future

    def close(self) -> None:
        if self._ping is not None:
            self._ping.cancel()
        if self._transport is not None and not self._transport.is_closing():
            self.flush()
            self._transport.write(wire.DISCONNECT_PACKET)
            self._transport.close()


async def open_client(
    host: str,
    port: int,
    client_id: str,
    *,
    on_acks: OnAcks = lambda n: None,
    on_message: OnMessage | None = None,
    within_s: float = 10.0,
) -> BenchClient:
    """A connected client (CONNACK accepted); raises ConnectionError or TimeoutError."""
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: BenchClient(client_id, on_acks, on_message), host, port),
        within_s,
    )
    try:
        await asyncio.wait_for(asyncio.shield(client.connected), within_s)
    except BaseException:
        client.close()
        raise
    return client
