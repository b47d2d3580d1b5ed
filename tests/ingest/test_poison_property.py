"""Property: whatever arrives on whatever device topic, the REAL message path (Router, Writer
on a SQLite file in WAL mode, ledger) brings it to one final outcome: acknowledged exactly once,
nothing left retrying, counted once under its channel, and -- for an event whose topic names
a valid device -- a status published to that device.

Payloads: valid ones, near-valid mutations of valid ones (one field replaced by an extreme
value or removed), garbage bytes, arbitrary JSON, deep nesting; topics: registered, unknown
and invalid device ids, every channel and unknown ones, oversized.

The default run is modest (``EDGEORDER_POISON_EXAMPLES``, default 120 examples); e.g.
``EDGEORDER_POISON_EXAMPLES=5000 python -m pytest tests/ingest/test_poison_property.py``
for a long search.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ulid import ULID

from edgeorder import protocol as p
from edgeorder.ingest.mqtt.router import channel_of
from tests.ingest.router_harness import STALE_S, RouterHarness
from tests.ingest.support import add_device

EXAMPLES = int(os.environ.get("EDGEORDER_POISON_EXAMPLES", "120"))
REGISTERED = ("dev-1", "dev-2")
DEVICES = (*REGISTERED, "ghost-1")
BAD_DEVICE_IDS = ("bad.id", "a" * 65, "dév", "", "x+y", "dev-1\n")
CHANNELS = (*(c.value for c in p.Channel), "unknown", "events/more", "")
REPORTS = (p.Channel.PRESENCE.value, p.Channel.TELEMETRY.value, p.Channel.CONFIG_REPORTED.value)
WEIGHTED_DEVICES = ("dev-1",) * 8 + ("dev-2",) * 6 + ("ghost-1",) * 2 + BAD_DEVICE_IDS
WEIGHTED_CHANNELS = ("events",) * 12 + REPORTS * 3 + CHANNELS


@dataclass
class Loop:
    """One event loop and one harness for every example (a fresh ingest per example would be
    slow, and sharing the database also tests that examples cannot spoil it for the next)."""

    loop: asyncio.AbstractEventLoop
    harness: RouterHarness


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    data_dir: Path = tmp_path_factory.mktemp("poison-property")
    add_device(data_dir, "dev-1")
    add_device(data_dir, "dev-2", allow_parallel=True, cancel_window_s=0)
    loop = asyncio.new_event_loop()
    harness = loop.run_until_complete(RouterHarness(data_dir).start())
    yield Loop(loop, harness)
    loop.run_until_complete(harness.stop())
    loop.close()
    assert set(harness.acks.values()) <= {1}, "a message was acknowledged twice"


# --- values ----------------------------------------------------------------------------------

NOW = p.utcnow()
OVERFLOWING_TS = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


def ts_text(dt: datetime) -> str:
    return dt.isoformat()


timestamps = st.one_of(
    st.integers(-2 * STALE_S, 2 * 3600).map(lambda s: ts_text(NOW + timedelta(seconds=s))),
    st.sampled_from(OVERFLOWING_TS),
    st.datetimes(
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]
        )
    ).map(ts_text),
    st.datetimes().map(ts_text),  # naive
)
ulids = st.builds(lambda: str(ULID()))
DAY = timedelta(days=1)
recent = st.integers(-60, 60).map(lambda s: ts_text(p.utcnow() + timedelta(seconds=s)))
REUSED_IDS = [str(ULID()) for _ in range(4)]
extreme_ints = (
    st.sampled_from([2**63 - 1, 2**63, 2**64, -1, -(2**63) - 1, 10**100, 0]) | st.integers()
)
extreme_floats = (
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -0.0, 5e-324]) | st.floats()
)
extreme_texts = st.sampled_from(
    [
        "",
        "Z" * 26,
        "8" + "1" * 25,
        "É" * 26,
        "0" + "ß" * 12 + "A",
        "01JDZ8Q7M3N4P5R6S7T8V9W0XY\n",
        "\x00",
        "\ud800",
        "x" * 5000,
        "../../etc",
    ]
) | st.text(max_size=80)
json_values = st.recursive(
    st.none() | st.booleans() | extreme_ints | extreme_floats | extreme_texts,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
extremes = st.one_of(
    extreme_ints, extreme_floats, extreme_texts, st.booleans(), st.none(), timestamps, json_values
)


def event_dict(device_id: str) -> st.SearchStrategy[dict[str, Any]]:
    press = st.fixed_dictionaries(
        {"kind": st.just("press"), "click": st.sampled_from(["single", "double", "long"])}
    )
    sensor = st.fixed_dictionaries(
        {
            "kind": st.just("sensor"),
            "sensor": st.fixed_dictionaries(
                {"name": st.sampled_from(["level", "x"]), "value": st.floats(-1e6, 1e6)}
            ),
        }
    )
    base = st.fixed_dictionaries(
        {
            "v": st.just(1),
            "event_id": ulids | st.sampled_from(REUSED_IDS),  # duplicates and conflicts too
            "device_id": st.sampled_from([device_id] * 8 + list(DEVICES)),
            "seq": st.integers(0, 2**63 - 1),
            "ts": recent | st.sampled_from([-3, 3]).map(lambda d: ts_text(p.utcnow() + d * DAY)),
            "fw": st.text(max_size=64),
        }
    )
    return st.tuples(base, press | sensor).map(lambda pair: {**pair[0], **pair[1]})


def report_dict(channel: str) -> st.SearchStrategy[dict[str, Any]]:
    if channel == p.Channel.PRESENCE.value:
        fields = {"online": st.booleans(), "fw": st.text(max_size=64), "ts": recent}
    elif channel == p.Channel.TELEMETRY.value:
        fields = {
            "uptime_s": st.integers(0, 2**63 - 1),
            "queue_depth": st.integers(0, 10_000),
            "dropped": st.integers(0, 10),
            "temp_c": st.floats(-40, 120),
        }
    else:
        fields = {"version": st.integers(0, 2**63 - 1), "ts": recent}
    return st.fixed_dictionaries({"v": st.just(1), **fields})


def valid_dict(channel: str, device_id: str) -> st.SearchStrategy[dict[str, Any]]:
    if channel in REPORTS:
        return report_dict(channel)
    return event_dict(device_id)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with one field replaced by an extreme value, removed, or added."""
    data = dict(base)
    key = draw(st.sampled_from([*data, "extra", "v"]))
    if key in data and draw(st.booleans()) and key != "v":
        del data[key]
    else:
        data[key] = draw(_LIKELY.get(key, extremes) | extremes)
    return data


