"""The device's side of the wire contract without pydantic: standard library only.

The agent on a Pi builds the payloads it publishes (``events``, ``presence``, ``telemetry``,
``config/reported``) and reads the two it subscribes to (``status``, ``config``) here, so it
never imports pydantic (~10 MiB of resident memory on the device, and one dependency fewer).
The rules are the models' (``protocol.models``): a payload one accepts the other accepts with
the same values, and the bytes published are the ones ``codec.encode`` writes;
``tests/protocol/test_device.py`` checks both with hypothesis against the models.

Building a payload with a value the model would refuse raises ``ValueError``; decoding a bad
payload raises ``PayloadError`` (``not_utf8``, ``malformed_json``, ``invalid``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from edgeorder.protocol.errors import PayloadError
from edgeorder.protocol.topics import DEVICE_ID_PATTERN
from edgeorder.protocol.values import INT64_MAX, Click, EventKind, State, format_ts, is_ulid

__all__ = [
    "DesiredConfig",
    "DeviceEvent",
    "DeviceStatus",
    "Reading",
    "config_reported_payload",
    "decode_config",
    "decode_status",
    "presence_payload",
    "telemetry_payload",
]

_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)
_EXTRA_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_QUANTITY_MAX = 1000  # models.QUANTITY_MAX (models imports pydantic)
_SENSORS_MAX = 32  # models.SENSORS_MAX
_TELEMETRY_EXTRAS_MAX = 32  # models.TELEMETRY_EXTRAS_MAX


def _dumps(data: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as pydantic's ``model_dump_json`` writes it."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


# -- building what the device publishes ---------------------------------------------------


def _is_int(value: object) -> bool:
    return type(value) is int


def _count(name: str, value: object) -> int:
    if not _is_int(value):
        raise ValueError(f"{name} must be an integer")
    assert isinstance(value, int)
    if not 0 <= value <= INT64_MAX:
        raise ValueError(f"{name} must be between 0 and {INT64_MAX}")
    return value


def _text64(name: str, value: object) -> str:
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError(f"{name} must be a string of at most 64 characters")
    return value


def _utc(name: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must carry a timezone")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{name} is out of range once moved to UTC") from None


@dataclass(frozen=True, slots=True)
class Reading:
    """A sensor's reading in an event: ``name`` (1-64 characters), a finite ``value``."""

    name: str
    value: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 1 <= len(self.name) <= 64:
            raise ValueError("sensor name must be a string of 1 to 64 characters")
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("sensor value must be a number")
        if not math.isfinite(value):
            raise ValueError("sensor value must be a finite number")
        object.__setattr__(self, "value", float(value))


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """An ``events`` payload (``models.Event``): a press carries a ``click``, a sensor event a
    ``sensor`` reading. ``event_id`` is kept upper-case, ``ts`` in UTC."""

    event_id: str
    device_id: str
    seq: int
    kind: EventKind
    ts: datetime
    fw: str = ""
    click: Click | None = None
    sensor: Reading | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.event_id, str) or not is_ulid(self.event_id):
            raise ValueError("event_id must be a 26-character ULID (Crockford base32)")
        if not isinstance(self.device_id, str) or not _DEVICE_ID_RE.fullmatch(self.device_id):
            raise ValueError(f"device_id must match {DEVICE_ID_PATTERN}")
        _count("seq", self.seq)
        _text64("fw", self.fw)
        kind, click = EventKind(self.kind), None if self.click is None else Click(self.click)
        if self.sensor is not None and not isinstance(self.sensor, Reading):
            raise ValueError("sensor must be a Reading")
        if kind is EventKind.PRESS and (click is None or self.sensor is not None):
            raise ValueError("a press carries a click and no sensor")
        if kind is EventKind.SENSOR and (self.sensor is None or click is not None):
            raise ValueError("a sensor event carries a sensor reading and no click")
        object.__setattr__(self, "event_id", self.event_id.upper())
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "click", click)
        object.__setattr__(self, "ts", _utc("ts", self.ts))

    @property
    def trigger(self) -> str:
        """``single``/``double``/``long`` for a press, ``sensor:NAME`` for a sensor."""
        if self.click is not None:
            return self.click.value
        assert self.sensor is not None
        return f"sensor:{self.sensor.name}"

    def encode(self) -> bytes:
        """The payload, byte for byte what ``codec.encode(models.Event(...))`` writes."""
        data: dict[str, Any] = {
            "v": 1,
            "event_id": self.event_id,
            "device_id": self.device_id,
            "seq": self.seq,
            "kind": self.kind.value,
        }
        if self.click is not None:
            data["click"] = self.click.value
        if self.sensor is not None:
            data["sensor"] = {"name": self.sensor.name, "value": self.sensor.value}
        data["ts"] = format_ts(self.ts)
        data["fw"] = self.fw
        return _dumps(data)


