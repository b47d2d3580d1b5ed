"""Home Assistant discovery payloads, field by field against Home Assistant's documented schema
(https://www.home-assistant.io/integrations/device_trigger.mqtt/,
https://www.home-assistant.io/integrations/sensor.mqtt/, "MQTT discovery": device and origin
blocks). The templates are rendered with Jinja2, as Home Assistant renders them, against the
payloads the protocol really sends."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jinja2 import Environment, StrictUndefined, Undefined

from edgeorder import protocol as p
from edgeorder.ingest.domain import homeassistant as ha

# --- the documented schema (full key names; abbreviations are not used) --------------------

TRIGGER_REQUIRED = {"automation_type", "topic", "type", "subtype", "device"}
TRIGGER_ALLOWED = TRIGGER_REQUIRED | {"payload", "qos", "value_template", "origin"}
TRIGGER_TYPES = {  # "Entries supported by the frontend"
    "button_short_press", "button_short_release", "button_long_press", "button_long_release",
    "button_double_press", "button_triple_press", "button_quadruple_press",
    "button_quintuple_press",
}  # fmt: skip
TRIGGER_SUBTYPES = {
    "turn_on", "turn_off", "button_1", "button_2", "button_3", "button_4", "button_5", "button_6"
}  # fmt: skip
SENSOR_REQUIRED = {"state_topic"}
SENSOR_ALLOWED = SENSOR_REQUIRED | {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "device", "device_class", "enabled_by_default", "encoding", "entity_category",
    "entity_picture", "expire_after", "force_update", "icon", "json_attributes_template",
    "json_attributes_topic", "last_reset_value_template", "name", "default_entity_id",
    "options", "payload_available", "payload_not_available", "platform", "qos",
    "state_class", "suggested_display_precision", "unique_id", "unit_of_measurement",
    "value_template", "origin",
}  # fmt: skip
AVAILABILITY_ALLOWED = {"topic", "payload_available", "payload_not_available", "value_template"}
DEVICE_ALLOWED = {
    "configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
    "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device",
}  # fmt: skip
ORIGIN_ALLOWED = {"name", "sw_version", "support_url"}

DEVICE = ha.HaDevice("kitchen-01", "Kitchen coffee", "1.4.2")
NOW = p.utcnow()


def messages(device: ha.HaDevice = DEVICE, **kw: Any) -> dict[str, dict[str, Any]]:
    kw.setdefault("prefix", "homeassistant")
    kw.setdefault("version", "0.1.0")
    return ha.discovery_messages(device, **kw)


def render(template: str, payload: bytes) -> str:
    """Home Assistant's rendering of an MQTT ``value_template``: ``value`` and ``value_json``."""
    env = Environment(undefined=Undefined, autoescape=False)
    try:
        value_json = json.loads(payload)
    except ValueError:
        value_json = None
    context = {"value": payload.decode()}
    if value_json is not None:
        context["value_json"] = value_json
    return env.from_string(template).render(**context).strip()


def check_device(block: dict[str, Any]) -> None:
    assert set(block) <= DEVICE_ALLOWED
    assert block["identifiers"] == ["edgeorder_kitchen-01"]  # at least one identifier
    assert block["name"] == "Kitchen coffee"
    assert block["manufacturer"] == "edgeorder"
    assert block["model"] == "button"
    assert block["sw_version"] == "1.4.2"  # the presence's fw
    assert all(isinstance(v, str) for k, v in block.items() if k != "identifiers")


def check_origin(block: dict[str, Any]) -> None:
    assert set(block) <= ORIGIN_ALLOWED
    assert block["name"] == "edgeorder"
    assert block["sw_version"] == "0.1.0"


