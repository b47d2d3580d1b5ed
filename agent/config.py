"""The firmware-config TOML of one device: its sections, the loader, path resolution.

``load_config(path)`` validates the whole file at start-up and raises ``ConfigError`` listing
every problem as ``FILE: field.path: reason``. Relative paths resolve against the TOML's folder.

Standard library only, so the agent on a Pi never loads pydantic. The rules are those of the
pydantic models in ``config_model`` (which also make the JSON Schema): the same values
accepted (and converted the same way: ``5.0`` or ``"5"`` for an integer, ``1`` for a float,
``"yes"`` for a bool), the same refused at the same fields; ``tests/agent/test_config_rules.py``
checks it with hypothesis. Change a rule in both.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from edgeorder.agent.errors import ConfigError
from edgeorder.protocol.topics import DEVICE_ID_PATTERN

__all__ = [
    "AgentConfig",
    "ButtonConfig",
    "DistanceSensorConfig",
    "LedConfig",
    "LevelSwitchConfig",
    "LightSensorConfig",
    "Mcp3008SensorConfig",
    "MqttConfig",
    "OutboxConfig",
    "RgbPins",
    "SensorConfig",
    "TelemetryConfig",
    "load_config",
    "parse_config",
    "validate",
]

Loc = tuple[str, ...]


class _Bad(ValueError):
    """A value refused: ``why`` (pydantic's wording where there is one)."""


# -- scalar rules (pydantic's lax conversions of Python values) ------------------------------

_INT_TEXT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?", re.ASCII)
_BOOL_TEXT = {
    **dict.fromkeys(("1", "true", "t", "yes", "y", "on"), True),
    **dict.fromkeys(("0", "false", "f", "no", "n", "off"), False),
}


def _to_int(value: object) -> int:
    if isinstance(value, int):  # bool too: True is 1
        return int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip().split(".")[0])
    raise _Bad("Input should be a valid integer")


def _to_float(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.strip().isascii():
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _Bad("Input should be a valid number")


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.lower()]
    raise _Bad("Input should be a valid boolean")


Rule = Callable[[object], Any]
Errors = list[tuple[Loc, str]]


@dataclass(frozen=True)
class _Table:
    """The rule of a nested table: ``parse(value, loc, errors)`` appends its problems at its
    own path and returns None when there are any."""

    parse: Callable[[object, Loc, Errors], Any]


def _bounded(to: Callable[[object], Any], **bounds: float) -> Rule:
    def rule(value: object) -> Any:
        number = to(value)
        for name, limit in bounds.items():
            text = f"{limit:g}" if isinstance(limit, float) else str(limit)
            if name == "gt" and not number > limit:
                raise _Bad(f"Input should be greater than {text}")
            if name == "ge" and not number >= limit:
                raise _Bad(f"Input should be greater than or equal to {text}")
            if name == "le" and not number <= limit:
                raise _Bad(f"Input should be less than or equal to {text}")
        return number

    return rule


def _int(**bounds: int) -> Rule:
    return _bounded(_to_int, **bounds)


def _float(**bounds: float) -> Rule:
    return _bounded(_to_float, **bounds)


def _str(min_length: int = 0, max_length: int | None = None, pattern: str | None = None) -> Rule:
    compiled = re.compile(pattern) if pattern else None

    def rule(value: object) -> str:
        if not isinstance(value, str):
            raise _Bad("Input should be a valid string")
        if len(value) < min_length:
            raise _Bad(f"String should have at least {min_length} character(s)")
        if max_length is not None and len(value) > max_length:
            raise _Bad(f"String should have at most {max_length} characters")
        if compiled is not None and not compiled.fullmatch(value):
            raise _Bad(f"String should match pattern '{pattern}'")
        return value

    return rule


def _path(value: object) -> Path:
    if isinstance(value, str | Path):
        return Path(value)
    raise _Bad("Input should be a valid path")


def _literal(*choices: str) -> Rule:
    def rule(value: object) -> str:
        if isinstance(value, str) and value in choices:
            return value
        listed = " or ".join(f"'{c}'" for c in choices)
        raise _Bad(f"Input should be {listed}")

    return rule


def _optional(rule: Rule) -> Rule:
    return lambda value: None if value is None else rule(value)


_PIN = _int(ge=0, le=53)
"""A BCM GPIO number."""
_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"


# -- sections -------------------------------------------------------------------------------


