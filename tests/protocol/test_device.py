"""The device's pydantic-free codec (protocol.device) against the pydantic models: the same
payloads accepted with the same values, the same ones refused, the same bytes published."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edgeorder import protocol as p
from edgeorder.protocol import device as d

ULID = "01JDZ8Q7M3N4P5R6S7T8V9W0XY"

# -- value strategies: valid values, near misses, and other JSON types ---------------------

ulids = st.from_regex(r"[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}", fullmatch=True)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
aware = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.one_of(
        st.just(UTC),
        st.builds(timezone, st.integers(-23 * 60, 23 * 60).map(lambda m: timedelta(minutes=m))),
    ),
)


@st.composite
def ts_spellings(draw: st.DrawFn) -> str:
    """RFC 3339 and its neighbours: separators, fractions, zones, out-of-range fields."""
    year = draw(st.integers(0, 9999))
    parts = [f"{year:04d}-{draw(st.integers(0, 13)):02d}-{draw(st.integers(0, 32)):02d}"]
    if draw(st.booleans()) or True:
        parts.append(draw(st.sampled_from(["T", "t", " ", "_", "x", ""])))
        parts.append(f"{draw(st.integers(0, 25)):02d}:{draw(st.integers(0, 61)):02d}")
        if draw(st.booleans()):
            parts.append(f":{draw(st.integers(0, 61)):02d}")
            if draw(st.booleans()):
                parts.append(draw(st.sampled_from([".", ","])))
                parts.append(draw(st.text("0123456789", min_size=0, max_size=10)))
    zone = draw(
        st.one_of(
            st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "UTC", "+24:00", "+23:59"]),
            st.builds(
                lambda s, h, m, colon: f"{s}{h:02d}{':' if colon else ''}{m:02d}",
                st.sampled_from("+-"),
                st.integers(0, 25),
                st.integers(0, 61),
                st.booleans(),
            ),
            st.builds(lambda s, h: f"{s}{h:02d}", st.sampled_from("+-"), st.integers(0, 25)),
        )
    )
    return "".join(parts) + zone


timestamps = st.one_of(aware.map(p.format_ts), aware.map(datetime.isoformat), ts_spellings())


def maybe(field: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the field's own values, sometimes anything JSON."""
    return st.one_of(field, field, field, json_values)


@st.composite
def objects(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """A JSON object with some of ``fields`` (each maybe wrong) and maybe an unknown key."""
    out = {}
    for key, strategy in fields.items():
        if draw(st.integers(0, 9)) > 0:
            out[key] = draw(maybe(strategy))
    if draw(st.booleans()):
        out[draw(st.sampled_from(["extra", "note", "V"]))] = draw(json_values)
    return out


versions = st.sampled_from([1, 1, 1, 2, 0, True, 1.0, "1"])
status_objects = objects(
    {
        "v": versions,
        "event_id": st.one_of(ulids, st.none(), st.just(ULID + "\n"), st.just("\u017f" * 26)),
        "state": st.one_of(st.sampled_from([s.value for s in p.State]), st.just("Ordered")),
        "order_id": st.one_of(st.none(), st.text(max_size=10)),
        "reason": st.one_of(st.none(), st.text(max_size=3), st.just("r" * 500), st.just("r" * 501)),
        "ts": timestamps,
    }
)

actions = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("reorder"), "sku": st.text(min_size=0, max_size=65)},
        optional={"quantity": st.one_of(st.integers(-1, 1001), json_scalars)},
    ),
    st.fixed_dictionaries({"type": st.sampled_from(["cancel_last", "none", "other", 1])}),
    st.fixed_dictionaries({"sku": st.just("x")}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["none", "reorder"]), "sku": st.just("x"), "extra": json_values}
    ),
    json_scalars,
)
mappings = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "single": actions,
            "double": actions,
            "long": actions,
            "sensors": st.one_of(
                st.dictionaries(st.text(max_size=65), actions, max_size=3),
                st.dictionaries(st.text(min_size=1, max_size=4), actions, min_size=33, max_size=34),
                json_scalars,
            ),
            "other": json_values,
        },
    ),
    json_scalars,
)
config_objects = objects(
    {
        "v": versions,
        "version": st.one_of(st.integers(-1, 2**64), st.just(p.INT64_MAX)),
        "mapping": mappings,
        "env": st.sampled_from(["dev", "prod", "Prod"]),
        "double_window_ms": st.one_of(st.none(), st.integers(0, 2100)),
        "long_press_ms": st.one_of(st.none(), st.integers(0, 10100)),
    }
)


