"""What the router does when handling a message fails: a transient failure (the database
refuses writes) is retried on a capped backoff, then parked, and recovers by itself; a
deterministic one (a bug, data that cannot be stored) is rejected as ``internal_error`` and
acknowledged at once. Real Router, Writer, SQLite file (WAL) and ledger; the faults are the
genuine SQLite errors of a read-only connection, switched on and off by the test."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from edgeorder import protocol as p
from edgeorder.ingest.mqtt.retries import RetryPolicy
from edgeorder.ingest.store import ledger
from edgeorder.ingest.store.writer import is_transient
from tests.ingest.router_harness import RouterHarness
from tests.ingest.support import add_device, press

DEVICE = "dev-01"
EVENTS = p.device_topic(DEVICE, p.Channel.EVENTS)
TELEMETRY = p.device_topic(DEVICE, p.Channel.TELEMETRY)
FAST = RetryPolicy(base_s=0.001, max_s=0.004, max_attempts=4, parked_s=0.01)


class Fault:
    """Wraps a ledger function: while ``on``, its connection turns read-only first, so its
    INSERT fails with SQLite's own SQLITE_READONLY (a machine trouble, transient); with
    ``bug`` it raises a ValueError instead (deterministic). ``calls`` wakes waiters."""

    def __init__(self, real: Callable[..., Any], loop: asyncio.AbstractEventLoop) -> None:
        self.real, self.loop = real, loop
        self.on = False
        self.bug = False
        self.calls = 0
        self._waiters: list[tuple[int, asyncio.Event]] = []
        self._lock = threading.Lock()

    def __call__(self, conn: sqlite3.Connection, *args: Any, **kwargs: Any) -> Any:
        bug, on = self.bug, self.on  # decided before waking the test, which may flip them
        with self._lock:
            self.calls += 1
            calls = self.calls
        self.loop.call_soon_threadsafe(self._wake, calls)
        if bug:
            raise ValueError("a bug in the ledger")
        if not on:
            return self.real(conn, *args, **kwargs)
        conn.execute("PRAGMA query_only = ON")
        try:
            return self.real(conn, *args, **kwargs)
        finally:
            conn.execute("PRAGMA query_only = OFF")

    def _wake(self, calls: int) -> None:
        for target, event in self._waiters:
            if calls >= target:
                event.set()

    async def called(self, times: int, within_s: float = 20) -> None:
        event = asyncio.Event()
        self._waiters.append((times, event))
        self._wake(self.calls)
        async with asyncio.timeout(within_s):
            await event.wait()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[RouterHarness]:
    add_device(tmp_path, DEVICE)
    running = await RouterHarness(tmp_path, retry=FAST).start()
    yield running
    await running.stop()


@pytest.fixture
async def record_fault(monkeypatch: pytest.MonkeyPatch) -> Fault:
    fault = Fault(ledger.record_event, asyncio.get_running_loop())
    monkeypatch.setattr(ledger, "record_event", fault)
    return fault


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with capture_logs() as captured:
        yield captured


def named(logs: list[MutableMapping[str, Any]], event: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


def test_failures_are_classified_by_what_can_pass() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x INTEGER NOT NULL)")
    errors: dict[str, BaseException] = {}
    for name, sql, params in [
        ("constraint", "INSERT INTO t VALUES (?)", [None]),
        ("syntax", "INSERT INTO nowhere VALUES (1)", []),
    ]:
        with pytest.raises(sqlite3.Error) as caught:
            conn.execute(sql, params)
        errors[name] = caught.value
    with pytest.raises(OverflowError) as too_big:
        sqlite3.connect(":memory:").execute("SELECT ?", [2**64])
    conn.execute("PRAGMA query_only = ON")
    with pytest.raises(sqlite3.OperationalError) as readonly:
        conn.execute("INSERT INTO t VALUES (1)")
    assert is_transient(readonly.value)
    assert is_transient(sqlite3.OperationalError("database is locked"))  # no code: transient
    assert is_transient(OSError(28, "No space left on device"))
    assert not is_transient(errors["constraint"])
    assert not is_transient(errors["syntax"])
    assert not is_transient(too_big.value)
    assert not is_transient(ValueError("bad data"))
    assert not is_transient(RecursionError())


async def test_a_transient_failure_is_retried_then_the_message_is_acked_once(
    harness: RouterHarness, record_fault: Fault, logs: list[MutableMapping[str, Any]]
) -> None:
    record_fault.on = True
    event = press(DEVICE)
    message = harness.send(EVENTS, p.encode(event))
    await record_fault.called(2 * 3)  # three attempts (the writer runs a failing job twice)
    assert harness.acks[(message.generation, message.mid)] == 0
    assert harness.router.failing() == 1
    assert harness.metric("edgeorder_ingest_messages_failing") == 1
    record_fault.on = False
    await harness.acked(message)
    assert harness.acks[(message.generation, message.mid)] == 1
    assert harness.router.failing() == 0
    assert harness.metric("edgeorder_ingest_messages_failing") == 0
    states = [s["state"] for s in harness.transport.statuses(DEVICE) if s["event_id"]]
    assert states.count("accepted") == 1
    assert (
        harness.metric(
            "edgeorder_ingest_message_write_failures_total", channel="events", kind="transient"
        )
        >= 3
    )
    # state changes only: one line when it started failing, one when it recovered
    (failing,) = named(logs, "router.message_failing")
    assert isinstance(failing["exc_info"], BaseException)  # the traceback, not a repr
    assert len(named(logs, "router.message_recovered")) == 1


async def test_after_the_cap_a_message_is_parked_unacked_and_logs_stay_bounded(
    harness: RouterHarness, record_fault: Fault, logs: list[MutableMapping[str, Any]]
) -> None:
    record_fault.on = True
    message = harness.send(EVENTS, p.encode(press(DEVICE)))
    await record_fault.called(2 * 40)  # 40 attempts: 4 fast ones, then parked probes
    assert harness.acks[(message.generation, message.mid)] == 0  # nothing lost, nothing acked
    assert harness.router.failing() == 1
    assert harness.metric("edgeorder_ingest_messages_parked") == 1
    assert len(named(logs, "router.message_failing")) == 1
    (parked,) = named(logs, "router.message_parked")
    assert isinstance(parked["exc_info"], BaseException)  # rendered as a traceback
    # writer.slow_commit depends on the machine's load, not on the failure: not counted
    said = [e for e in logs if e["log_level"] != "debug" and e["event"] != "writer.slow_commit"]
    assert len(said) == 2, said  # failing, parked: state changes, not 40 attempts
    record_fault.on = False
    await harness.acked(message)
    assert harness.router.failing() == 0
    assert harness.metric("edgeorder_ingest_messages_parked") == 0
    assert len(named(logs, "router.message_recovered")) == 1


async def test_a_deterministic_failure_is_rejected_once_with_its_traceback(
    harness: RouterHarness, record_fault: Fault, logs: list[MutableMapping[str, Any]]
) -> None:
    record_fault.bug = True
    event = press(DEVICE)
    await harness.deliver(EVENTS, p.encode(event))
    assert record_fault.calls == 2  # one attempt (optimistic + savepoint run), no retry
    assert harness.router.failing() == 0
    (status,) = harness.transport.statuses(DEVICE)
    assert (status["event_id"], status["state"]) == (event.event_id, "rejected")
    assert status["reason"].startswith("internal error")
    (dead,) = named(logs, "router.dead_letter")
    assert isinstance(dead["exc_info"], ValueError)  # rendered as a traceback
    assert (
        harness.metric(
            "edgeorder_ingest_messages_rejected_total", channel="events", reason="internal_error"
        )
        == 1
    )


async def test_when_even_the_rejection_fails_the_message_is_still_acked(
    harness: RouterHarness, record_fault: Fault, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_fault.bug = True
    rejection = Fault(ledger.record_rejection, asyncio.get_running_loop())
    rejection.bug = True
    monkeypatch.setattr(ledger, "record_rejection", rejection)
    await harness.deliver(EVENTS, p.encode(press(DEVICE)))
    assert harness.router.failing() == 0
    assert harness.transport.statuses(DEVICE) == []
    assert (
        harness.metric(
            "edgeorder_ingest_messages_rejected_total", channel="events", reason="internal_error"
        )
        == 1
    )


async def test_a_qos0_message_whose_write_fails_is_dropped_and_logged_once(
    harness: RouterHarness, monkeypatch: pytest.MonkeyPatch, logs: list[MutableMapping[str, Any]]
) -> None:
    from edgeorder.ingest.store import reports

    fault = Fault(reports.record_telemetry, asyncio.get_running_loop())
    fault.on = True
    monkeypatch.setitem(reports._BY_CHANNEL, p.Channel.TELEMETRY, fault)
    body = b'{"v":1,"uptime_s":1,"queue_depth":0}'
    for _ in range(5):
        await harness.deliver(TELEMETRY, body, qos=0)
    assert harness.router.failing() == 0
    assert harness.metric("edgeorder_ingest_messages_total", channel="telemetry", outcome="dropped")
    (dropping,) = named(logs, "router.qos0_dropping")
    assert isinstance(dropping["exc_info"], BaseException)  # rendered as a traceback
    fault.on = False
    await harness.deliver(TELEMETRY, body, qos=0)
    assert len(named(logs, "router.qos0_recovered")) == 1


async def test_a_failing_message_of_an_earlier_connection_is_left_to_the_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_device(tmp_path, DEVICE)
    current = {"generation": 1}
    harness = await RouterHarness(
        tmp_path,
        retry=FAST,
        is_current=lambda m: m.generation == current["generation"],
    ).start()
    fault = Fault(ledger.record_event, asyncio.get_running_loop())
    monkeypatch.setattr(ledger, "record_event", fault)
    fault.on = True
    try:
        message = harness.send(EVENTS, p.encode(press(DEVICE)))
        await fault.called(2)
        current["generation"] = 2  # reconnected: the broker redelivers it on the new one
        calls = fault.calls
        await harness.until_not_failing()  # its next retry gives up instead of writing
        assert fault.calls <= calls + 2  # at most the attempt that was already running
        assert harness.acks[(message.generation, message.mid)] == 0
    finally:
        await harness.stop()
