"""Home Assistant MQTT discovery: the retained config messages that make each device appear in
Home Assistant (pure; ``ingest.mqtt.homeassistant`` publishes them).

Per device, following Home Assistant's documented discovery schema
(https://www.home-assistant.io/integrations/device_trigger.mqtt/,
https://www.home-assistant.io/integrations/sensor.mqtt/):

- three **device triggers**, ``<prefix>/device_automation/edgeorder_<id>/<click>_press/config``:
  ``button_short_press`` / ``button_double_press`` / ``button_long_press`` of ``button_1``, on
  the device's ``events`` topic; ``value_template`` takes the event's ``click`` and ``payload``
  is the click it must equal (a sensor event, or anything that is not a JSON object, renders
  '' and fires nothing);
- a **sensor** of the last order state, ``<prefix>/sensor/edgeorder_<id>/order_state/config``:
  the device's retained ``status`` topic, ``value_template`` its ``state`` (an ``enum`` of the
  protocol's states), the order id, event id and reason as attributes; available while the
  device's retained ``presence`` says ``online`` (``value_template`` on the Presence JSON);
- the same ``device`` block in each (identifiers, name, manufacturer, model, ``sw_version``
  from the presence's ``fw``) and an ``origin`` naming edgeorder.

Device triggers have no availability in Home Assistant's schema; the sensor carries it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from edgeorder import protocol as p

__all__ = [
    "BIRTH_TOPIC",
    "DEFAULT_PREFIX",
    "NODE_PREFIX",
    "TRIGGER_TYPES",
    "HaDevice",
    "config_filters",
    "discovery_messages",
    "encode",
    "is_valid_prefix",
    "node_device_id",
]

DEFAULT_PREFIX = "homeassistant"
BIRTH_TOPIC = "status"
"""Under the prefix: Home Assistant publishes ``online`` there when it (re)starts."""
NODE_PREFIX = "edgeorder_"
"""The discovery ``node_id`` of a device: ``edgeorder_<device_id>``."""
MANUFACTURER = "edgeorder"
TRIGGER_TYPES: dict[p.Click, str] = {
    p.Click.SINGLE: "button_short_press",
    p.Click.DOUBLE: "button_double_press",
    p.Click.LONG: "button_long_press",
}
SUBTYPE = "button_1"
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
_CLICK_TEMPLATE = (
    "{{ value_json.click if value_json is defined and value_json is mapping "
    "and value_json.click is defined else '' }}"
)
"""The event's click; '' for a sensor event or a payload that is not a JSON object."""
_STATE_TEMPLATE = "{{ value_json.state }}"
_ATTRIBUTES_TEMPLATE = (
    '{{ {"order_id": value_json.order_id, "event_id": value_json.event_id, '
    '"reason": value_json.reason, "ts": value_json.ts} | tojson }}'
)
_AVAILABILITY_TEMPLATE = "{{ 'online' if value_json.online else 'offline' }}"


@dataclass(frozen=True)
class HaDevice:
    """What Home Assistant is told about one enabled device."""

    device_id: str
    name: str
    fw: str
    """The firmware the device's last presence reported ('' before its first)."""
    sensor_only: bool = False
    """No click is mapped and sensors are: no button triggers."""


def is_valid_prefix(prefix: str) -> bool:
    """A discovery prefix: topic levels of ``[A-Za-z0-9_-]``, no wildcard, no empty level."""
    return len(prefix) <= 100 and _PREFIX_RE.fullmatch(prefix) is not None


def node_device_id(prefix: str, topic: str) -> str | None:
    """The device of one of our config topics (``<prefix>/<component>/edgeorder_<id>/<obj>/
    config``), or None for any other topic."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 4 or parts[3] != "config" or not parts[1].startswith(NODE_PREFIX):
        return None
    device_id = parts[1][len(NODE_PREFIX) :]
    return device_id if p.is_valid_device_id(device_id) else None


def config_filters(prefix: str) -> tuple[str, ...]:
    """Subscriptions that show ingest every config it (or an earlier run) left retained."""
    return (f"{prefix}/device_automation/+/+/config", f"{prefix}/sensor/+/+/config")


def _device_block(device: HaDevice, dashboard_url: str | None) -> dict[str, Any]:
    block: dict[str, Any] = {
        "identifiers": [f"{NODE_PREFIX}{device.device_id}"],
        "name": device.name or device.device_id,
        "manufacturer": MANUFACTURER,
        "model": "sensor" if device.sensor_only else "button",
    }
    if device.fw:
        block["sw_version"] = device.fw
    if dashboard_url:
        block["configuration_url"] = f"{dashboard_url.rstrip('/')}/devices/{device.device_id}"
    return block


def _trigger(device: HaDevice, click: p.Click, common: dict[str, Any]) -> dict[str, Any]:
    return {
        "automation_type": "trigger",
        "type": TRIGGER_TYPES[click],
        "subtype": SUBTYPE,
        "topic": p.device_topic(device.device_id, p.Channel.EVENTS),
        "value_template": _CLICK_TEMPLATE,
        "payload": click.value,
        "qos": 1,
        **common,
    }


def _sensor(device: HaDevice, common: dict[str, Any]) -> dict[str, Any]:
    status = p.device_topic(device.device_id, p.Channel.STATUS)
    return {
        "name": "Last order",
        "unique_id": f"{NODE_PREFIX}{device.device_id}_order_state",
        "state_topic": status,
        "value_template": _STATE_TEMPLATE,
        "json_attributes_topic": status,
        "json_attributes_template": _ATTRIBUTES_TEMPLATE,
        "device_class": "enum",
        "options": [s.value for s in p.State],
        "icon": "mdi:package-variant",
        "qos": 1,
        "availability": [
            {
                "topic": p.device_topic(device.device_id, p.Channel.PRESENCE),
                "value_template": _AVAILABILITY_TEMPLATE,
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ],
        **common,
    }


def discovery_messages(
    device: HaDevice, *, prefix: str, version: str, dashboard_url: str | None = None
) -> dict[str, dict[str, Any]]:
    """Every discovery config of ``device``: topic -> payload (to publish retained)."""
    common = {
        "device": _device_block(device, dashboard_url),
        "origin": {"name": "edgeorder", "sw_version": version},
    }
    node = f"{prefix}/{{component}}/{NODE_PREFIX}{device.device_id}"
    messages: dict[str, dict[str, Any]] = {}
    if not device.sensor_only:
        for click in p.Click:
            topic = node.format(component="device_automation") + f"/{click.value}_press/config"
            messages[topic] = _trigger(device, click, common)
    messages[node.format(component="sensor") + "/order_state/config"] = _sensor(device, common)
    return messages


def encode(payload: dict[str, Any]) -> bytes:
    """A config as published: compact JSON, keys sorted (equal configs are equal bytes)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