def presence_payload(*, online: bool, fw: str, ts: datetime) -> bytes:
    """A ``presence`` payload (``models.Presence``)."""
    if type(online) is not bool:
        raise ValueError("online must be a bool")
    data = {"v": 1, "online": online, "fw": _text64("fw", fw), "ts": format_ts(_utc("ts", ts))}
    return _dumps(data)


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -INT64_MAX - 1 <= value <= INT64_MAX
    return isinstance(value, float) and math.isfinite(value)


def telemetry_payload(
    *,
    uptime_s: int,
    queue_depth: int,
    fw: str,
    dropped: int,
    ts: datetime,
    extras: dict[str, int | float] | None = None,
) -> bytes:
    """A ``telemetry`` payload (``models.Telemetry``). ``extras`` are kept as the model keeps
    them: the first 32 named by 1-64 of ``[A-Za-z0-9_.-]`` with a finite number in int64;
    one named like a field above (or ``v``) is left out."""
    data: dict[str, Any] = {
        "v": 1,
        "uptime_s": _count("uptime_s", uptime_s),
        "queue_depth": _count("queue_depth", queue_depth),
        "fw": _text64("fw", fw),
        "dropped": _count("dropped", dropped),
        "ts": format_ts(_utc("ts", ts)),
    }
    kept = 0
    for key, value in (extras or {}).items():
        if key in data or kept >= _TELEMETRY_EXTRAS_MAX:
            continue
        if isinstance(key, str) and _EXTRA_NAME_RE.match(key) and _is_number(value):
            data[key] = value
            kept += 1
    return _dumps(data)


def config_reported_payload(*, version: int, ts: datetime) -> bytes:
    """A ``config/reported`` payload (``models.ConfigReported``)."""
    return _dumps({"v": 1, "version": _count("version", version), "ts": format_ts(_utc("ts", ts))})


# -- reading what the device receives -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A ``status`` payload (``models.Status``); ``event_id`` None only for a rejected payload
    that had no readable id."""

    event_id: str | None
    state: State
    ts: datetime
    order_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class DesiredConfig:
    """A ``config`` payload (``models.DeviceConfig``): what the device applies of it. The
    ``mapping`` is checked as the model checks it, but only ingest acts on it."""

    version: int
    env: str = "prod"
    double_window_ms: int | None = None
    long_press_ms: int | None = None


class _Invalid(ValueError):
    """One field breaks the model's rules: ``where`` and why."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}")


