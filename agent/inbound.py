"""Inbound messages, as pure functions: which payload a message on the device's own topics
is, and what a desired config changes in the click timings.

The worker dispatches on the returned model; everything malformed (another device's topic, an
unexpected channel, a bad payload) is a ``ProtocolError`` the worker logs and drops.
"""

from __future__ import annotations

from edgeorder.agent.classifier import ClickTimings
from edgeorder.protocol.device import DesiredConfig, DeviceStatus, decode_config, decode_status
from edgeorder.protocol.errors import TopicError
from edgeorder.protocol.topics import Channel, parse_device_topic

__all__ = ["Message", "parse_inbound", "timings_for"]

Message = DeviceStatus | DesiredConfig


def parse_inbound(topic: str, payload: bytes, device_id: str) -> Message:
    """The ``DeviceStatus`` or ``DesiredConfig`` of a message on ``device_id``'s own topics.

    Raises ``ProtocolError`` (``TopicError``/``PayloadError``) for anything else.
    """
    owner, channel = parse_device_topic(topic)
    if owner != device_id:
        raise TopicError(f"topic {topic!r} belongs to another device")
    if channel is Channel.STATUS:
        return decode_status(payload)
    if channel is Channel.CONFIG:
        return decode_config(payload)
    raise TopicError(f"unexpected channel {channel.value}")


def timings_for(current: ClickTimings, desired: DesiredConfig) -> ClickTimings:
    """``current`` with the windows ``desired`` sets (the debounce stays the device's own)."""
    return ClickTimings(
        current.bounce_s,
        desired.double_window_ms / 1000 if desired.double_window_ms else current.double_window_s,
        desired.long_press_ms / 1000 if desired.long_press_ms else current.long_press_s,
    )