class _Section:
    """A TOML table: ``RULES`` name its keys (every other key is refused) and ``REQUIRED``
    those without a default; ``check`` holds the rules across fields (run once every field
    passed, as the models' after-validators)."""

    RULES: ClassVar[dict[str, Rule | _Table]] = {}
    REQUIRED: ClassVar[frozenset[str]] = frozenset()

    def check(self) -> None:
        """Raise ValueError naming what is wrong across fields."""


def _parse_section(cls: type[Any], data: object, loc: Loc, errors: Errors) -> Any:
    """``cls`` built from ``data``, or None with every problem appended to ``errors``."""
    if not isinstance(data, dict):
        errors.append((loc, f"Input should be a valid dictionary or instance of {cls.__name__}"))
        return None
    found, before = {}, len(errors)
    for key in data:
        if key not in cls.RULES:
            errors.append(((*loc, str(key)), "Extra inputs are not permitted"))
    for key, rule in cls.RULES.items():
        if key not in data:
            if key in cls.REQUIRED:
                errors.append(((*loc, key), "Field required"))
            continue
        if isinstance(rule, _Table):
            found[key] = rule.parse(data[key], (*loc, key), errors)
            continue
        try:
            found[key] = rule(data[key])
        except _Bad as exc:
            errors.append(((*loc, key), str(exc)))
    if len(errors) > before:
        return None
    section = cls(**found)
    try:
        section.check()
    except ValueError as exc:
        errors.append((loc, str(exc)))
        return None
    return section


def _nested(cls: type[Any], *, optional: bool = False) -> _Table:
    def parse(value: object, loc: Loc, errors: Errors) -> Any:
        if value is None and optional:
            return None
        return _parse_section(cls, value, loc, errors)

    return _Table(parse)


@dataclass(frozen=True)
class MqttConfig(_Section):
    """How to reach the broker. ``client_id`` defaults to the device id (persistent session)."""

    url: str
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    client_id: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0

    RULES: ClassVar[dict[str, Rule | _Table]] = {
        "url": _str(),
        "username": _optional(_str()),
        "password": _optional(_str()),
        "password_file": _optional(_path),
        "client_id": _optional(_str(min_length=1, max_length=64)),
        "ca_file": _optional(_path),
        "cert_file": _optional(_path),
        "key_file": _optional(_path),
        "keepalive_s": _int(ge=5, le=3600),
        "reconnect_min_s": _float(gt=0, le=60),
        "reconnect_max_s": _float(gt=0, le=3600),
    }
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"url"})

    def check(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("url must look like mqtt://host:1883 or mqtts://host:8883")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"url has a bad port: {exc}") from None
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.tls else 1883)

    def read_password(self) -> str | None:
        """The password, read from ``password_file`` (stripped) when that is given."""
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        return self.password


@dataclass(frozen=True)
class ButtonConfig(_Section):
    """The button and the click timings of the classifier."""

    pin: int = 17
    pull_up: bool = True
    bounce_ms: int = 20
    double_window_ms: int = 400
    long_press_ms: int = 1500

    RULES: ClassVar[dict[str, Rule | _Table]] = {
        "pin": _PIN,
        "pull_up": _to_bool,
        "bounce_ms": _int(ge=0, le=500),
        "double_window_ms": _int(ge=50, le=2000),
        "long_press_ms": _int(ge=200, le=10000),
    }

    def check(self) -> None:
        if self.bounce_ms >= self.double_window_ms:
            raise ValueError("bounce_ms must be shorter than double_window_ms")


@dataclass(frozen=True)
class RgbPins(_Section):
    red: int
    green: int
    blue: int

    RULES: ClassVar[dict[str, Rule | _Table]] = {"red": _PIN, "green": _PIN, "blue": _PIN}
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"red", "green", "blue"})


@dataclass(frozen=True)
class LedConfig(_Section):
    """A single LED on ``pin`` or an RGB LED on ``rgb`` (not both); no table: ``pin`` 27."""

    pin: int | None = 27
    rgb: RgbPins | None = None
    active_high: bool = True

    RULES: ClassVar[dict[str, Rule | _Table]] = {
        "pin": _optional(_PIN),
        "rgb": _nested(RgbPins, optional=True),
        "active_high": _to_bool,
    }

    def check(self) -> None:
        if self.pin is not None and self.rgb is not None:
            raise ValueError("give pin (single LED) or rgb (RGB LED), not both")


def _led(value: object, loc: Loc, errors: Errors) -> LedConfig | None:
    if isinstance(value, dict) and value.get("pin") is None and value.get("rgb") is None:
        value = {**value, "pin": 27}  # the model's before-validator
    elif isinstance(value, dict) and "pin" not in value:
        value = {**value, "pin": None}  # an RGB LED: no default pin
    section: LedConfig | None = _parse_section(LedConfig, value, loc, errors)
    return section


