"""The wire contract's plain values: enums, timestamps, ULIDs. Standard library only.

``protocol.models`` (pydantic) builds its payload models on these, and the device agent uses
them without pydantic (``protocol.device``): one definition of each, on both sides.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from enum import StrEnum

__all__ = [
    "INT64_MAX",
    "ULID_PATTERN",
    "Click",
    "EventKind",
    "State",
    "format_ts",
    "is_ulid",
    "new_ulid",
    "ulid_time",
    "utcnow",
]

ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
_ULID_RE = re.compile(ULID_PATTERN)

INT64_MAX = 2**63 - 1
"""Largest integer a payload may carry: SQLite (and most databases) store 64-bit integers."""


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


_last_formatted: tuple[datetime | None, str] = (None, "")


def format_ts(ts: datetime) -> str:
    """``2026-11-22T13:00:00.123Z``: UTC, millisecond precision, ``Z`` suffix."""
    global _last_formatted
    last = _last_formatted  # one read: another thread may replace it meanwhile
    if last[0] is ts:  # the same object again (ingest writes one "now" into several rows)
        return last[1]
    # isoformat, not strftime: half the cost, and ingest formats a dozen timestamps per event.
    text = ts.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    _last_formatted = (ts, text)
    return text


def is_ulid(value: str) -> bool:
    """True if ``value`` (any case) is a 26-character ULID of Crockford base32."""
    # ASCII first: str.upper() turns "ß" into "SS" and the long s (U+017F) into "S", which
    # would pass a non-ULID off as another, valid id. fullmatch: "$" allows a final "\n".
    return value.isascii() and _ULID_RE.fullmatch(value.upper()) is not None


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid(at: datetime) -> str:
    """A fresh ULID for time ``at``: 48 bits of Unix milliseconds, 80 random bits, in
    Crockford base32 (what ``python-ulid``'s ``ULID.from_datetime`` makes; the agent makes its
    own so that a Pi needs no package for it)."""
    value = (int(at.timestamp() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def ulid_time(value: str) -> float:
    """The Unix time (seconds, millisecond precision) a ULID was made at; ValueError if
    ``value`` is no ULID."""
    if not is_ulid(value):
        raise ValueError(f"not a ULID: {value!r}")
    number = 0
    for char in value[:10].upper():
        number = number * 32 + _CROCKFORD.index(char)
    return number / 1000


class EventKind(StrEnum):
    PRESS = "press"
    SENSOR = "sensor"


class Click(StrEnum):
    SINGLE = "single"
    DOUBLE = "double"
    LONG = "long"


class State(StrEnum):
    """Every state a device can be told about an event (ARCHITECTURE.md, Status)."""

    ACCEPTED = "accepted"
    QUEUED = "queued"
    ORDERED = "ordered"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    THROTTLED = "throttled"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        """No later status is expected for the event."""
        return self in _FINAL_STATES

    @property
    def rank(self) -> int:
        """The order of an event's states: ingest only ever moves an event to a higher rank
        (accepted < queued < ordered < paid < shipped < delivered < every other final state),
        so a status whose rank is not above the last one seen for its event is stale or a
        repeat: a broker restarted from an older snapshot re-delivers old queued statuses."""
        return _RANKS[self]


_FINAL_STATES = frozenset(
    {State.DELIVERED, State.CANCELLED, State.THROTTLED, State.REJECTED, State.FAILED}
)
_RANKS = {
    State.ACCEPTED: 0,
    State.QUEUED: 1,
    State.ORDERED: 2,
    State.PAID: 3,
    State.SHIPPED: 4,
    State.DELIVERED: 5,
    State.CANCELLED: 6,
    State.FAILED: 6,
    State.THROTTLED: 6,
    State.REJECTED: 6,
}