def test_topics_one_trigger_per_click_and_one_sensor() -> None:
    assert sorted(messages()) == [
        "homeassistant/device_automation/edgeorder_kitchen-01/double_press/config",
        "homeassistant/device_automation/edgeorder_kitchen-01/long_press/config",
        "homeassistant/device_automation/edgeorder_kitchen-01/single_press/config",
        "homeassistant/sensor/edgeorder_kitchen-01/order_state/config",
    ]
    other = messages(prefix="ha/test")
    assert all(topic.startswith("ha/test/") for topic in other)


@pytest.mark.parametrize(
    ("click", "ha_type"),
    [
        (p.Click.SINGLE, "button_short_press"),
        (p.Click.DOUBLE, "button_double_press"),
        (p.Click.LONG, "button_long_press"),
    ],
)
def test_device_trigger_fields(click: p.Click, ha_type: str) -> None:
    topic = f"homeassistant/device_automation/edgeorder_kitchen-01/{click.value}_press/config"
    config = messages()[topic]
    assert TRIGGER_REQUIRED <= set(config) <= TRIGGER_ALLOWED
    assert config["automation_type"] == "trigger"
    assert config["type"] == ha_type
    assert config["type"] in TRIGGER_TYPES
    assert config["subtype"] in TRIGGER_SUBTYPES
    assert config["topic"] == p.device_topic("kitchen-01", p.Channel.EVENTS)
    assert config["qos"] in (0, 1, 2)
    assert isinstance(config["payload"], str)
    check_device(config["device"])
    check_origin(config["origin"])


def test_trigger_types_and_subtypes_are_unique_per_device() -> None:
    triggers = [c for t, c in messages().items() if "/device_automation/" in t]
    assert len({(c["type"], c["subtype"]) for c in triggers}) == len(triggers) == 3


def event(click: p.Click | None) -> bytes:
    values: dict[str, Any] = {
        "event_id": "01JDZ8Q7M3N4P5R6S7T8V9W0XY",
        "device_id": "kitchen-01",
        "seq": 1,
        "ts": NOW,
        "fw": "1.4.2",
    }
    if click is None:
        values.update(kind=p.EventKind.SENSOR, sensor=p.SensorReading(name="level", value=0.2))
    else:
        values.update(kind=p.EventKind.PRESS, click=click)
    return p.encode(p.Event(**values))


@pytest.mark.parametrize("click", list(p.Click))
def test_a_press_fires_exactly_its_own_trigger(click: p.Click) -> None:
    """Home Assistant fires a trigger when its value_template renders to its payload."""
    fired = [
        c["type"]
        for c in messages().values()
        if "automation_type" in c and render(c["value_template"], event(click)) == c["payload"]
    ]
    assert fired == [ha.TRIGGER_TYPES[click]]


@pytest.mark.parametrize("payload", [event(None), b"not json", b"{}", b""])
def test_sensor_events_and_garbage_fire_nothing(payload: bytes) -> None:
    for config in messages().values():
        if "automation_type" in config:
            assert render(config["value_template"], payload) != config["payload"]


def test_sensor_fields_state_and_attributes_from_the_status_topic() -> None:
    config = messages()["homeassistant/sensor/edgeorder_kitchen-01/order_state/config"]
    assert SENSOR_REQUIRED <= set(config) <= SENSOR_ALLOWED
    status_topic = p.device_topic("kitchen-01", p.Channel.STATUS)
    assert config["state_topic"] == config["json_attributes_topic"] == status_topic
    assert config["unique_id"] == "edgeorder_kitchen-01_order_state"
    assert config["device_class"] == "enum"
    assert config["options"] == [s.value for s in p.State]
    assert "state_class" not in config  # not allowed with an enum sensor
    assert config["qos"] in (0, 1, 2)
    check_device(config["device"])
    check_origin(config["origin"])
    status = p.encode(
        p.Status(
            event_id="01JDZ8Q7M3N4P5R6S7T8V9W0XY", state=p.State.ORDERED, order_id="100", ts=NOW
        )
    )
    assert render(config["value_template"], status) == "ordered"
    assert render(config["value_template"], status) in config["options"]
    attributes = json.loads(render(config["json_attributes_template"], status))
    assert attributes["order_id"] == "100"
    assert attributes["event_id"] == "01JDZ8Q7M3N4P5R6S7T8V9W0XY"
    assert attributes["reason"] is None