_SENSOR_RULES: dict[str, Rule | _Table] = {
    "name": _str(min_length=1, max_length=64, pattern=_NAME_PATTERN),
    "threshold": _float(),
    "hysteresis": _float(ge=0),
    "min_dwell_ms": _int(ge=0, le=3_600_000),
    "poll_ms": _int(ge=10, le=3_600_000),
    "trigger": _literal("below", "above"),
}


@dataclass(frozen=True, kw_only=True)
class _SensorBase(_Section):
    name: str
    threshold: float
    hysteresis: float = 0.0
    min_dwell_ms: int = 0
    poll_ms: int = 500
    trigger: Literal["below", "above"] = "below"
    """Fire when the reading drops below (or rises above) threshold."""


@dataclass(frozen=True, kw_only=True)
class DistanceSensorConfig(_SensorBase):
    type: Literal["distance"] = "distance"
    echo: int
    trigger_pin: int
    max_distance_m: float = 1.0

    RULES: ClassVar[dict[str, Rule | _Table]] = {
        **_SENSOR_RULES,
        "type": _literal("distance"),
        "echo": _PIN,
        "trigger_pin": _PIN,
        "max_distance_m": _float(gt=0, le=10),
    }
    REQUIRED: ClassVar[frozenset[str]] = frozenset(
        {"name", "threshold", "type", "echo", "trigger_pin"}
    )


@dataclass(frozen=True, kw_only=True)
class LightSensorConfig(_SensorBase):
    type: Literal["light"] = "light"
    pin: int

    RULES: ClassVar[dict[str, Rule | _Table]] = {
        **_SENSOR_RULES,
        "type": _literal("light"),
        "pin": _PIN,
    }
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"name", "threshold", "type", "pin"})


@dataclass(frozen=True, kw_only=True)
class Mcp3008SensorConfig(_SensorBase):
    type: Literal["mcp3008"] = "mcp3008"
    channel: int
    spi_device: int = 0

    RULES: ClassVar[dict[str, Rule | _Table]] = {
        **_SENSOR_RULES,
        "type": _literal("mcp3008"),
        "channel": _int(ge=0, le=7),
        "spi_device": _int(ge=0, le=1),
    }
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"name", "threshold", "type", "channel"})


@dataclass(frozen=True, kw_only=True)
class LevelSwitchConfig(_SensorBase):
    type: Literal["level_switch"] = "level_switch"
    pin: int
    pull_up: bool = True
    threshold: float = 0.5

    RULES: ClassVar[dict[str, Rule | _Table]] = {
        **_SENSOR_RULES,
        "type": _literal("level_switch"),
        "pin": _PIN,
        "pull_up": _to_bool,
    }
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"name", "type", "pin"})


SensorConfig = DistanceSensorConfig | LightSensorConfig | Mcp3008SensorConfig | LevelSwitchConfig
_SENSOR_TYPES: dict[str, type[Any]] = {
    "distance": DistanceSensorConfig,
    "light": LightSensorConfig,
    "mcp3008": Mcp3008SensorConfig,
    "level_switch": LevelSwitchConfig,
}


def _sensor(value: object, loc: Loc, errors: Errors) -> SensorConfig | None:
    if value is None:
        return None
    if not isinstance(value, dict) or "type" not in value:
        errors.append((loc, "Unable to extract tag using discriminator 'type'"))
        return None
    cls = _SENSOR_TYPES.get(value["type"]) if isinstance(value["type"], str) else None
    if cls is None:
        expected = ", ".join(f"'{t}'" for t in _SENSOR_TYPES)
        errors.append(
            (
                loc,
                f"Input tag '{value['type']}' found using 'type' does not match any of the "
                f"expected tags: {expected}",
            )
        )
        return None
    sensor: SensorConfig | None = _parse_section(cls, value, (*loc, value["type"]), errors)
    return sensor


