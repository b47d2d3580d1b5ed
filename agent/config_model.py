"""The firmware-config TOML as pydantic models: the source of its JSON Schema
(``config_schema``, ``firmware-config/schema.json``) and the reference of its rules.

The agent itself reads the TOML with ``agent.config`` (standard library only: pydantic and
the protocol models cost a Pi ~9 MiB of resident memory); ``tests/agent/test_config_rules.py``
checks with hypothesis that both accept the same files with the same values and refuse the
same ones at the same fields. Change a rule in both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
]

Pin = Annotated[int, Field(ge=0, le=53, description="BCM GPIO number")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttConfig(_Section):
    """How to reach the broker. ``client_id`` defaults to the device id (persistent session)."""

    url: str = Field(description="mqtt://host[:1883] or mqtts://host[:8883]")
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    client_id: str | None = Field(default=None, min_length=1, max_length=64)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(default=0.5, gt=0, le=60)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
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
        return self

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


class ButtonConfig(_Section):
    """The button and the click timings of the classifier."""

    pin: Pin = 17
    pull_up: bool = True
    bounce_ms: int = Field(default=20, ge=0, le=500)
    double_window_ms: int = Field(default=400, ge=50, le=2000)
    long_press_ms: int = Field(default=1500, ge=200, le=10000)

    @model_validator(mode="after")
    def _check(self) -> ButtonConfig:
        if self.bounce_ms >= self.double_window_ms:
            raise ValueError("bounce_ms must be shorter than double_window_ms")
        return self


class RgbPins(_Section):
    red: Pin
    green: Pin
    blue: Pin


class LedConfig(_Section):
    """A single LED on ``pin`` or an RGB LED on ``rgb`` (not both)."""

    pin: Pin | None = None
    rgb: RgbPins | None = None
    active_high: bool = True

    @model_validator(mode="before")
    @classmethod
    def _default_pin(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("pin") is None and data.get("rgb") is None:
            return {**data, "pin": 27}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> LedConfig:
        if self.pin is not None and self.rgb is not None:
            raise ValueError("give pin (single LED) or rgb (RGB LED), not both")
        return self


class _SensorBase(_Section):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    threshold: float
    hysteresis: float = Field(default=0.0, ge=0)
    min_dwell_ms: int = Field(default=0, ge=0, le=3_600_000)
    poll_ms: int = Field(default=500, ge=10, le=3_600_000)
    trigger: Literal["below", "above"] = Field(
        default="below", description="fire when the reading drops below (or rises above) threshold"
    )


class DistanceSensorConfig(_SensorBase):
    type: Literal["distance"]
    echo: Pin
    trigger_pin: Pin
    max_distance_m: float = Field(default=1.0, gt=0, le=10)


class LightSensorConfig(_SensorBase):
    type: Literal["light"]
    pin: Pin


class Mcp3008SensorConfig(_SensorBase):
    type: Literal["mcp3008"]
    channel: int = Field(ge=0, le=7)
    spi_device: int = Field(default=0, ge=0, le=1)


class LevelSwitchConfig(_SensorBase):
    type: Literal["level_switch"]
    pin: Pin
    pull_up: bool = True
    threshold: float = 0.5


SensorConfig = Annotated[
    DistanceSensorConfig | LightSensorConfig | Mcp3008SensorConfig | LevelSwitchConfig,
    Field(discriminator="type"),
]


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
    max_events: int = Field(default=10_000, ge=1, le=10_000_000)
    overflow: Literal["drop_oldest", "refuse_new"] = "drop_oldest"
    retry_min_s: float = Field(default=5.0, gt=0, le=3600)
    retry_max_s: float = Field(default=300.0, gt=0, le=86400)
    ask_min_s: float = Field(default=30.0, gt=0, le=86400)
    ask_max_s: float = Field(default=900.0, gt=0, le=86400)
    ask_for_s: float = Field(default=12 * 3600.0, gt=0, le=30 * 86400)
    ask_max_open: int = Field(default=256, ge=1, le=100_000)
    keep_settled: int = Field(default=1000, ge=0, le=10_000_000)

    @model_validator(mode="after")
    def _check(self) -> OutboxConfig:
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("retry_max_s must be >= retry_min_s")
        if self.ask_max_s < self.ask_min_s:
            raise ValueError("ask_max_s must be >= ask_min_s")
        return self


class TelemetryConfig(_Section):
    heartbeat_s: float = Field(default=60, ge=1, le=86400)


class AgentConfig(_Section):
    """One device's firmware config (firmware-config/*.toml)."""

    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    mqtt: MqttConfig
    button: ButtonConfig = ButtonConfig()
    led: LedConfig = LedConfig()
    sensor: SensorConfig | None = None
    outbox: OutboxConfig = OutboxConfig()
    telemetry: TelemetryConfig = TelemetryConfig()

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or self.device_id
