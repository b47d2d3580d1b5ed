"""The wire contract between devices and the backend: topics, payload models, versioning.

Pure: imports pydantic only, performs no I/O. Shared by ``agent`` and ``ingest``.
"""

from edgeorder.protocol.codec import decode, decode_event, encode
from edgeorder.protocol.errors import PayloadError, ProtocolError, TopicError
from edgeorder.protocol.models import (
    INT64_MAX,
    QUANTITY_MAX,
    SENSORS_MAX,
    TELEMETRY_EXTRAS_MAX,
    Action,
    ButtonMapping,
    CancelLastAction,
    Click,
    ConfigReported,
    DeviceConfig,
    Event,
    EventKind,
    NoAction,
    Presence,
    ReorderAction,
    SensorReading,
    State,
    Status,
    Telemetry,
    format_ts,
    is_ulid,
    utcnow,
)
from edgeorder.protocol.reasons import NO_ACTION, NOTHING_TO_CANCEL, is_nothing_to_do
from edgeorder.protocol.topics import (
    DEVICE_ID_PATTERN,
    Channel,
    device_topic,
    is_valid_device_id,
    parse_device_topic,
    subscription,
)
from edgeorder.protocol.version import CONTRACT_VERSION, MAX_EVENT_BYTES, TOPIC_ROOT

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
    "parse_device_topic",
    "subscription",
    "utcnow",
]
