"""Payload models of the wire contract (pydantic v2).

Models are strict (``"42"`` is not an int) and ignore unknown fields, so a newer device can add
fields without breaking an older backend. Decode bytes with ``protocol.codec``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    model_validator,
)

from edgeorder.protocol.topics import DEVICE_ID_PATTERN
from edgeorder.protocol.values import (
    INT64_MAX,
    ULID_PATTERN,
    Click,
    EventKind,
    State,
    format_ts,
    is_ulid,
    utcnow,
)

__all__ = [
    "INT64_MAX",
    "QUANTITY_MAX",
    "SENSORS_MAX",
    "TELEMETRY_EXTRAS_MAX",
    "ULID_PATTERN",
    "Action",
    "ButtonMapping",
    "CancelLastAction",
    "Click",
    "ConfigReported",
    "DeviceConfig",
    "Event",
    "EventKind",
    "NoAction",
    "Presence",
    "ReorderAction",
    "SensorReading",
    "State",
    "Status",
    "Telemetry",
    "format_ts",
    "is_ulid",
    "json_schemas",
    "utcnow",
]

QUANTITY_MAX = 1000
"""Largest quantity of one reorder (the CLI, the REST API and the dashboard use this)."""

SENSORS_MAX = 32
"""Named sensors one device's mapping may hold."""

TELEMETRY_EXTRAS_MAX = 32
"""Extra numeric telemetry fields kept per message; the rest are ignored."""
_EXTRA_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _aware_utc(ts: datetime) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (use Z for UTC)")
    try:
        return ts.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00, 9999-12-31T23:59:59-01:00
        raise ValueError("timestamp is out of range once moved to UTC") from None


def _ulid(value: str) -> str:
    if not is_ulid(value):
        raise ValueError("must be a 26-character ULID (Crockford base32)")
    return value.upper()


def _version(value: object) -> object:
    # Literal[1] alone takes true and 1.0 as 1 (they compare equal): only the integer counts.
    if type(value) is not int:
        raise ValueError("must be the integer 1")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