def _lone_surrogate(data: object) -> bool:
    """pydantic's parser refuses ``"\\ud800"`` alone; ``json.loads`` lets it through."""
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def _load_object(raw: bytes) -> dict[str, Any]:
    """``raw`` as a JSON object; PayloadError otherwise (codes as ``codec.decode``)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"payload is not UTF-8 ({exc.reason})", code="not_utf8") from exc
    try:  # NaN and Infinity pass, as pydantic's parser lets them (no field here takes them)
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"malformed JSON: {exc}", code="malformed_json") from None
    if "\\ud" in text.lower() and _lone_surrogate(data):
        raise PayloadError("malformed JSON: a lone surrogate escape", code="malformed_json")
    if not isinstance(data, dict):
        raise PayloadError("payload must be a JSON object", code="invalid")
    return data


def _version(data: dict[str, Any]) -> None:
    if "v" in data and (not _is_int(data["v"]) or data["v"] != 1):
        raise _Invalid("v", "must be the integer 1")


def _required(data: dict[str, Any], key: str, where: str = "") -> Any:
    if key not in data:
        raise _Invalid(where + key, "Field required")
    return data[key]


def _opt_str(data: dict[str, Any], key: str, max_length: int | None = None) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(key, "must be a string or null")
    if max_length is not None and len(value) > max_length:
        raise _Invalid(key, f"must have at most {max_length} characters")
    return value


def _int_in(where: str, value: object, low: int, high: int) -> int:
    if not _is_int(value):
        raise _Invalid(where, "must be an integer")
    assert isinstance(value, int)
    if not low <= value <= high:
        raise _Invalid(where, f"must be between {low} and {high}")
    return value


# RFC 3339 as pydantic (speedate) reads it: T, t, space or _ between date and time; seconds
# and fraction optional, the fraction after "." or "," (as ISO 8601 allows); Z, z or an
# offset of [+-]HH[:]MM. A date alone carries no zone.
_TS_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt _](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))",
    re.ASCII,
)


def _timestamp(value: object) -> datetime:
    if not isinstance(value, str):
        raise _Invalid("ts", "must be an RFC 3339 string")
    match = _TS_RE.fullmatch(value)
    if match is None:
        raise _Invalid("ts", "must be an RFC 3339 timestamp with a timezone")
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    if zulu:
        zone = UTC
    else:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset >= timedelta(hours=24):
            raise _Invalid("ts", "timezone offset out of range")
        zone = timezone(-offset if sign == "-" else offset)
    try:
        ts = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((frac or "0").ljust(6, "0")),
            tzinfo=zone,
        )
        return ts.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _Invalid("ts", "not a valid date and time in UTC") from None


def decode_status(raw: bytes) -> DeviceStatus:
    """Decode and check a ``status`` payload as ``codec.decode(models.Status, raw)`` does."""
    data = _load_object(raw)
    try:
        _version(data)
        event_id = _required(data, "event_id")
        if event_id is not None:
            if not isinstance(event_id, str) or not is_ulid(event_id):
                raise _Invalid("event_id", "must be a 26-character ULID (Crockford base32)")
            event_id = event_id.upper()
        state = _required(data, "state")
        if not isinstance(state, str) or state not in State._value2member_map_:
            raise _Invalid("state", "must be one of " + ", ".join(s.value for s in State))
        order_id = _opt_str(data, "order_id")
        reason = _opt_str(data, "reason", max_length=500)
        ts = _timestamp(_required(data, "ts"))
    except _Invalid as exc:
        raise PayloadError(str(exc), code="invalid") from None
    return DeviceStatus(event_id, State(state), ts, order_id, reason)


def _action(where: str, value: object) -> None:
    if not isinstance(value, dict):
        raise _Invalid(where, "must be an object")
    kind = value.get("type")
    if kind == "reorder":
        allowed = {"type", "sku", "quantity"}
        sku = _required(value, "sku", where + ".")
        if not isinstance(sku, str) or not 1 <= len(sku) <= 64:
            raise _Invalid(where + ".sku", "must be a string of 1 to 64 characters")
        if "quantity" in value:
            _int_in(where + ".quantity", value["quantity"], 1, _QUANTITY_MAX)
    elif kind in ("cancel_last", "none"):
        allowed = {"type"}
    else:
        raise _Invalid(where + ".type", "must be reorder, cancel_last or none")
    extra = set(value) - allowed
    if extra:
        raise _Invalid(where + "." + sorted(extra)[0], "Extra inputs are not permitted")


def _mapping(value: object) -> None:
    if not isinstance(value, dict):
        raise _Invalid("mapping", "must be an object")
    for key, action in value.items():
        if key in ("single", "double", "long"):
            _action("mapping." + key, action)
        elif key == "sensors":
            if not isinstance(action, dict):
                raise _Invalid("mapping.sensors", "must be an object")
            if len(action) > _SENSORS_MAX:
                raise _Invalid("mapping.sensors", f"must have at most {_SENSORS_MAX} entries")
            for name, sensor_action in action.items():
                if not 1 <= len(name) <= 64:
                    raise _Invalid("mapping.sensors", "names must have 1 to 64 characters")
                _action(f"mapping.sensors.{name}", sensor_action)
        else:
            raise _Invalid("mapping." + key, "Extra inputs are not permitted")


def _opt_int_in(data: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = data.get(key)
    return None if value is None else _int_in(key, value, low, high)


def decode_config(raw: bytes) -> DesiredConfig:
    """Decode and check a ``config`` payload as ``codec.decode(models.DeviceConfig, raw)``."""
    data = _load_object(raw)
    try:
        _version(data)
        version = _int_in("version", _required(data, "version"), 0, INT64_MAX)
        if "mapping" in data:
            _mapping(data["mapping"])
        env = data.get("env", "prod")
        if env not in ("dev", "prod") or not isinstance(env, str):
            raise _Invalid("env", "must be dev or prod")
        double_window_ms = _opt_int_in(data, "double_window_ms", 50, 2000)
        long_press_ms = _opt_int_in(data, "long_press_ms", 200, 10000)
    except _Invalid as exc:
        raise PayloadError(str(exc), code="invalid") from None
    return DesiredConfig(version, env, double_window_ms, long_press_ms)
