"""The wire contract's limits: what a payload may carry so that the backend can store it and
answer it (issue 11: values that passed validation and then failed later)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from edgeorder import protocol as p
from edgeorder.protocol.codec import peek_event_id

EID = "01JDZ8Q7M3N4P5R6S7T8V9W0XY"


def event(**over: Any) -> bytes:
    data: dict[str, Any] = {
        "v": 1,
        "event_id": EID,
        "device_id": "k-01",
        "seq": 1,
        "kind": "press",
        "click": "single",
        "ts": "2026-11-22T13:00:00.123Z",
    }
    data.update(over)
    return json.dumps(data).encode()


def reason(raw: bytes, model: type[BaseModel] = p.Event) -> tuple[str, str]:
    with pytest.raises(p.PayloadError) as caught:
        p.decode(model, raw)
    return caught.value.code, caught.value.detail


@pytest.mark.parametrize("v", [True, 1.0, "1", 2, None])
def test_only_the_integer_1_is_version_1(v: object) -> None:
    code, detail = reason(event(v=v))
    assert (code, detail.split(":")[0]) == ("invalid", "v")


def test_integers_stop_at_int64() -> None:
    assert p.decode(p.Event, event(seq=p.INT64_MAX)).seq == p.INT64_MAX
    assert reason(event(seq=p.INT64_MAX + 1))[1].startswith("seq:")
    too_big = b'{"v":1,"version":9223372036854775808,"ts":"2026-01-01T00:00:00Z"}'
    assert reason(too_big, p.ConfigReported)[1].startswith("version:")


@pytest.mark.parametrize(
    "ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-11-22T13:00:00"]
)
def test_a_timestamp_must_be_representable_in_utc(ts: str) -> None:
    code, detail = reason(event(ts=ts))
    assert code == "invalid"
    assert detail.startswith("ts:")


@pytest.mark.parametrize(
    "payload",
    [b"[" * 1000 + b"]" * 1000, b'{"":' * 800 + b"1" + b"}" * 800, b"[" * 100_000],
    ids=["list", "object", "unclosed"],
)
def test_deep_nesting_is_malformed_json_not_a_recursion_error(payload: bytes) -> None:
    assert reason(payload)[0] == "malformed_json"
    assert peek_event_id(payload) is None


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (EID, True),
        (EID.lower(), True),
        ("7" + EID[1:], True),
        ("8" + EID[1:], False),  # past a ULID's 48-bit time
        (EID[:-1] + "U", False),
        (EID + "\n", False),  # "$" of a regex alone would take it
        ("0" + "ß" * 12 + "A", False),  # "ß".upper() is "SS": 26 valid characters
        ("0" + "\u017f" * 24 + "A", False),  # the long s upper-cases to "S"
        ("É" * 26, False),
    ],
)
def test_what_counts_as_a_ulid(value: str, valid: bool) -> None:
    assert p.is_ulid(value) is valid
    assert (peek_event_id(event(event_id=value, seq="x")) is not None) is valid


def test_a_device_id_is_matched_in_full() -> None:
    assert p.is_valid_device_id("dev-1")
    assert not p.is_valid_device_id("dev-1\n")
    with pytest.raises(p.TopicError):
        p.parse_device_topic("edgeorder/v1/devices/dev-1\n/events")


def test_telemetry_keeps_only_finite_int64_numbers_as_extras() -> None:
    extras = {f"n{i}": i for i in range(p.TELEMETRY_EXTRAS_MAX + 5)}
    raw = json.dumps(
        {"v": 1, "uptime_s": 1, "queue_depth": 0, "bool": True, "big": 2**64, **extras}
    ).encode()
    raw = raw[:-1] + b', "nan": NaN, "inf": 1e999, "bad name!": 1, "list": [1]}'
    telemetry = p.decode(p.Telemetry, raw)
    assert telemetry.model_extra == {f"n{i}": i for i in range(p.TELEMETRY_EXTRAS_MAX)}


def test_a_heartbeat_with_its_timestamp_and_extras_decodes_as_the_agent_sends_it() -> None:
    sent = p.Telemetry.model_validate(
        {
            "uptime_s": 5,
            "queue_depth": 1,
            "ts": datetime(2026, 12, 1, 12, 0, 0, 123000, UTC),
            "sensor.level": 0.42,
        }
    )
    got = p.decode(p.Telemetry, p.encode(sent))
    assert got.ts == sent.ts
    assert got.model_extra == {"sensor.level": 0.42}


def test_a_mapping_holds_a_bounded_number_of_sensors() -> None:
    sensors = {f"s{i}": {"type": "none"} for i in range(p.SENSORS_MAX)}
    assert len(p.ButtonMapping.model_validate({"sensors": sensors}).sensors) == p.SENSORS_MAX
    with pytest.raises(ValidationError):
        p.ButtonMapping.model_validate({"sensors": {**sensors, "one-more": {"type": "none"}}})
    with pytest.raises(ValidationError):
        p.ButtonMapping.model_validate({"sensors": {"x" * 65: {"type": "none"}}})


MODELS: list[type[BaseModel]] = [p.Event, p.Presence, p.Telemetry, p.ConfigReported, p.Status]


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    raw=st.binary(max_size=200)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["v", "event_id", "seq", "ts", "version", "online", "x"]),
                inner,
                max_size=5,
            )
        ),
        max_leaves=10,
    ).map(lambda value: json.dumps(value).encode()),
)
def test_decoding_raises_nothing_but_payload_error(model: type[BaseModel], raw: bytes) -> None:
    try:
        decoded = p.decode(model, raw, max_bytes=p.MAX_EVENT_BYTES)
    except p.PayloadError:
        return
    p.encode(decoded)  # whatever decodes can be encoded again


def test_a_huge_topic_makes_a_short_error() -> None:
    topic = "edgeorder/v1/devices/" + "y" * 60_000 + "/events"
    with pytest.raises(p.TopicError) as caught:
        p.parse_device_topic(topic)
    assert len(str(caught.value)) < 300
    assert "60028 characters" in str(caught.value)