# Scalars are strict ("42" is not an int, 1 is not a bool, 12345 is not a timestamp);
# enums and models stay lax so Python code can build payloads from plain values.
Timestamp = Annotated[
    datetime, Strict(), AfterValidator(_aware_utc), PlainSerializer(format_ts, return_type=str)
]
Ulid = Annotated[str, Strict(), AfterValidator(_ulid)]
DeviceId = Annotated[str, Strict(), Field(pattern=DEVICE_ID_PATTERN)]
ShortText = Annotated[str, Strict(), Field(min_length=1, max_length=64)]
Text64 = Annotated[str, Strict(), Field(max_length=64)]
Count = Annotated[int, Strict(), Field(ge=0, le=INT64_MAX)]
Version = Annotated[Literal[1], BeforeValidator(_version)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    v: Version = 1


class SensorReading(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: ShortText
    value: Annotated[float, Strict(), AfterValidator(_finite)]


class Event(_Wire):
    """A trigger on a device: a button press or a sensor threshold crossing.

    ``event_id`` is a ULID made at the GPIO edge; it is the idempotency key of the whole chain.
    """

    event_id: Ulid
    device_id: DeviceId
    seq: Count
    kind: EventKind
    click: Click | None = None
    sensor: SensorReading | None = None
    ts: Timestamp
    fw: Text64 = ""

    @model_validator(mode="after")
    def _kind_matches_fields(self) -> Event:
        if self.kind is EventKind.PRESS and (self.click is None or self.sensor is not None):
            raise ValueError("a press carries a click and no sensor")
        if self.kind is EventKind.SENSOR and (self.sensor is None or self.click is not None):
            raise ValueError("a sensor event carries a sensor reading and no click")
        return self

    @property
    def trigger(self) -> str:
        """``single``/``double``/``long`` for a press, ``sensor:NAME`` for a sensor."""
        if self.click is not None:
            return self.click.value
        assert self.sensor is not None
        return f"sensor:{self.sensor.name}"


class Status(_Wire):
    """What the backend says about one event; retained on the device's ``status`` topic.

    ``event_id`` is None only when a rejected payload had no readable event id.
    """

    event_id: Ulid | None
    state: State
    order_id: Annotated[str, Strict()] | None = None
    reason: Annotated[str, Strict(), Field(max_length=500)] | None = None
    ts: Timestamp


class Presence(_Wire):
    """Retained on ``presence``; the device's LWT publishes ``online: false``."""

    online: Annotated[bool, Strict()]
    fw: Text64 = ""
    ts: Timestamp


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -INT64_MAX - 1 <= value <= INT64_MAX
    return isinstance(value, float) and math.isfinite(value)


class Telemetry(_Wire):
    """Periodic heartbeat (QoS 0). Extra numeric fields are kept in ``model_extra``: at most
    ``TELEMETRY_EXTRAS_MAX`` of them, named by 1-64 of ``[A-Za-z0-9_.-]``, each a finite
    number within int64; any other extra field is ignored, as unknown fields are."""

    model_config = ConfigDict(extra="allow", frozen=True)

    uptime_s: Count
    queue_depth: Count
    fw: Text64 = ""
    dropped: Count = 0
    ts: Timestamp | None = None

    @model_validator(mode="after")
    def _numeric_extras(self) -> Telemetry:
        # After the fields, not before: a "before" validator hands the fields on as Python
        # values, and the strict ``ts`` then refused the JSON string every agent sends.
        extra = self.__pydantic_extra__
        if extra:
            kept = {
                key: value
                for key, value in extra.items()
                if isinstance(key, str) and _EXTRA_NAME_RE.match(key) and _is_number(value)
            }
            extra.clear()
            extra.update(list(kept.items())[:TELEMETRY_EXTRAS_MAX])
        return self


class ReorderAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["reorder"] = "reorder"
    sku: ShortText
    quantity: Annotated[int, Strict(), Field(ge=1, le=QUANTITY_MAX)] = 1


class CancelLastAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["cancel_last"] = "cancel_last"


class NoAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["none"] = "none"


Action = Annotated[ReorderAction | CancelLastAction | NoAction, Field(discriminator="type")]


class ButtonMapping(BaseModel):
    """What each click (and each named sensor crossing) of a device does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    single: Action = NoAction()
    double: Action = NoAction()
    long: Action = CancelLastAction()
    sensors: dict[ShortText, Action] = Field(default_factory=dict, max_length=SENSORS_MAX)
    """At most ``SENSORS_MAX``: the mapping travels in the retained ``config``, and a publish
    larger than the broker's ``max_packet_size`` gets ingest disconnected, again and again."""

    def action_for(self, trigger: str) -> ReorderAction | CancelLastAction | NoAction:
        """The action for ``single``/``double``/``long`` or ``sensor:NAME``."""
        if trigger.startswith("sensor:"):
            return self.sensors.get(trigger.removeprefix("sensor:"), NoAction())
        action: ReorderAction | CancelLastAction | NoAction = getattr(self, trigger, NoAction())
        return action


class DeviceConfig(_Wire):
    """Desired configuration, retained on the device's ``config`` topic."""

    version: Count
    mapping: ButtonMapping = ButtonMapping()
    env: Literal["dev", "prod"] = "prod"
    double_window_ms: Annotated[int, Strict(), Field(ge=50, le=2000)] | None = None
    long_press_ms: Annotated[int, Strict(), Field(ge=200, le=10000)] | None = None


class ConfigReported(_Wire):
    """Retained on ``config/reported``: the config version the device applied."""

    version: Count
    ts: Timestamp


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every payload, keyed by model name (for docs and other languages)."""
    models: list[type[BaseModel]] = [
        Event,
        Status,
        Presence,
        Telemetry,
        DeviceConfig,
        ConfigReported,
    ]
    return {m.__name__: m.model_json_schema(mode="serialization") for m in models}
