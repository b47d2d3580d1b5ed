"""Poison messages (issue 11, section 1): payloads that used to pass the first checks and then
fail after decoding, leaving the message unacknowledged and retried forever.

Each test drives the real Router, Writer (a real SQLite file in WAL mode) and ledger, and
asserts the message reached ONE final outcome: acknowledged once, nothing left retrying,
counted, and -- for events of an addressable device -- a status published.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.store import ledger
from edgeorder.ingest.store.db import open_db
from tests.ingest.router_harness import RouterHarness
from tests.ingest.support import add_device, press

DEVICE = "dev-01"
EVENTS = p.device_topic(DEVICE, p.Channel.EVENTS)
PRESENCE = p.device_topic(DEVICE, p.Channel.PRESENCE)
TELEMETRY = p.device_topic(DEVICE, p.Channel.TELEMETRY)
CONFIG_REPORTED = p.device_topic(DEVICE, p.Channel.CONFIG_REPORTED)
GOOD_ULID = "01JDZ8Q7M3N4P5R6S7T8V9W0XY"
INT64_MAX = 2**63 - 1


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[RouterHarness]:
    add_device(tmp_path, DEVICE)
    running = await RouterHarness(tmp_path).start()
    yield running
    await running.stop()


def event_payload(**over: Any) -> bytes:
    data: dict[str, Any] = json.loads(p.encode(press(DEVICE)))
    data.update(over)
    return json.dumps(data).encode()


def report_payload(channel: p.Channel, **over: Any) -> bytes:
    data: dict[str, Any] = {
        p.Channel.PRESENCE: {"v": 1, "online": True, "fw": "1.0", "ts": "2026-11-22T13:00:00Z"},
        p.Channel.TELEMETRY: {"v": 1, "uptime_s": 5, "queue_depth": 0, "fw": "1.0"},
        p.Channel.CONFIG_REPORTED: {"v": 1, "version": 3, "ts": "2026-11-22T13:00:00Z"},
    }[channel]
    data.update(over)
    return json.dumps(data).encode()


def assert_final(harness: RouterHarness) -> None:
    """Every delivery acknowledged exactly once, and nothing awaits a retry."""
    assert set(harness.acks.values()) == {1}, harness.acks
    assert harness.router.failing() == 0


def last_status(harness: RouterHarness) -> dict[str, Any]:
    return harness.transport.statuses(DEVICE)[-1]


# --- a 26-character event_id that is not a ULID -----------------------------------------------


@pytest.mark.parametrize(
    "event_id",
    [
        "Z" * 26,  # first character past 7: beyond a ULID's 48-bit time
        "8" + GOOD_ULID[1:],
        GOOD_ULID[:-1] + "I",  # Crockford base32 has no I, L, O, U
        GOOD_ULID[:-1] + "U",
        GOOD_ULID[:-1] + "-",
        "É" * 26,
    ],
)
async def test_an_event_id_that_is_not_a_ulid_is_rejected_without_echoing_it(
    harness: RouterHarness, event_id: str
) -> None:
    await harness.deliver(EVENTS, event_payload(event_id=event_id))
    assert_final(harness)
    status = last_status(harness)
    assert status["state"] == "rejected"
    assert status["event_id"] is None  # the bad id is not echoed
    assert status["reason"].startswith("event_id:")
    assert harness.metric("edgeorder_ingest_events_rejected_total", reason="invalid") == 1
    assert (
        harness.metric(
            "edgeorder_ingest_messages_rejected_total", channel="events", reason="invalid"
        )
        == 1
    )


# --- integers past SQLite's int64 -------------------------------------------------------------


async def test_a_seq_past_int64_is_rejected(harness: RouterHarness) -> None:
    ok = press(DEVICE, seq=INT64_MAX)
    await harness.deliver(EVENTS, p.encode(ok))
    bad = press(DEVICE, seq=0)
    await harness.deliver(EVENTS, event_payload(event_id=bad.event_id, seq=INT64_MAX + 1))
    assert_final(harness)
    first, second = harness.transport.statuses(DEVICE)
    assert (first["event_id"], first["state"]) == (ok.event_id, "accepted")
    assert (second["event_id"], second["state"]) == (bad.event_id, "rejected")
    assert second["reason"].startswith("seq:")


@pytest.mark.parametrize(
    ("channel", "field"),
    [
        (p.Channel.CONFIG_REPORTED, "version"),
        (p.Channel.TELEMETRY, "uptime_s"),
        (p.Channel.TELEMETRY, "queue_depth"),
        (p.Channel.TELEMETRY, "dropped"),
    ],
)
async def test_report_numbers_past_int64_are_rejected(
    harness: RouterHarness, channel: p.Channel, field: str
) -> None:
    topic = p.device_topic(DEVICE, channel)
    await harness.deliver(topic, report_payload(channel, **{field: 2**64}))
    assert_final(harness)
    assert (
        harness.metric(
            "edgeorder_ingest_messages_rejected_total", channel=channel.value, reason="invalid"
        )
        == 1
    )


async def test_telemetry_extras_keep_only_finite_int64_numbers(harness: RouterHarness) -> None:
    payload = (
        b'{"v":1,"uptime_s":5,"queue_depth":0,"temp_c":41.5,"rssi":-60,"nan":NaN,'
        b'"inf":1e400,"huge":99999999999999999999999,"flag":true,"text":"x","deep":[[[1]]]}'
    )
    await harness.deliver(TELEMETRY, payload)
    assert_final(harness)
    conn = open_db(harness.db_path).conn
    (extra,) = conn.execute("SELECT extra FROM telemetry WHERE device_id = ?", [DEVICE]).fetchone()
    assert json.loads(extra) == {"temp_c": 41.5, "rssi": -60}
    recorded = harness.metric(
        "edgeorder_ingest_messages_total", channel="telemetry", outcome="recorded"
    )
    assert recorded == 1


# --- timestamps that overflow when moved to UTC ---------------------------------------------

OVERFLOWING = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


@pytest.mark.parametrize("ts", OVERFLOWING)
async def test_an_event_timestamp_that_overflows_in_utc_is_rejected(
    harness: RouterHarness, ts: str
) -> None:
    event = press(DEVICE)
    await harness.deliver(EVENTS, event_payload(event_id=event.event_id, ts=ts))
    assert_final(harness)
    status = last_status(harness)
    assert (status["event_id"], status["state"]) == (event.event_id, "rejected")
    assert status["reason"].startswith("ts:")


@pytest.mark.parametrize("ts", OVERFLOWING)
@pytest.mark.parametrize("channel", [p.Channel.PRESENCE, p.Channel.CONFIG_REPORTED])
async def test_a_report_timestamp_that_overflows_in_utc_is_rejected(
    harness: RouterHarness, channel: p.Channel, ts: str
) -> None:
    await harness.deliver(p.device_topic(DEVICE, channel), report_payload(channel, ts=ts))
    assert_final(harness)
    assert (
        harness.metric(
            "edgeorder_ingest_messages_rejected_total", channel=channel.value, reason="invalid"
        )
        == 1
    )


async def test_an_event_from_far_in_the_future_is_rejected(harness: RouterHarness) -> None:
    far = press(DEVICE, ts=p.utcnow() + timedelta(days=2))
    await harness.deliver(EVENTS, p.encode(far))
    at_the_end = press(DEVICE)
    await harness.deliver(EVENTS, event_payload(event_id=at_the_end.event_id, ts=OVERFLOWING[1]))
    soon = press(DEVICE, ts=p.utcnow() + timedelta(seconds=30))  # a little clock skew is fine
    await harness.deliver(EVENTS, p.encode(soon))
    assert_final(harness)
    states = [(s["event_id"], s["state"]) for s in harness.transport.statuses(DEVICE)]
    assert states == [
        (far.event_id, "rejected"),
        (at_the_end.event_id, "rejected"),
        (soon.event_id, "accepted"),
    ]
    assert harness.metric("edgeorder_ingest_events_rejected_total", reason="future") == 1


# --- JSON nested ~1,000 deep, well under 4 KiB ----------------------------------------------

DEEP = [
    b"[" * 1000 + b"]" * 1000,
    b'{"":' * 800 + b"1" + b"}" * 800,
    b'{"v":1,"x":' + b"[" * 1500 + b"]" * 1500 + b"}",
]


@pytest.mark.parametrize("payload", DEEP, ids=["list", "object", "inside"])
@pytest.mark.parametrize(
    "channel",
    [p.Channel.EVENTS, p.Channel.PRESENCE, p.Channel.TELEMETRY, p.Channel.CONFIG_REPORTED],
)
async def test_deeply_nested_json_is_rejected(
    harness: RouterHarness, channel: p.Channel, payload: bytes
) -> None:
    assert len(payload) < p.MAX_EVENT_BYTES
    await harness.deliver(p.device_topic(DEVICE, channel), payload, qos=1)
    assert_final(harness)
    reason = "malformed_json"
    assert (
        harness.metric(
            "edgeorder_ingest_messages_rejected_total", channel=channel.value, reason=reason
        )
        == 1
    )
    if channel is p.Channel.EVENTS:
        assert last_status(harness)["state"] == "rejected"


# --- "v": true is not version 1 ---------------------------------------------------------------


async def test_v_true_is_not_version_1(harness: RouterHarness) -> None:
    event = press(DEVICE)
    await harness.deliver(EVENTS, event_payload(event_id=event.event_id, v=True))
    assert_final(harness)
    status = last_status(harness)
    assert (status["event_id"], status["state"]) == (event.event_id, "rejected")
    assert status["reason"].startswith("v:")


# --- a device whose cancel window is huge ---------------------------------------------------


async def test_a_long_press_of_a_device_with_a_huge_cancel_window_is_answered(
    harness: RouterHarness,
) -> None:
    """Rows written before the registry bounded the window (1e15 s was accepted) must not
    turn every long press into poison."""
    db = open_db(harness.db_path)
    db.execute("UPDATE devices SET cancel_window_s = ? WHERE device_id = ?", [10**15, DEVICE])
    db.conn.close()
    await harness.devices.reload()
    first = press(DEVICE)
    await harness.deliver(EVENTS, p.encode(first))
    conn = open_db(harness.db_path).conn
    (row,) = ledger.due_outbox(conn, p.utcnow(), 10)
    ledger.mark_created(
        conn,
        row,
        order_id="9",
        state=p.State.ORDERED,
        platform_status=0,
        amount=None,
        currency=None,
        now=p.utcnow(),
    )
    conn.close()
    long_press = press(DEVICE, click=p.Click.LONG)
    await harness.deliver(EVENTS, p.encode(long_press))
    assert_final(harness)
    status = last_status(harness)
    assert (status["event_id"], status["state"]) == (long_press.event_id, "accepted")


# --- retained poison ------------------------------------------------------------------------


async def test_a_rejected_retained_report_is_cleared_on_the_broker_once(tmp_path: Path) -> None:
    """Retained poison would come back to every new ingest session: ingest clears it (an
    empty retained publish), and the empty payload that the clear echoes back is ignored."""
    add_device(tmp_path, DEVICE)
    cleared: list[str] = []
    harness = await RouterHarness(tmp_path, clear_retained=cleared.append).start()
    try:
        poison = report_payload(p.Channel.PRESENCE, ts=OVERFLOWING[0])
        await harness.deliver(PRESENCE, poison, retain=True)
        assert cleared == [PRESENCE]
        await harness.deliver(PRESENCE, b"")  # the clear, delivered back to us
        await harness.deliver(PRESENCE, poison)  # live, not from the retained store
        ghost = p.device_topic("ghost-01", p.Channel.PRESENCE)
        await harness.deliver(ghost, report_payload(p.Channel.PRESENCE), retain=True)
        await harness.deliver(PRESENCE, report_payload(p.Channel.PRESENCE), retain=True)
        assert cleared == [PRESENCE]  # not the live one, the unknown device's, a valid one
        assert_final(harness)
        assert harness.metric("edgeorder_ingest_retained_cleared_total", channel="presence") == 1
        outcomes = {
            outcome: harness.metric(
                "edgeorder_ingest_messages_total", channel="presence", outcome=outcome
            )
            for outcome in ("rejected", "ignored", "recorded")
        }
        assert outcomes == {"rejected": 3, "ignored": 1, "recorded": 1}
        assert (
            harness.metric(
                "edgeorder_ingest_messages_rejected_total",
                channel="presence",
                reason="unknown_device",
            )
            == 1
        )
    finally:
        await harness.stop()


async def test_the_echo_of_a_cleared_retained_event_is_no_event(tmp_path: Path) -> None:
    """A retained poison event is rejected (a status for the device) and cleared; the empty
    publish of the clear comes back on the subscription and is ignored: no second status, no
    rejection row, no ``malformed_json`` count."""
    add_device(tmp_path, DEVICE)
    cleared: list[str] = []
    harness = await RouterHarness(tmp_path, clear_retained=cleared.append).start()
    try:
        await harness.deliver(EVENTS, b'{"v": 1, "event_id": 42}', retain=True)
        assert cleared == [EVENTS]
        statuses = len(harness.transport.statuses(DEVICE))
        await harness.deliver(EVENTS, b"")  # the clear, delivered back to us
        assert_final(harness)
        assert len(harness.transport.statuses(DEVICE)) == statuses == 1
        outcomes = {
            outcome: harness.metric(
                "edgeorder_ingest_messages_total", channel="events", outcome=outcome
            )
            for outcome in ("rejected", "ignored")
        }
        assert outcomes == {"rejected": 1, "ignored": 1}
        conn = sqlite3.connect(harness.db_path)
        assert conn.execute("SELECT COUNT(*) FROM rejections").fetchone()[0] == 1
        conn.close()
    finally:
        await harness.stop()


async def test_a_report_of_a_device_added_meanwhile_is_recorded(harness: RouterHarness) -> None:
    """The CLI adds devices from another process: a report of an id the cache does not know
    makes it look again (rate-limited) before it is refused as unknown."""
    add_device(harness.db_path.parent, "dev-02")
    topic = p.device_topic("dev-02", p.Channel.PRESENCE)
    await harness.deliver(topic, report_payload(p.Channel.PRESENCE))
    assert harness.metric("edgeorder_ingest_messages_total", channel="presence", outcome="recorded")