_LIKELY = {  # values that come closest to passing where they are put
    "ts": timestamps,
    "event_id": extreme_texts | ulids,
    "seq": extreme_ints,
    "version": extreme_ints,
    "uptime_s": extreme_ints,
    "queue_depth": extreme_ints,
    "dropped": extreme_ints,
    "sensor": st.fixed_dictionaries({"name": extreme_texts, "value": extreme_floats}),
}


def to_bytes(data: Any, ascii_only: bool) -> bytes:
    return json.dumps(data, allow_nan=True, ensure_ascii=ascii_only).encode(
        "utf-8", errors="surrogatepass"
    )


@st.composite
def payloads(draw: st.DrawFn, channel: str, device_id: str) -> bytes:
    kind = draw(st.sampled_from(["valid", "mutated", "mutated", "garbage", "json", "deep"]))
    if kind == "garbage":
        return draw(st.binary(max_size=300) | st.sampled_from([b"", b"x" * 5000, b"\xff\xfe"]))
    if kind == "deep":
        depth = draw(st.integers(50, 3000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        inner = opener * depth + b"1" * (opener != b"[") + closer * depth
        return b'{"v":1,"x":' + inner + b"}" if draw(st.booleans()) else inner
    if kind == "json":
        return to_bytes(draw(json_values), draw(st.booleans()))
    data = draw(valid_dict(channel, device_id))
    if kind == "mutated":
        data = draw(mutated(data))
    return to_bytes(data, draw(st.booleans()))


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes, int, bool]:
    # mostly what a device may publish, sometimes what it may not
    device_id = draw(st.sampled_from(WEIGHTED_DEVICES))
    channel = draw(st.sampled_from(WEIGHTED_CHANNELS))
    topic = f"{p.TOPIC_ROOT}/{device_id}/{channel}"
    if draw(st.integers(0, 30)) == 0:
        topic = draw(st.sampled_from([topic + "/" + "x" * 5000, "elsewhere/" + device_id, ""]))
    payload = draw(payloads(channel, device_id if device_id in DEVICES else "dev-1"))
    qos = 0 if channel == p.Channel.TELEMETRY.value else draw(st.sampled_from([1, 1, 0]))
    return topic, payload, qos, draw(st.booleans())


# --- the property ------------------------------------------------------------------------------


def total(harness: RouterHarness, name: str, **labels: str) -> float:
    """Sum of counter ``name`` over the samples that carry ``labels``."""
    found = 0.0
    for metric in harness.metrics.registry.collect():
        if metric.name != name:
            continue
        for sample in metric.samples:
            if sample.name.endswith("_total") and labels.items() <= sample.labels.items():
                found += sample.value
    return found


def handled(harness: RouterHarness, channel: str) -> float:
    return total(harness, "edgeorder_ingest_messages", channel=channel)


def internal_errors(harness: RouterHarness) -> float:
    """Deterministic failures: a bug met on the way (the router rejects such a message as
    internal_error, which is a final outcome too -- but none of these inputs should need it)."""
    return total(harness, "edgeorder_ingest_message_write_failures", kind="deterministic")


async def check(harness: RouterHarness, topic: str, payload: bytes, qos: int, retain: bool) -> None:
    channel = channel_of(topic)
    counted = handled(harness, channel)
    try:
        device_id, parsed = p.parse_device_topic(topic)
    except p.TopicError:
        device_id, parsed = None, None
    status_topic = p.device_topic(device_id, p.Channel.STATUS) if device_id else None
    statuses_before = sum(1 for m in harness.transport.sent if m.topic == status_topic)

    message = harness.send(topic, payload, qos=qos, retain=retain)
    await harness.acked(message, within_s=20)

    assert harness.acks[(message.generation, message.mid)] == 1
    assert harness.router.failing() == 0
    assert handled(harness, channel) == counted + 1, "counted once, under its channel"
    assert internal_errors(harness) == 0, "decided by validation and rules, not by a crash"
    sent = [m for m in harness.transport.sent if m.topic == status_topic]
    if parsed is p.Channel.EVENTS and not payload:  # MQTT's clear of a retained message
        assert len(sent) == statuses_before, "an empty message is no event: nothing to answer"
    elif parsed is p.Channel.EVENTS:
        assert len(sent) > statuses_before, "an addressable event gets a status"
        status = p.decode(p.Status, sent[-1].payload)  # a valid Status, whatever came in
        assert status.event_id is None or p.is_ulid(status.event_id)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(message=messages(), deliveries=st.sampled_from([1, 1, 2]))
def test_every_message_reaches_one_final_outcome(
    running: Loop, message: tuple[str, bytes, int, bool], deliveries: int
) -> None:
    topic, payload, qos, retain = message
    for _ in range(deliveries):  # a redelivery: a duplicate, or the same rejection again
        running.loop.run_until_complete(check(running.harness, topic, payload, qos, retain))
