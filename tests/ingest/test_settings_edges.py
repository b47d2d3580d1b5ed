"""Settings that would fail later, and again on every retry, are refused at start with the
setting named: broker and public URLs without a host or with a port out of range, an empty
client id, a CA file that cannot be read, a shared group that is not one topic level."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from pydantic import ValidationError

from edgeorder.ingest.cli.run import _parser, build_settings
from edgeorder.ingest.settings import Settings
from tests.support.proc import run_cli


def settings(tmp_path: Path, *argv: str) -> Settings:
    args: argparse.Namespace = _parser("edgeorder ingest").parse_args(
        ["--data-dir", str(tmp_path), *argv]
    )
    return build_settings(args, {})


@pytest.mark.parametrize(
    ("option", "value", "field", "reason"),
    [
        ("--mqtt-url", "mqtt://", "mqtt_url", "needs a host"),
        ("--mqtt-url", "tcp://broker:1883", "mqtt_url", "must start with mqtt:// or mqtts://"),
        ("--mqtt-url", "MQTT://broker", "mqtt_url", "must start with"),
        ("--mqtt-url", "mqtt://broker:99999", "mqtt_url", "port must be a number"),
        ("--mqtt-url", "mqtt://broker:0", "mqtt_url", "port must be a number"),
        ("--mqtt-url", "mqtt://broker:x", "mqtt_url", "port must be a number"),
        ("--device-mqtt-url", "mqtts://:8883", "device_mqtt_url", "needs a host"),
        ("--public-url", "edge.example", "public_url", "must start with http:// or https://"),
        ("--public-url", "https://", "public_url", "needs a host"),
        ("--mqtt-client-id", "", "mqtt_client_id", "at least 1 character"),
        ("--mqtt-client-id", "x" * 257, "mqtt_client_id", "at most 256 characters"),
        ("--mqtt-ca-file", "/no/such/ca.crt", "mqtt_ca_file", "No such file or directory"),
        ("--mqtt-ca-file", "/", "mqtt_ca_file", "cannot read /"),
    ],
)
def test_refused_with_the_setting_and_the_reason(
    tmp_path: Path, option: str, value: str, field: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(tmp_path, option, value)
    assert caught.value.errors()[0]["loc"] == (field,)
    assert reason in str(caught.value)


def test_good_values_pass(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    got = settings(
        tmp_path,
        "--mqtt-url",
        "mqtts://broker.example:8883",
        "--device-mqtt-url",
        "mqtt://[::1]:1883",
        "--public-url",
        "https://edge.example/orders",
        "--mqtt-ca-file",
        str(ca),
    )
    assert (got.mqtt_url, got.device_mqtt_url) == (
        "mqtts://broker.example:8883",
        "mqtt://[::1]:1883",
    )
    assert got.public_url == "https://edge.example/orders"
    assert got.mqtt_ca_file == ca


def test_the_command_says_which_setting_and_exits_non_zero(tmp_path: Path) -> None:
    result = run_cli("ingest", "--data-dir", str(tmp_path), "--mqtt-ca-file", "/no/such/ca.crt")
    assert result.returncode != 0
    assert "invalid settings" in result.stderr
    assert "mqtt_ca_file: Value error, cannot read /no/such/ca.crt" in result.stderr