def outcome(decode: Any, raw: bytes) -> Any:
    try:
        return decode(raw)
    except p.PayloadError as exc:
        return ("refused", exc.code)


def pydantic_status(raw: bytes) -> Any:
    status = p.decode(p.Status, raw)
    return d.DeviceStatus(status.event_id, status.state, status.ts, status.order_id, status.reason)


def pydantic_config(raw: bytes) -> Any:
    c = p.decode(p.DeviceConfig, raw)
    return d.DesiredConfig(c.version, c.env, c.double_window_ms, c.long_press_ms)


# -- decoding: status and config ------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(status_objects)
@example({"event_id": None, "state": "accepted", "ts": "0001-01-01T00:00:00,0Z"})  # a comma
def test_status_decodes_as_the_model_does(data: dict[str, Any]) -> None:
    raw = json.dumps(data, ensure_ascii=False).encode()
    assert outcome(d.decode_status, raw) == outcome(pydantic_status, raw)


@settings(max_examples=400, deadline=None)
@given(config_objects)
def test_config_decodes_as_the_model_does(data: dict[str, Any]) -> None:
    raw = json.dumps(data, ensure_ascii=False).encode()
    assert outcome(d.decode_config, raw) == outcome(pydantic_config, raw)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=40),
        st.text(max_size=40).map(str.encode),
        json_values.map(lambda v: json.dumps(v).encode()),
    )
)
def test_junk_is_refused_alike(raw: bytes) -> None:
    assert outcome(d.decode_status, raw) == outcome(pydantic_status, raw)
    assert outcome(d.decode_config, raw) == outcome(pydantic_config, raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"v":1,"event_id":null,"state":"rejected","ts":NaN}',
        b"[" * 5000,
        b'{"version": 1, "env": "dev"',
        b"\xff\xfe",
        b'{"v":1,"event_id":null,"state":"rejected","ts":"2026-11-22T13:00:00Z","x":"\\ud800"}',
        b'{"v":1,"event_id":null,"state":"rejected","ts":"2026-11-22T13:00:00Z","x":"\\ud83d\\ude00"}',
        b'{"version": 1, "x": "\\uDC00"}',
        b'{"event_id":"' + ULID.encode() + b'","state":"ordered","ts":"2026-11-22T13:00:00Z"}',
    ],
)
def test_edge_payloads(raw: bytes) -> None:
    assert outcome(d.decode_status, raw) == outcome(pydantic_status, raw)
    assert outcome(d.decode_config, raw) == outcome(pydantic_config, raw)


# -- building: the bytes the models write ---------------------------------------------------

texts64 = st.one_of(st.text(max_size=64), st.text(min_size=65, max_size=66))
device_ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True), st.sampled_from(["", "a b", "a\n"])
)
ints = st.one_of(st.integers(0, p.INT64_MAX), st.integers(-3, -1), st.just(p.INT64_MAX + 1))
readings = st.builds(
    lambda name, value: (name, value),
    st.one_of(st.text(min_size=1, max_size=64), st.sampled_from(["", "n" * 65])),
    st.one_of(st.floats(), st.integers(-(2**40), 2**40)),
)


def model_event(fields: dict[str, Any]) -> Any:
    try:
        reading = fields.pop("reading")
        sensor = None if reading is None else p.SensorReading(name=reading[0], value=reading[1])
        return p.encode(p.Event(**fields, sensor=sensor))
    except ValidationError:
        return "refused"


def device_event(fields: dict[str, Any]) -> Any:  # values of every type, on purpose
    try:
        reading = fields.pop("reading")
        sensor = None if reading is None else d.Reading(*reading)
        return d.DeviceEvent(**fields, sensor=sensor).encode()
    except ValueError:
        return "refused"


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "event_id": st.one_of(ulids, st.just("x")),
            "device_id": device_ids,
            "seq": ints,
            "kind": st.sampled_from(list(p.EventKind)),
            "click": st.one_of(st.none(), st.sampled_from(list(p.Click))),
            "reading": st.one_of(st.none(), readings),
            "ts": aware,
            "fw": texts64,
        }
    )
)
def test_event_bytes_as_the_model_writes_them(fields: dict[str, Any]) -> None:
    ours, theirs = device_event(dict(fields)), model_event(dict(fields))
    if ours == "refused" or theirs == "refused" or fields["reading"] is None:
        assert ours == theirs
    else:  # floats: Python's repr and pydantic's differ in spelling (1e+16 / 1e16), not value
        assert p.decode(p.Event, ours) == p.decode(p.Event, theirs)


