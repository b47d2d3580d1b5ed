"""The few MQTT 3.1.1 packets the bench's own clients use, as bytes. Pure.

The load generator publishes at QoS 1 and the status watcher subscribes at QoS 1; neither needs
more of the protocol than CONNECT/CONNACK, PUBLISH/PUBACK, SUBSCRIBE/SUBACK, PINGREQ and
DISCONNECT. paho did the same work with a ``MQTTMessageInfo`` and a ``threading.Condition``
per publish and a network thread that takes the GIL from the process under test; these
helpers build each packet with a few byte concatenations (MQTT 3.1.1, OASIS standard,
sections 2-3).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CONNACK",
    "DISCONNECT_PACKET",
    "PINGREQ_PACKET",
    "PINGRESP",
    "PUBLISH",
    "SUBACK",
    "Packet",
    "PacketReader",
    "ProtocolError",
    "connect",
    "parse_publish",
    "puback",
    "publish",
    "remaining_length",
    "subscribe",
]

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
_MAX_REMAINING = 268_435_455  # four bytes of remaining length


class ProtocolError(ValueError):
    """The broker sent bytes that are not MQTT 3.1.1 as this client speaks it."""


def remaining_length(n: int) -> bytes:
    """The variable-length integer of a fixed header (1-4 bytes)."""
    if not 0 <= n <= _MAX_REMAINING:
        raise ValueError(f"remaining length {n} out of range")
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def connect(client_id: str, *, keepalive: int = 60, clean_session: bool = True) -> bytes:
    """CONNECT, protocol level 4 (3.1.1), no will, no credentials."""
    flags = 0x02 if clean_session else 0x00
    body = _string("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big") + _string(client_id)
    return bytes([CONNECT << 4]) + remaining_length(len(body)) + body


def publish(topic: bytes, payload: bytes, mid: int, *, retain: bool = False) -> bytes:
    """A QoS 1 PUBLISH of ``payload`` on ``topic`` (already UTF-8) with packet id ``mid``."""
    head = 0x32 | (0x01 if retain else 0x00)
    size = 2 + len(topic) + 2 + len(payload)
    return b"".join(
        (
            bytes([head]),
            remaining_length(size),
            len(topic).to_bytes(2, "big"),
            topic,
            mid.to_bytes(2, "big"),
            payload,
        )
    )


def puback(mid: int) -> bytes:
    return bytes([PUBACK << 4, 2]) + mid.to_bytes(2, "big")


def subscribe(mid: int, topic_filter: str, qos: int = 1) -> bytes:
    body = mid.to_bytes(2, "big") + _string(topic_filter) + bytes([qos])
    return bytes([SUBSCRIBE << 4 | 0x02]) + remaining_length(len(body)) + body


PINGREQ_PACKET = bytes([PINGREQ << 4, 0])
DISCONNECT_PACKET = bytes([DISCONNECT << 4, 0])


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet from the broker: its type, the fixed header's flags and its body."""

    kind: int
    flags: int
    body: bytes


class PacketReader:
    """Splits a byte stream into packets. ``feed`` returns how many PUBACKs it held (the
    publisher only counts them: the broker acknowledges each QoS 1 publish once) and every
    other complete packet so far."""

    def __init__(self, max_packet: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._max = max_packet

    def feed(self, data: bytes) -> tuple[int, list[Packet]]:
        buf = self._buf
        buf += data
        pos, end, acks = 0, len(buf), 0
        packets: list[Packet] = []
        while end - pos >= 2:
            first = buf[pos]
            if first == 0x40 and buf[pos + 1] == 2:  # PUBACK: the bulk of what arrives
                if end - pos < 4:
                    break
                acks += 1
                pos += 4
                continue
            size, shift, i = 0, 0, pos + 1
            while True:  # the remaining length, 1-4 bytes
                if i >= end:
                    del buf[:pos]
                    return acks, packets
                byte = buf[i]
                size |= (byte & 0x7F) << shift
                i += 1
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise ProtocolError("remaining length longer than 4 bytes")
            if size > self._max:
                raise ProtocolError(f"packet of {size} bytes, limit {self._max}")
            if i + size > end:
                break
            packets.append(Packet(first >> 4, first & 0x0F, bytes(buf[i : i + size])))
            pos = i + size
        del buf[:pos]
        return acks, packets


def parse_publish(packet: Packet) -> tuple[str, bytes, int | None, bool]:
    """``(topic, payload, mid or None for QoS 0, retain)`` of an incoming PUBLISH."""
    body = packet.body
    qos = (packet.flags >> 1) & 0x03
    if len(body) < 2:
        raise ProtocolError("PUBLISH without a topic")
    n = int.from_bytes(body[:2], "big")
    topic = body[2 : 2 + n].decode("utf-8", errors="replace")
    pos = 2 + n
    mid = None
    if qos:
        mid = int.from_bytes(body[pos : pos + 2], "big")
        pos += 2
    return topic, body[pos:], mid, bool(packet.flags & 0x01)
