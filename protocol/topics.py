"""Topic names: ``edgeorder/v1/devices/{device_id}/{channel}``."""

from __future__ import annotations

import re
from enum import StrEnum

from edgeorder.protocol.errors import TopicError
from edgeorder.protocol.version import TOPIC_ROOT

DEVICE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)


class Channel(StrEnum):
    """The per-device topic suffixes of ARCHITECTURE.md."""

    EVENTS = "events"
    STATUS = "status"
    PRESENCE = "presence"
    TELEMETRY = "telemetry"
    CONFIG = "config"
    CONFIG_REPORTED = "config/reported"


DEVICE_WRITES = (Channel.EVENTS, Channel.PRESENCE, Channel.TELEMETRY, Channel.CONFIG_REPORTED)
"""Channels a device publishes on (and the only ones its ACL lets it write)."""

DEVICE_READS = (Channel.STATUS, Channel.CONFIG)
"""Channels a device subscribes to (and the only ones its ACL lets it read)."""


def is_valid_device_id(device_id: str) -> bool:
    """True if ``device_id`` is 1-64 characters of ``[A-Za-z0-9_-]``."""
    return _DEVICE_ID_RE.fullmatch(device_id) is not None  # "$" alone allows a final "\n"


def device_topic(device_id: str, channel: Channel | str) -> str:
    """The topic of ``channel`` for one device; raises TopicError for a bad device id."""
    if not is_valid_device_id(device_id):
        raise TopicError(f"invalid device id {_shown(device_id)}", code="bad_device_id")
    return f"{TOPIC_ROOT}/{device_id}/{Channel(channel).value}"


def subscription(channel: Channel | str, *, shared_group: str | None = None) -> str:
    """The wildcard filter for ``channel`` across all devices, optionally shared."""
    topic = f"{TOPIC_ROOT}/+/{Channel(channel).value}"
    return f"$share/{shared_group}/{topic}" if shared_group else topic


_SHOWN_CHARS = 120


def _shown(text: str) -> str:
    """``text`` for an error message: a topic may be 64 KiB, a reason must not be."""
    if len(text) <= _SHOWN_CHARS:
        return repr(text)
    return f"{text[:_SHOWN_CHARS]!r}... ({len(text)} characters)"


def parse_device_topic(topic: str) -> tuple[str, Channel]:
    """Split a device topic into ``(device_id, channel)``; raises TopicError otherwise."""
    prefix = TOPIC_ROOT + "/"
    if not topic.startswith(prefix):
        raise TopicError(f"topic {_shown(topic)} is outside {TOPIC_ROOT}")
    device_id, _, suffix = topic[len(prefix) :].partition("/")
    if not is_valid_device_id(device_id):
        raise TopicError(f"invalid device id in topic {_shown(topic)}", code="bad_device_id")
    try:
        return device_id, Channel(suffix)
    except ValueError:
        raise TopicError(f"unknown channel {_shown(suffix)} in topic {_shown(topic)}") from None
