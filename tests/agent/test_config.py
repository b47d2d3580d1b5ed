"""Firmware-config: examples load, errors list file/field/reason, schema stays committed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeorder.agent.config import DistanceSensorConfig, load_config
from edgeorder.agent.config_schema import SCHEMA_PATH, config_schema, schema_text
from edgeorder.agent.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "firmware-config" / "examples"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "device.toml"
    path.write_text(text)
    return path


def test_examples_load(tmp_path: Path) -> None:
    pw = tmp_path / "agent.pass"
    pw.write_text("s3cret\n")
    text = (EXAMPLES / "reorder-button.toml").read_text()
    button = load_config(write(tmp_path, text.replace("/etc/edgeorder/agent.pass", str(pw))))
    assert button.device_id == "kitchen-01"
    assert button.mqtt.tls
    assert button.mqtt.port == 8883
    assert button.mqtt.read_password() == "s3cret"
    assert button.client_id == "kitchen-01"
    assert button.led.pin == 27
    assert button.sensor is None

    level = load_config(EXAMPLES / "level-sensor.toml")
    assert isinstance(level.sensor, DistanceSensorConfig)
    assert level.sensor.name == "beans"
    assert level.sensor.trigger == "above"
    assert level.led.rgb is not None
    assert level.led.pin is None
    # relative outbox path resolves against the TOML's folder
    assert level.outbox.path == EXAMPLES / "outbox" / "hopper-02.db"
    assert level.outbox.overflow == "refuse_new"


def test_defaults_for_everything_but_device_and_mqtt(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, 'device_id = "d1"\n[mqtt]\nurl = "mqtt://h"\n'))
    assert cfg.mqtt.port == 1883
    assert not cfg.mqtt.tls
    button = cfg.button
    assert (button.pin, button.double_window_ms, button.long_press_ms) == (17, 400, 1500)
    assert cfg.outbox.max_events == 10_000
    assert cfg.telemetry.heartbeat_s == 60


def test_every_error_listed_with_file_field_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
device_id = "no spaces allowed"
[mqtt]
url = "http://broker"
password = "a"
password_file = "b"
[button]
pin = 99
[led]
pin = 1
rgb = { red = 1, green = 2, blue = 3 }
[outbox]
overflow = "explode"
[sensor]
type = "mcp3008"
name = "beans"
threshold = 0.2
channel = 9
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    errors = info.value.errors
    joined = "\n".join(errors)
    assert all(line.startswith(f"{path}: ") for line in errors)
    for field in (
        "device_id:",
        "mqtt:",
        "button.pin:",
        "led:",
        "outbox.overflow:",
        "sensor.mcp3008.channel:",
    ):
        assert f"{path}: {field}" in joined, field
    assert "url must look like" in joined
    assert len(errors) == 6


def test_unknown_keys_and_missing_tables(tmp_path: Path) -> None:
    path = write(tmp_path, 'device_id = "d1"\n[buton]\npin = 3\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    joined = str(info.value)
    assert f"{path}: mqtt: Field required" in joined
    assert f"{path}: buton: Extra inputs are not permitted" in joined


def test_toml_syntax_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\(toml\)"):
        load_config(write(tmp_path, "device_id = \n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_missing_password_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'device_id = "d1"\n[mqtt]\nurl = "mqtt://h"\npassword_file = "pw"\n')
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: no such file"):
        load_config(path)


def test_committed_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), (
        "firmware-config/schema.json is stale: run python -m edgeorder.agent.config_schema "
        "firmware-config/schema.json"
    )


def test_schema_describes_the_layout() -> None:
    schema = config_schema()
    assert set(schema["required"]) == {"device_id", "mqtt"}
    assert {"button", "led", "sensor", "outbox", "telemetry"} <= set(schema["properties"])
    json.dumps(schema)
