"""The agent's stdlib config reader (agent.config) against the pydantic models it replaced on
the device (agent.config_model, still the source of the JSON Schema): the same TOML data
accepted with the same values, the same refused at the same fields."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edgeorder.agent import config as stdlib
from edgeorder.agent import config_model as model

NUMERIC_TEXT = [
    "5",
    " 7 ",
    "5.0",
    "5.",
    "1_0",
    "1__0",
    "1e3",
    "inf",
    "-inf",
    "nan",
    "+5",
    "-0",
    "0x10",
    "١٢",
    "",
    "x",
    "20",
    "0.5",
    " 60 ",
    "1.5e1",
]
BOOL_TEXT = ["true", "True", "yes", "off", "T", "n", "N", "2", " 1 ", "on", "nope"]

junk = st.one_of(
    st.sampled_from(NUMERIC_TEXT + BOOL_TEXT),
    st.just(date(2020, 1, 1)),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["a", "pin"]), st.integers(), max_size=2),
)
numbers = st.one_of(
    st.integers(-5, 12_000),
    st.sampled_from([0, 1, 5, 20, 27, 50, 53, 54, 200, 500, 2000, 3600, 86_400, 10**7, 10**8]),
    st.floats(-5, 100_000),
    st.sampled_from([0.0, 0.5, 1.0, 17.0, 60.0, float("inf"), float("nan"), 2.5]),
    st.booleans(),
)


def ints() -> st.SearchStrategy[Any]:
    return st.one_of(numbers, numbers, junk)


bools = st.one_of(st.booleans(), st.booleans(), st.sampled_from([0, 1, 2, 0.0, 1.0]), junk)
texts = st.one_of(st.text(max_size=8), st.sampled_from(["a" * 64, "a" * 65, "ok.name-1", "a b"]))
strs = st.one_of(texts, texts, numbers)
paths = st.one_of(st.sampled_from(["pw", "/etc/x", "~/x", "", "sub/dir.db"]), numbers)
urls = st.one_of(
    st.sampled_from(
        [
            "mqtt://h",
            "mqtts://h:8883",
            "mqtt://h:1883",
            "http://h",
            "mqtt://",
            "mqtt://h:99999",
            "mqtt://h:x",
            "MQTT://h",
        ]
    ),
    numbers,
)


@st.composite
def table(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    out = {key: draw(value) for key, value in fields.items() if draw(st.integers(0, 2)) == 0}
    if draw(st.integers(0, 9)) == 0:
        out[draw(st.sampled_from(["extra", "Pin", "typo"]))] = draw(numbers)
    return out


def maybe_table(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    return st.one_of(table(fields), table(fields), table(fields), numbers)


SENSOR_COMMON = {
    "name": st.one_of(texts, st.sampled_from(["beans", "tank.level_1"])),
    "threshold": ints(),
    "hysteresis": ints(),
    "min_dwell_ms": ints(),
    "poll_ms": ints(),
    "trigger": st.sampled_from(["below", "above", "Below", 1]),
}
sensors = st.one_of(
    table(
        {
            **SENSOR_COMMON,
            "type": st.just("distance"),
            "echo": ints(),
            "trigger_pin": ints(),
            "max_distance_m": ints(),
        }
    ),
    table({**SENSOR_COMMON, "type": st.just("light"), "pin": ints()}),
    table({**SENSOR_COMMON, "type": st.just("mcp3008"), "channel": ints(), "spi_device": ints()}),
    table({**SENSOR_COMMON, "type": st.just("level_switch"), "pin": ints(), "pull_up": bools}),
    table({**SENSOR_COMMON, "type": st.sampled_from(["sonar", 3])}),
    numbers,
)
configs = table(
    {
        "device_id": st.one_of(
            st.sampled_from(["k-01", "a" * 64, "a" * 65, "no spaces", ""]), strs
        ),
        "mqtt": maybe_table(
            {
                "url": urls,
                "username": strs,
                "password": strs,
                "password_file": paths,
                "client_id": strs,
                "ca_file": paths,
                "cert_file": paths,
                "key_file": paths,
                "keepalive_s": ints(),
                "reconnect_min_s": ints(),
                "reconnect_max_s": ints(),
            }
        ),
        "button": maybe_table(
            {
                "pin": ints(),
                "pull_up": bools,
                "bounce_ms": ints(),
                "double_window_ms": ints(),
                "long_press_ms": ints(),
            }
        ),
        "led": maybe_table(
            {
                "pin": ints(),
                "rgb": maybe_table({"red": ints(), "green": ints(), "blue": ints()}),
                "active_high": bools,
            }
        ),
        "sensor": sensors,
        "outbox": maybe_table(
            {
                "path": paths,
                "max_events": ints(),
                "overflow": st.sampled_from(["drop_oldest", "refuse_new", "explode"]),
                "retry_min_s": ints(),
                "retry_max_s": ints(),
                "ask_min_s": ints(),
                "ask_max_s": ints(),
                "ask_for_s": ints(),
                "ask_max_open": ints(),
                "keep_settled": ints(),
            }
        ),
        "telemetry": maybe_table({"heartbeat_s": ints()}),
    }
)


def by_model(data: dict[str, Any]) -> Any:
    try:
        return model.AgentConfig.model_validate(data).model_dump()
    except ValidationError as exc:
        return {tuple(str(part) for part in err["loc"]) for err in exc.errors()}


def by_stdlib(data: dict[str, Any]) -> Any:
    config, errors = stdlib.validate(data)
    if config is None:
        return {loc for loc, _ in errors}
    return stdlib.as_dict(config)


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (a threshold may be NaN for both)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return bool(a == b) and type(a) is type(b)


@settings(max_examples=1500, deadline=None)
@given(configs)
def test_the_same_files_pass_with_the_same_values_and_fail_at_the_same_fields(
    data: dict[str, Any],
) -> None:
    ours, theirs = by_stdlib(copy.deepcopy(data)), by_model(copy.deepcopy(data))
    assert same(ours, theirs), (data, ours, theirs)


@pytest.mark.parametrize(
    "data",
    [
        {"device_id": "d", "mqtt": {"url": "mqtt://h"}},
        {
            "device_id": "d",
            "mqtt": {"url": "mqtt://h"},
            "led": {"rgb": {"red": 1, "green": 2, "blue": 3}},
        },
        {"device_id": "d", "mqtt": {"url": "mqtt://h"}, "led": {}},
        {"device_id": "d", "mqtt": {"url": "mqtt://h", "keepalive_s": "60"}},
        {"device_id": "d", "mqtt": {"url": "mqtt://h"}, "button": {"pull_up": "off"}},
        {
            "device_id": "d",
            "mqtt": {"url": "mqtt://h"},
            "sensor": {"type": "level_switch", "name": "tank", "pin": 5},
        },
        {"device_id": "d", "mqtt": {"url": "mqtt://h"}, "sensor": {"name": "x"}},
    ],
)
def test_examples(data: dict[str, Any]) -> None:
    assert same(by_stdlib(copy.deepcopy(data)), by_model(copy.deepcopy(data)))


def test_the_defaults_are_the_models() -> None:
    assert stdlib.as_dict(stdlib.OutboxConfig()) == model.OutboxConfig().model_dump()
    assert stdlib.as_dict(stdlib.LedConfig()) == model.LedConfig().model_dump()
    assert stdlib.as_dict(stdlib.ButtonConfig()) == model.ButtonConfig().model_dump()
    assert stdlib.as_dict(stdlib.TelemetryConfig()) == model.TelemetryConfig().model_dump()
    assert isinstance(stdlib.OutboxConfig().path, Path)
