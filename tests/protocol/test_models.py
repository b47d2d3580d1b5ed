from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from edgeorder import protocol as p
from edgeorder.protocol.codec import peek_event_id

EID = "01JDZ8Q7M3N4P5R6S7T8V9W0XY"


def press(**over: object) -> dict[str, object]:
    data: dict[str, object] = {
        "v": 1,
        "event_id": EID,
        "device_id": "kitchen-01",
        "seq": 42,
        "kind": "press",
        "click": "single",
        "ts": "2026-11-22T13:00:00.123Z",
        "fw": "0.1.0",
    }
    data.update(over)
    return data


def raw(data: dict[str, object]) -> bytes:
    return json.dumps(data).encode()


def test_event_round_trips_in_the_documented_shape() -> None:
    event = p.decode_event(raw(press()), topic_device_id="kitchen-01")
    assert event.click is p.Click.SINGLE
    assert event.ts == datetime(2026, 11, 22, 13, 0, 0, 123000, tzinfo=UTC)
    assert json.loads(p.encode(event)) == press()


def test_sensor_event_has_no_click_on_the_wire() -> None:
    data = press(kind="sensor", sensor={"name": "level", "value": 3}, click=None)
    del data["click"]
    event = p.decode_event(raw(data), topic_device_id="kitchen-01")
    assert event.trigger == "sensor:level"
    assert "click" not in json.loads(p.encode(event))


def test_unknown_fields_are_ignored() -> None:
    event = p.decode_event(raw(press(extra="x")), topic_device_id="kitchen-01")
    assert not hasattr(event, "extra")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (press(seq="42"), "seq"),
        (press(ts=1700000000), "ts"),
        (press(ts="2026-11-22T13:00:00"), "ts"),
        (press(event_id="not-a-ulid"), "event_id"),
        (press(kind="press", click=None), "press carries a click"),
        (press(click="triple"), "click"),
        (press(v=2), "v"),
        (press(device_id="kitchen 01"), "device_id"),
    ],
)
def test_wrong_types_are_rejected_naming_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(p.PayloadError) as info:
        p.decode_event(raw(data), topic_device_id="kitchen-01")
    assert info.value.code == "invalid"
    assert field in info.value.detail


def test_missing_field_is_named() -> None:
    data = press()
    del data["seq"]
    with pytest.raises(p.PayloadError, match="seq"):
        p.decode_event(raw(data), topic_device_id="kitchen-01")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\xff\xfe", "not_utf8"),
        (b"{not json", "malformed_json"),
        (b"[1, 2]", "invalid"),
        (b"{" + b" " * p.MAX_EVENT_BYTES + b"}", "oversize"),
    ],
)
def test_undecodable_payloads_have_codes(payload: bytes, code: str) -> None:
    with pytest.raises(p.PayloadError) as info:
        p.decode_event(payload, topic_device_id="kitchen-01")
    assert info.value.code == code


def test_spoofed_device_id_is_a_mismatch() -> None:
    with pytest.raises(p.PayloadError) as info:
        p.decode_event(raw(press(device_id="other-02")), topic_device_id="kitchen-01")
    assert info.value.code == "device_mismatch"


def test_peek_event_id_reads_an_invalid_payload() -> None:
    assert peek_event_id(raw(press(seq="x"))) == EID
    assert peek_event_id(b"\xff") is None


def test_status_serialises_reason_null_and_z_timestamp() -> None:
    status = p.Status(
        event_id=EID,
        state=p.State.ORDERED,
        order_id="100",
        ts=datetime(2026, 11, 22, 13, 0, 0, 180000, tzinfo=UTC),
    )
    assert json.loads(p.encode(status)) == {
        "v": 1,
        "event_id": EID,
        "state": "ordered",
        "order_id": "100",
        "reason": None,
        "ts": "2026-11-22T13:00:00.180Z",
    }


def test_final_states() -> None:
    assert p.State.DELIVERED.is_final
    assert p.State.REJECTED.is_final
    assert not p.State.ACCEPTED.is_final
    assert not p.State.SHIPPED.is_final


def test_mapping_actions() -> None:
    mapping = p.ButtonMapping(
        single=p.ReorderAction(sku="COFFEE", quantity=2),
        sensors={"level": p.ReorderAction(sku="WATER")},
    )
    assert mapping.action_for("single") == p.ReorderAction(sku="COFFEE", quantity=2)
    assert mapping.action_for("long") == p.CancelLastAction()
    assert mapping.action_for("double") == p.NoAction()
    assert mapping.action_for("sensor:level") == p.ReorderAction(sku="WATER")
    assert mapping.action_for("sensor:other") == p.NoAction()


def test_device_config_round_trip() -> None:
    cfg = p.DeviceConfig(version=3, mapping=p.ButtonMapping(single=p.ReorderAction(sku="A")))
    assert p.decode(p.DeviceConfig, p.encode(cfg)) == cfg


def test_json_schemas_cover_every_payload() -> None:
    from edgeorder.protocol.models import json_schemas

    schemas = json_schemas()
    assert set(schemas) == {
        "Event",
        "Status",
        "Presence",
        "Telemetry",
        "DeviceConfig",
        "ConfigReported",
    }
    assert schemas["Event"]["properties"]["event_id"]["type"] == "string"