def test_event_values_and_trigger() -> None:
    ts = datetime(2026, 11, 22, 14, 0, tzinfo=timezone(timedelta(hours=1)))
    event = d.DeviceEvent(ULID.lower(), "k-1", 3, p.EventKind.PRESS, ts, click=p.Click.LONG)
    assert (event.event_id, event.ts, event.trigger) == (ULID, ts.astimezone(UTC), "long")
    sensor = d.DeviceEvent(ULID, "k-1", 4, p.EventKind.SENSOR, ts, sensor=d.Reading("level", 3))
    assert sensor.trigger == "sensor:level"
    assert sensor.sensor is not None
    assert sensor.sensor.value == 3.0
    for bad in (math.nan, math.inf, True, "1"):
        with pytest.raises(ValueError, match="sensor value"):
            d.Reading("level", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone"):
        d.DeviceEvent(ULID, "k-1", 1, p.EventKind.PRESS, datetime(2026, 1, 1), click=p.Click.SINGLE)


@settings(max_examples=200, deadline=None)
@given(
    online=st.one_of(st.booleans(), st.just(1)),
    fw=texts64,
    ts=aware,
    counts=st.tuples(ints, ints, ints),
    extras=st.dictionaries(
        # "v" aside: the model would take it as the version; telemetry_payload always writes 1
        st.one_of(
            st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True), st.text(max_size=3)
        ).filter(lambda key: key != "v"),
        st.one_of(st.integers(-(2**64), 2**64), st.floats(), st.booleans()),
        max_size=40,
    ),
)
def test_presence_telemetry_config_reported_bytes(
    online: Any, fw: str, ts: datetime, counts: tuple[int, int, int], extras: dict[str, Any]
) -> None:
    def both(ours: Any, theirs: Any) -> tuple[Any, Any]:
        out = []
        for build in (ours, theirs):
            try:
                out.append(build())
            except (ValueError, ValidationError):
                out.append("refused")
        return out[0], out[1]

    assert (
        len(
            set(
                both(
                    lambda: d.presence_payload(online=online, fw=fw, ts=ts),
                    lambda: p.encode(p.Presence(online=online, fw=fw, ts=ts)),
                )
            )
        )
        == 1
    )
    uptime, depth, dropped = counts
    ours, theirs = both(
        lambda: d.telemetry_payload(
            uptime_s=uptime, queue_depth=depth, fw=fw, dropped=dropped, ts=ts, extras=extras
        ),
        lambda: p.encode(
            p.Telemetry.model_validate(
                {
                    **extras,
                    "uptime_s": uptime,
                    "queue_depth": depth,
                    "fw": fw,
                    "dropped": dropped,
                    "ts": ts,
                }
            )
        ),
    )
    if "refused" in (ours, theirs):
        assert ours == theirs
    else:
        assert json.loads(ours) == json.loads(theirs)
        assert list(json.loads(ours)) == list(json.loads(theirs))
    assert (
        len(
            set(
                both(
                    lambda: d.config_reported_payload(version=uptime, ts=ts),
                    lambda: p.encode(p.ConfigReported(version=uptime, ts=ts)),
                )
            )
        )
        == 1
    )


@settings(max_examples=300, deadline=None)
@given(
    at=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
)
def test_ulids_as_python_ulid_makes_and_reads_them(at: datetime) -> None:
    from ulid import ULID

    made = p.new_ulid(at)
    assert p.is_ulid(made)
    theirs = ULID.from_str(made)
    assert theirs.timestamp == p.ulid_time(made) == int(at.timestamp() * 1000) / 1000
    assert str(ULID.from_datetime(at))[:10] == made[:10]
    assert p.ulid_time(made.lower()) == p.ulid_time(made)
    with pytest.raises(ValueError, match="not a ULID"):
        p.ulid_time(made[:-1])