@dataclass(frozen=True)
class OutboxConfig(_Section):
    """The device outbox. ``drop_oldest`` loses the oldest unsent event when full,
    ``refuse_new`` keeps the old ones and refuses the new press; both count in ``dropped``.

    ``max_events`` bounds the events no status has answered yet (re-published every
    ``retry_min_s`` .. ``retry_max_s``). A press answered ``accepted``/``queued`` stays open
    until its outcome is known (``agent.presses.settles``): the device asks again, by
    re-publishing it, every ``ask_min_s`` .. ``ask_max_s`` (and soon after every reconnect),
    for at most ``ask_for_s`` after the press and for at most ``ask_max_open`` presses at a
    time (the oldest is given up first). The last ``keep_settled`` settled presses are
    remembered, so a stale status for one of them is recognised and ignored."""

    path: Path = Path("/var/lib/edgeorder/outbox.db")
    max_events: int = 10_000
    overflow: Literal["drop_oldest", "refuse_new"] = "drop_oldest"
    retry_min_s: float = 5.0
    retry_max_s: float = 300.0
    ask_min_s: float = 30.0
    ask_max_s: float = 900.0
    ask_for_s: float = 12 * 3600.0
    ask_max_open: int = 256
    keep_settled: int = 1000

    RULES: ClassVar[dict[str, Rule | _Table]] = {
        "path": _path,
        "max_events": _int(ge=1, le=10_000_000),
        "overflow": _literal("drop_oldest", "refuse_new"),
        "retry_min_s": _float(gt=0, le=3600),
        "retry_max_s": _float(gt=0, le=86400),
        "ask_min_s": _float(gt=0, le=86400),
        "ask_max_s": _float(gt=0, le=86400),
        "ask_for_s": _float(gt=0, le=30 * 86400),
        "ask_max_open": _int(ge=1, le=100_000),
        "keep_settled": _int(ge=0, le=10_000_000),
    }

    def check(self) -> None:
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("retry_max_s must be >= retry_min_s")
        if self.ask_max_s < self.ask_min_s:
            raise ValueError("ask_max_s must be >= ask_min_s")


@dataclass(frozen=True)
class TelemetryConfig(_Section):
    heartbeat_s: float = 60

    RULES: ClassVar[dict[str, Rule | _Table]] = {"heartbeat_s": _float(ge=1, le=86400)}


@dataclass(frozen=True)
class AgentConfig(_Section):
    """One device's firmware config (firmware-config/*.toml)."""

    device_id: str
    mqtt: MqttConfig
    button: ButtonConfig = field(default_factory=ButtonConfig)
    led: LedConfig = field(default_factory=LedConfig)
    sensor: SensorConfig | None = None
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)

    RULES: ClassVar[dict[str, Rule | _Table]] = {
        "device_id": _str(pattern=DEVICE_ID_PATTERN),
        "mqtt": _nested(MqttConfig),
        "button": _nested(ButtonConfig),
        "led": _Table(_led),
        "sensor": _Table(_sensor),
        "outbox": _nested(OutboxConfig),
        "telemetry": _nested(TelemetryConfig),
    }
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"device_id", "mqtt"})

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or self.device_id


def as_dict(section: object) -> dict[str, Any]:
    """A section as plain values, nested sections as dicts (tests compare it with the model's
    ``model_dump()``)."""
    out = {}
    for f in fields(section):  # type: ignore[arg-type]
        value = getattr(section, f.name)
        out[f.name] = as_dict(value) if isinstance(value, _Section) else value
    return out


_PATH_FIELDS = (
    ("mqtt", "password_file"),
    ("mqtt", "ca_file"),
    ("mqtt", "cert_file"),
    ("mqtt", "key_file"),
    ("outbox", "path"),
)


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    for section, key in _PATH_FIELDS:
        table = data.get(section)
        if isinstance(table, dict) and isinstance(table.get(key), str):
            path = Path(table[key]).expanduser()
            table[key] = str(path if path.is_absolute() else base / path)
    return data


def validate(data: dict[str, Any]) -> tuple[AgentConfig | None, Errors]:
    """The config of already-parsed TOML data (paths as given), or None and every problem
    as (field path, reason)."""
    errors: Errors = []
    config = _parse_section(AgentConfig, data, (), errors)
    return config, errors


def parse_config(data: dict[str, Any], *, source: str, base_dir: Path) -> AgentConfig:
    """Validate already-parsed TOML data; relative paths resolve against ``base_dir``."""
    config, errors = validate(_resolve_paths(data, base_dir))
    if config is None:
        lines = [f"{source}: {'.'.join(loc) or '(file)'}: {why}" for loc, why in errors]
        raise ConfigError(source, lines)
    return config


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate one firmware-config TOML; ConfigError lists every problem."""
    path = Path(path)
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(source, [f"{source}: (file): cannot read: {exc.strerror}"]) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"{source}: (toml): {exc}"]) from exc
    config = parse_config(data, source=source, base_dir=path.resolve().parent)
    pw_file = config.mqtt.password_file
    if pw_file is not None and not pw_file.is_file():
        raise ConfigError(source, [f"{source}: mqtt.password_file: no such file {pw_file}"])
    return config
