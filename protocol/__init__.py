"""The wire contract between devices and the backend: topics, payload models, versioning.

Pure: performs no I/O. Shared by ``agent`` and ``ingest``. The payload models and their codec
(``models``, ``codec``) use pydantic and load on first use of one of their names here; the rest
(``values``, ``topics``, ``errors``, ``version`` and the device's own codec ``device``) is
standard library only, so the agent on a Pi never loads pydantic (bench/README.md, "Agent on a
Pi budget").
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgeorder.protocol.errors import PayloadError, ProtocolError, TopicError
from edgeorder.protocol.reasons import NO_ACTION, NOTHING_TO_CANCEL, is_nothing_to_do
from edgeorder.protocol.topics import (
    DEVICE_ID_PATTERN,
    Channel,
    device_topic,
    is_valid_device_id,
    parse_device_topic,
    subscription,
)
from edgeorder.protocol.values import (
    INT64_MAX,
    Click,
    EventKind,
    State,
    format_ts,
    is_ulid,
    new_ulid,
    ulid_time,
    utcnow,
)
from edgeorder.protocol.version import CONTRACT_VERSION, MAX_EVENT_BYTES, TOPIC_ROOT

if TYPE_CHECKING:
    from edgeorder.protocol.codec import decode, decode_event, encode
    from edgeorder.protocol.models import (
        QUANTITY_MAX,
        SENSORS_MAX,
        TELEMETRY_EXTRAS_MAX,
        Action,
        ButtonMapping,
        CancelLastAction,
        ConfigReported,
        DeviceConfig,
        Event,
        NoAction,
        Presence,
        ReorderAction,
        SensorReading,
        Status,
        Telemetry,
    )

_CODEC = ("decode", "decode_event", "encode")
_MODELS = (
    "QUANTITY_MAX",
    "SENSORS_MAX",
    "TELEMETRY_EXTRAS_MAX",
    "Action",
    "ButtonMapping",
    "CancelLastAction",
    "ConfigReported",
    "DeviceConfig",
    "Event",
    "NoAction",
    "Presence",
    "ReorderAction",
    "SensorReading",
    "Status",
    "Telemetry",
)
_LAZY = {name: "edgeorder.protocol.codec" for name in _CODEC} | {
    name: "edgeorder.protocol.models" for name in _MODELS
}


def __getattr__(name: str) -> Any:
    """The pydantic side, imported when one of its names is first asked for (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CONTRACT_VERSION",
    "DEVICE_ID_PATTERN",
    "INT64_MAX",
    "MAX_EVENT_BYTES",
    "NOTHING_TO_CANCEL",
    "NO_ACTION",
    "QUANTITY_MAX",
    "SENSORS_MAX",
    "TELEMETRY_EXTRAS_MAX",
    "TOPIC_ROOT",
    "Action",
    "ButtonMapping",
    "CancelLastAction",
    "Channel",
    "Click",
    "ConfigReported",
    "DeviceConfig",
    "Event",
    "EventKind",
    "NoAction",
    "PayloadError",
    "Presence",
    "ProtocolError",
    "ReorderAction",
    "SensorReading",
    "State",
    "Status",
    "Telemetry",
    "TopicError",
    "decode",
    "decode_event",
    "device_topic",
    "encode",
    "format_ts",
    "is_nothing_to_do",
    "is_ulid",
    "is_valid_device_id",
    "new_ulid",
    "parse_device_topic",
    "subscription",
    "ulid_time",
    "utcnow",
]
