"""``/healthz`` tells the truth (issue 11 §4): degraded, with reasons, when the broker link is
down, the order platform is unreachable, an order waits too long, messages fail or the
database does not commit; ``/livez`` stays 200 while the process serves."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edgeorder import protocol as p
from edgeorder.ingest import app as ingest_app
from edgeorder.ingest.health import (
    Observed,
    PlatformMonitor,
    PlatformState,
    Thresholds,
    evaluate,
)
from edgeorder.ingest.store.db import connect
from tests.ingest.support import Ingest, OrderCore, add_device, ingest_settings, press, wait_for
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe

NOW = p.utcnow()
ALL_WELL = Observed(
    now=NOW,
    mqtt_connected=True,
    platform=PlatformState(True, "the platform answers"),
    oldest_pending=None,
    failing_messages=0,
    database=None,
)
LIMITS = Thresholds(buffer_age_s=300)


def failing(seen: Observed) -> dict[str, str]:
    return {c.name: c.detail for c in evaluate(seen, LIMITS).checks if not c.ok}


# --- the pure verdict ------------------------------------------------------------------------


def test_all_well_is_ok_and_lists_every_check() -> None:
    health = evaluate(ALL_WELL, LIMITS)
    assert health.ok
    body = health.to_json()
    assert body["status"] == "ok"
    assert [c["name"] for c in body["checks"]] == [
        "mqtt",
        "order_platform",
        "buffer",
        "messages",
        "database",
    ]
    assert all(c["ok"] and c["detail"] for c in body["checks"])


def test_each_problem_degrades_with_its_own_reason() -> None:
    assert failing(replace(ALL_WELL, mqtt_connected=False)) == {"mqtt": "broker link is down"}
    down = PlatformState(False, "unreachable: HTTP 503")
    assert failing(replace(ALL_WELL, platform=down)) == {"order_platform": "unreachable: HTTP 503"}
    old = replace(ALL_WELL, oldest_pending=NOW - timedelta(seconds=301))
    assert "oldest buffered order waits for 301 s (limit 300 s)" in failing(old)["buffer"]
    young = replace(ALL_WELL, oldest_pending=NOW - timedelta(seconds=299))
    assert failing(young) == {}
    assert "3 message(s) failing" in failing(replace(ALL_WELL, failing_messages=3))["messages"]
    stuck = replace(ALL_WELL, database="the database writer did not answer within 2 s")
    assert failing(stuck) == {"database": "the database writer did not answer within 2 s"}
    everything = replace(
        ALL_WELL, mqtt_connected=False, platform=down, failing_messages=1, database="x"
    )
    assert evaluate(everything, LIMITS).to_json()["status"] == "degraded"
    assert len(failing(everything)) == 4


# --- the platform monitor --------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_outbox_reports_win_while_fresh_then_a_probe_decides() -> None:
    clock, probes = Clock(), []

    async def refuse(host: str, port: int) -> None:
        probes.append((host, port))
        raise ConnectionRefusedError(111, "Connection refused")

    monitor = PlatformMonitor(
        "http://core.example:8081", fresh_s=60, probe_interval_s=15, clock=clock, connect=refuse
    )
    monitor.failed("HTTP 503: maintenance")
    assert await monitor.state() == PlatformState(
        False, "the last call failed: HTTP 503: maintenance"
    )
    monitor.answered()
    assert (await monitor.state()).reachable
    assert probes == []  # fresh reports: no probe
    clock.now += 61
    state = await monitor.state()
    assert state == PlatformState(
        False, "unreachable: cannot connect to core.example:8081: Connection refused"
    )
    assert probes == [("core.example", 8081)]
    clock.now += 10
    await asyncio.gather(*(monitor.state() for _ in range(5)))
    assert len(probes) == 1  # cached for probe_interval_s
    clock.now += 6
    await asyncio.gather(*(monitor.state() for _ in range(5)))
    assert len(probes) == 2  # one probe for five concurrent health checks


async def test_a_silent_platform_times_out_the_probe() -> None:
    never = asyncio.Event()

    async def hang(host: str, port: int) -> None:
        await never.wait()

    monitor = PlatformMonitor("https://shop.example", probe_timeout_s=0.05, connect=hang)
    state = await monitor.state()
    assert state == PlatformState(
        False, "unreachable: no connection to shop.example:443 within 0.05 s"
    )


# --- the real service --------------------------------------------------------------------------


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[OrderCore]:
    running = await OrderCore(tmp_path / "ordercore").start()
    yield running
    await running.stop()


@pytest.fixture
async def ingest(
    tmp_path: Path, mosquitto: MosquittoServer, core: OrderCore
) -> AsyncIterator[Ingest]:
    settings = ingest_settings(
        tmp_path / "ingest",
        mosquitto.url,
        core.url,
        health_buffer_age_s=0.001,
        health_probe_interval_s=0.001,
        retry_base_s=30,
        retry_max_s=30,
    )
    running = await Ingest(settings).start()
    yield running
    await running.stop()


async def health(ingest: Ingest) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(ingest.url + "/healthz") as resp:
        return resp.status, await resp.json()


def reasons(body: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["detail"] for c in body["checks"] if not c["ok"]}


@pytest.mark.integration
async def test_healthz_says_why_the_chain_is_broken(
    ingest: Ingest, core: OrderCore, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    status, body = await health(ingest)
    assert (status, body["status"], reasons(body)) == (200, "ok", {})

    await core.stop()  # the order core is gone and nothing is being ordered
    status, body = await health(ingest)
    assert (status, body["status"]) == (503, "degraded")
    assert set(reasons(body)) == {"order_platform"}
    assert reasons(body)["order_platform"].startswith(
        f"unreachable: cannot connect to 127.0.0.1:{core.port}: "
    )
    async with aiohttp.ClientSession() as http, http.get(ingest.url + "/livez") as resp:
        assert resp.status == 200  # alive all along

    # A press now waits in the buffer; the outbox's own failure is the platform's reason.
    add_device(tmp_path / "ingest", "health-01")
    probe = MqttProbe(mosquitto.port)
    try:
        assert probe.wait_connected()
        probe.subscribe(p.device_topic("health-01", p.Channel.STATUS))
        event = press("health-01")
        probe.publish(p.device_topic("health-01", p.Channel.EVENTS), p.encode(event))
        await wait_for(probe, lambda m: json.loads(m.payload)["state"] == "queued")
    finally:
        probe.close()
    status, body = await health(ingest)
    assert status == 503
    assert set(reasons(body)) == {"order_platform", "buffer"}
    assert "oldest buffered order waits" in reasons(body)["buffer"]

    await asyncio.to_thread(mosquitto.stop)  # and the broker too
    await asyncio.wait_for(ingest.service.link.disconnected.wait(), 10)
    status, body = await health(ingest)
    assert reasons(body)["mqtt"] == "broker link is down"


@pytest.mark.integration
async def test_healthz_says_when_the_database_does_not_commit(
    ingest: Ingest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_app, "HEALTH_TIMEOUT_S", 0.2)
    blocker = connect(tmp_path / "ingest" / "ingest.db")
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        status, body = await health(ingest)
        assert status == 503
        assert reasons(body) == {
            "database": "the database writer did not answer within 0.2 s",
        }
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await ingest.service.writer.run(lambda conn: None)  # the writer got through
    status, body = await health(ingest)
    assert (status, reasons(body)) == (200, {})
