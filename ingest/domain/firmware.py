"""The firmware-config TOML a device's agent reads (``firmware-config/``), written by
``edgeorder device add``. Layout::

    device_id = "kitchen-01"
    [mqtt]
    url = "mqtts://192.0.2.10:8883"     # Settings.device_mqtt_url: as devices reach it
    username = "kitchen-01"
    password = "..."
    ca_file = "ca.crt"                 # the broker's CA, beside this file
    [button]
    pin = 17
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

__all__ = ["DEVICE_CA_NAME", "render_agent_toml", "write_agent_toml"]

DEVICE_CA_NAME = "ca.crt"
"""The broker's CA certificate on a device, beside its TOML (a relative ``ca_file`` resolves
against the TOML's folder): copied along with the config, it needs no path of its own."""


def render_agent_toml(
    device_id: str,
    *,
    mqtt_url: str,
    password: str,
    ca_file: str | None = None,
    button: dict[str, Any] | None = None,
    led: dict[str, Any] | None = None,
    sensor: dict[str, Any] | None = None,
    outbox: dict[str, Any] | None = None,
    telemetry: dict[str, Any] | None = None,
) -> str:
    """The agent's config file for ``device_id``; the MQTT username is the device id.
    ``ca_file`` is as the device sees it (``DEVICE_CA_NAME`` beside the TOML)."""
    mqtt: dict[str, Any] = {"url": mqtt_url, "username": device_id, "password": password}
    if ca_file:
        mqtt["ca_file"] = ca_file
    doc: dict[str, Any] = {"device_id": device_id, "mqtt": mqtt}
    for name, table in (
        ("button", button),
        ("led", led),
        ("sensor", sensor),
        ("outbox", outbox),
        ("telemetry", telemetry),
    ):
        if table:
            doc[name] = table
    return tomli_w.dumps(doc)


def write_agent_toml(path: Path, text: str) -> None:
    """Write the config readable by its owner only (it holds the device's password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)
    tmp.write_text(text)
    tmp.replace(path)