@pytest.mark.parametrize(("online", "expected"), [(True, "online"), (False, "offline")])
def test_sensor_availability_from_presence(online: bool, expected: str) -> None:
    config = messages()["homeassistant/sensor/edgeorder_kitchen-01/order_state/config"]
    assert "availability_topic" not in config  # "must not be used together with availability"
    (entry,) = config["availability"]
    assert set(entry) <= AVAILABILITY_ALLOWED
    assert entry["topic"] == p.device_topic("kitchen-01", p.Channel.PRESENCE)
    presence = p.encode(p.Presence(online=online, fw="1.4.2", ts=NOW))
    rendered = render(entry["value_template"], presence)
    assert rendered == entry["payload_available" if online else "payload_not_available"]
    assert rendered == expected


def test_templates_use_only_the_fields_the_protocol_sends() -> None:
    """Strict rendering: a renamed protocol field breaks this test, not Home Assistant."""
    env = Environment(undefined=StrictUndefined)
    config = messages()["homeassistant/sensor/edgeorder_kitchen-01/order_state/config"]
    status = json.loads(
        p.encode(p.Status(event_id=None, state=p.State.REJECTED, reason="oversize", ts=NOW))
    )
    env.from_string(config["value_template"]).render(value_json=status)
    env.from_string(config["json_attributes_template"]).render(value_json=status)
    presence = json.loads(p.encode(p.Presence(online=True, ts=NOW)))
    env.from_string(config["availability"][0]["value_template"]).render(value_json=presence)


def test_device_block_without_fw_and_with_a_dashboard() -> None:
    device = ha.HaDevice("d-2", "", "")
    config = messages(device, dashboard_url="https://ops.example/")
    block = next(iter(config.values()))["device"]
    assert block["name"] == "d-2"  # no name: the id
    assert "sw_version" not in block
    assert block["configuration_url"] == "https://ops.example/devices/d-2"


def test_a_sensor_only_device_gets_no_button_triggers() -> None:
    config = messages(ha.HaDevice("tank-1", "Tank", "1", sensor_only=True))
    assert list(config) == ["homeassistant/sensor/edgeorder_tank-1/order_state/config"]
    assert (
        config["homeassistant/sensor/edgeorder_tank-1/order_state/config"]["device"]["model"]
        == "sensor"
    )


def test_encoding_is_stable_json() -> None:
    config = messages()
    first = {t: ha.encode(m) for t, m in config.items()}
    assert first == {t: ha.encode(m) for t, m in messages().items()}
    assert all(json.loads(b) == config[t] for t, b in first.items())


@pytest.mark.parametrize(
    ("prefix", "ok"),
    [
        ("homeassistant", True),
        ("ha/test_1", True),
        ("", False),
        ("ha/", False),
        ("/ha", False),
        ("ha//x", False),
        ("ha/#", False),
        ("ha/+/x", False),
        ("h a", False),
        ("x" * 101, False),
    ],
)
def test_prefix_validation(prefix: str, ok: bool) -> None:
    assert ha.is_valid_prefix(prefix) is ok


def test_node_device_id_reads_only_our_config_topics() -> None:
    topic = "homeassistant/sensor/edgeorder_kitchen-01/order_state/config"
    assert ha.node_device_id("homeassistant", topic) == "kitchen-01"
    assert ha.node_device_id("homeassistant", "homeassistant/sensor/zigbee_x/a/config") is None
    assert ha.node_device_id("homeassistant", "homeassistant/status") is None
    assert ha.node_device_id("other", topic) is None
    assert ha.node_device_id("homeassistant", "homeassistant/sensor/edgeorder_/a/config") is None
