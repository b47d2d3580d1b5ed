"""Two ingest workers in this event loop, one PostgreSQL ledger, one Mosquitto shared
subscription ($share/ingest/...), the real order core: what must hold across workers.

Mosquitto hands a shared subscription's messages to its members in turn, so consecutive
publishes land on alternating workers: a press and its redelivery reach different workers, and
a device's presses are split between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yarl
from argon2 import PasswordHasher

from edgeorder import protocol as p
from edgeorder.ingest.bus import Notice
from edgeorder.ingest.cli.database import tell_workers
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.database import Database
from edgeorder.ingest.web.auth import create_api_token
from tests.ingest.support import Ingest, OrderCore, press, shared_workers, status_is, wait_for
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe, Received

pytestmark = pytest.mark.integration

SINGLE = p.ButtonMapping(
    single=p.ReorderAction(sku="COFFEE-1KG", quantity=1), long=p.CancelLastAction()
)


@pytest.fixture
async def workers(
    tmp_path: Path, pg_url: str, mosquitto: MosquittoServer, ordercore: OrderCore
) -> AsyncIterator[list[Ingest]]:
    async with shared_workers(
        tmp_path, mosquitto.url, ordercore.url, pg_url, outbox_lease_s=5
    ) as running:
        yield running


def provision(pg_url: str, *devices: str, parallel: bool = True) -> None:
    with Database.from_url(pg_url).open() as conn:
        for device_id in devices:
            registry.add_device(conn, device_id, mapping=SINGLE, allow_parallel=parallel)


def states_of(probe: MqttProbe, event_id: str) -> list[str]:
    return [
        body["state"]
        for body in (json.loads(m.payload) for m in probe.messages)
        if body.get("event_id") == event_id
    ]


def final(message: Received) -> bool:
    return json.loads(message.payload)["state"] in ("ordered", "throttled")


async def test_presses_split_between_workers_become_one_order_each(
    workers: list[Ingest], pg_url: str, ordercore: OrderCore, probe: MqttProbe
) -> None:
    devices = [f"split-{n}" for n in range(4)]
    provision(pg_url, *devices)
    events = [press(d, seq=i) for i in range(5) for d in devices]
    for event in events:
        probe.publish(p.device_topic(event.device_id, p.Channel.EVENTS), p.encode(event))
    await wait_for(probe, final, count=len(events), distinct_events=True, within_s=60)
    for device_id in devices:
        orders = await ordercore.orders(device_id)
        assert len(orders) == 5
    accepted = [w.service.metrics.accepted._value.get() for w in workers]
    assert all(n > 0 for n in accepted), accepted  # both workers took presses


async def test_a_redelivery_to_the_other_worker_is_recorded_once_and_ordered_once(
    workers: list[Ingest], pg_url: str, ordercore: OrderCore, probe: MqttProbe
) -> None:
    provision(pg_url, "redeliver-01")
    event = press("redeliver-01")
    topic = p.device_topic("redeliver-01", p.Channel.EVENTS)
    for _ in range(4):  # alternating workers: each sees it twice
        probe.publish(topic, p.encode(event))
    await wait_for(probe, status_is("redeliver-01", event.event_id, "ordered"))
    assert len(await ordercore.orders("redeliver-01")) == 1
    duplicates = sum(w.service.metrics.duplicates._value.get() for w in workers)
    assert duplicates == 3
    assert sum(w.service.metrics.duplicates._value.get() > 0 for w in workers) == 2


async def test_the_throttle_holds_for_presses_landing_on_different_workers(
    workers: list[Ingest], pg_url: str, ordercore: OrderCore, probe: MqttProbe
) -> None:
    provision(pg_url, "throttle-01", parallel=False)
    events = [press("throttle-01", seq=i) for i in range(10)]
    for event in events:  # all at once: both workers decide while the first is in flight
        probe.publish(p.device_topic("throttle-01", p.Channel.EVENTS), p.encode(event))
    await wait_for(probe, final, count=len(events), distinct_events=True, within_s=60)
    ordered = [e for e in events if "ordered" in states_of(probe, e.event_id)]
    assert len(ordered) == 1
    assert len(await ordercore.orders("throttle-01")) == 1


def accepted(workers: list[Ingest]) -> list[float]:
    return [w.service.metrics.accepted._value.get() for w in workers]


def which(before: list[float], after: list[float]) -> int:
    """The one worker whose accepted count moved."""
    (moved,) = [n for n, (a, b) in enumerate(zip(before, after, strict=True)) if b != a]
    return moved


async def test_a_long_press_on_the_other_worker_cancels_the_last_order(
    workers: list[Ingest], pg_url: str, ordercore: OrderCore, probe: MqttProbe
) -> None:
    """The order was made through one worker; the long press lands on the other (the shared
    subscription alternates), which finds the order in the shared ledger and cancels it."""
    provision(pg_url, "cancel-01", parallel=False)
    topic = p.device_topic("cancel-01", p.Channel.EVENTS)
    start = accepted(workers)
    order_event = press("cancel-01")
    probe.publish(topic, p.encode(order_event))
    await wait_for(probe, status_is("cancel-01", order_event.event_id, "ordered"))
    ordered_on = accepted(workers)
    cancel_event = press("cancel-01", click=p.Click.LONG, seq=2)
    probe.publish(topic, p.encode(cancel_event))
    await wait_for(probe, status_is("cancel-01", cancel_event.event_id, "cancelled"))
    await wait_for(probe, status_is("cancel-01", order_event.event_id, "cancelled"))
    assert which(start, ordered_on) != which(ordered_on, accepted(workers))
    (order,) = await ordercore.orders("cancel-01")
    assert order["Status"]["Code"] == 22  # cancelled by the user


async def test_a_registry_change_reaches_every_worker(
    workers: list[Ingest], pg_url: str, probe: MqttProbe
) -> None:
    """A device disabled by the CLI (or through one worker's API) is refused by every worker
    at once: the change is announced over LISTEN/NOTIFY and each reloads its device cache."""
    provision(pg_url, "disable-01")
    for worker in workers:
        await worker.service.devices.reload()
    reloaded = [asyncio.Event() for _ in workers]
    subscriptions = []
    for worker, done in zip(workers, reloaded, strict=True):
        subscriptions.append(asyncio.create_task(_await_device_notice(worker, done)))
    with Database.from_url(pg_url).open() as conn:
        registry.set_enabled(conn, "disable-01", False, actor="cli")
        tell_workers(conn, "device", "disable-01")
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in reloaded)), 10)
    for task in subscriptions:
        await task
    for worker in workers:
        await worker.service.devices.reload()  # after the notice's own reload, for certain
        device = worker.service.devices.get("disable-01")
        assert device is not None
        assert not device.enabled
    events = [press("disable-01", seq=i) for i in range(2)]
    for event in events:
        probe.publish(p.device_topic("disable-01", p.Channel.EVENTS), p.encode(event))
    for event in events:
        await wait_for(probe, status_is("disable-01", event.event_id, "rejected"))


async def _await_device_notice(worker: Ingest, done: asyncio.Event) -> None:
    async with worker.service.bus.subscribe(frozenset({"device"})) as notices:
        while True:
            notice: Notice = await notices.get()
            if notice.kind == "device" and notice.origin == "cli":
                done.set()
                return


async def test_live_notices_reach_the_other_worker(workers: list[Ingest]) -> None:
    first, second = workers
    async with second.service.bus.subscribe(frozenset({"event"})) as notices:
        first.service.bus.publish(Notice("event", "live-01", {"state": "accepted"}))
        notice = await asyncio.wait_for(notices.get(), 10)
    assert (notice.kind, notice.device_id, notice.origin) == ("event", "live-01", "w0")


async def test_reports_of_the_same_devices_on_both_workers_never_deadlock(
    workers: list[Ingest], pg_url: str, probe: MqttProbe
) -> None:
    """Heartbeats of the same devices reach both workers in every order; each batch upserts
    their rows. Keyed by device, the batches take those rows in one order: no deadlock (which
    PostgreSQL would break after a second by failing a whole batch)."""
    devices = [f"beat-{n}" for n in range(6)]
    provision(pg_url, *devices)
    for worker in workers:
        await worker.service.devices.reload()
    body = b'{"v":1,"uptime_s":5,"queue_depth":0,"fw":"t"}'
    sent = 0
    async with contextlib.AsyncExitStack() as stack:
        queues = [
            await stack.enter_async_context(w.service.bus.subscribe(frozenset({"telemetry"})))
            for w in workers
        ]
        for round_ in range(100):
            order = devices if round_ % 2 else devices[::-1]
            for device_id in order:
                topic = p.device_topic(device_id, p.Channel.TELEMETRY)
                probe.client.publish(topic, body, qos=1)
                sent += 1
        counts = [0] * len(queues)
        all_recorded = asyncio.Event()

        async def count(n: int, queue: asyncio.Queue[Notice]) -> None:
            while True:  # each recorded report is one local notice, after its commit
                if (await queue.get()).origin is None:
                    counts[n] += 1
                    if sum(counts) >= sent:
                        all_recorded.set()

        counters = [asyncio.create_task(count(n, q)) for n, q in enumerate(queues)]
        try:
            await asyncio.wait_for(all_recorded.wait(), 60)
        finally:
            for task in counters:
                task.cancel()
    failures = [
        w.service.metrics.write_failures.labels("telemetry", "transient")._value.get()
        for w in workers
    ]
    assert failures == [0, 0]


async def test_notices_flow_again_after_the_server_dropped_the_listening_sessions(
    workers: list[Ingest], pg_url: str
) -> None:
    """A PostgreSQL restart ends every LISTEN session: each worker reconnects with backoff and
    tells its own listeners to re-read (``resync``: notices may have been missed)."""
    import psycopg

    first = workers[0]
    async with contextlib.AsyncExitStack() as stack:
        queues = [
            await stack.enter_async_context(w.service.bus.subscribe(frozenset({"event"})))
            for w in workers
        ]
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'edgeorder-ingest' AND datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        for queue in queues:  # each worker's own listeners hear it
            notice = await asyncio.wait_for(queue.get(), 30)
            assert (notice.kind, notice.origin) == ("resync", None)
        for worker in workers:
            fanout = worker.service.fanout
            assert fanout is not None
            await asyncio.wait_for(fanout.listening.wait(), 30)
        first.service.bus.publish(Notice("event", "after-01", {}))
        while True:
            notice = await asyncio.wait_for(queues[1].get(), 10)
            if notice.kind == "event":
                break
    assert (notice.device_id, notice.origin) == ("after-01", "w0")


async def test_every_worker_serves_the_same_fleet_and_the_same_sessions(
    workers: list[Ingest], pg_url: str, probe: MqttProbe
) -> None:
    """A device added through one worker's REST API is listed by the other's API and
    dashboard; an operator logged in through one worker is logged in on the other (sessions,
    tokens and operators live in the shared database)."""
    first, second = workers
    with Database.from_url(pg_url).open() as conn:
        token = create_api_token(conn, "fleet-test")
        ensure_hash = PasswordHasher().hash("s3cret-pass")
        conn.execute(
            "INSERT INTO operators (username, password_hash, created_at) VALUES (?, ?, ?)",
            ["admin", ensure_hash, p.format_ts(p.utcnow())],
        )
    bearer = {"Authorization": f"Bearer {token}"}
    mapping = {"single": {"type": "reorder", "sku": "COFFEE-1KG", "quantity": 1}}
    async with aiohttp.ClientSession(headers=bearer) as http:
        async with http.post(
            first.url + "/api/devices", json={"device_id": "shared-01", "mapping": mapping}
        ) as resp:
            assert resp.status == 201, await resp.text()
        for worker in workers:
            async with http.get(worker.url + "/api/devices") as resp:
                assert resp.status == 200
                ids = [d["device_id"] for d in (await resp.json())["Data"]]
                assert "shared-01" in ids
            async with http.get(worker.url + "/") as resp:  # the fleet page
                assert resp.status == 200
                assert "shared-01" in await resp.text()
    event = press("shared-01")  # and the device presses: recorded by either, listed by both
    probe.publish(p.device_topic("shared-01", p.Channel.EVENTS), p.encode(event))
    await wait_for(probe, status_is("shared-01", event.event_id, "ordered"))
    async with aiohttp.ClientSession(headers=bearer) as http:
        for worker in workers:
            async with http.get(worker.url + "/api/events?device_id=shared-01") as resp:
                events = (await resp.json())["Data"]
                assert [e["event_id"] for e in events] == [event.event_id]
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        async with browser.post(
            first.url + "/login",
            data={"username": "admin", "password": "s3cret-pass"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303, await resp.text()
        cookie = jar.filter_cookies(yarl.URL(first.url))["edgeorder_session"].value
    async with (
        aiohttp.ClientSession(cookies={"edgeorder_session": cookie}) as browser,
        browser.get(second.url + "/devices/shared-01", allow_redirects=False) as resp,
    ):
        assert resp.status == 200  # the session opened on the first worker
