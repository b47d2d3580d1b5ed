"""ingest's fleet gauges on ``/metrics``: devices by state, MQTT and platform up, the oldest
buffered order's age, build info -- a real ingest, Mosquitto and order core, scraped over HTTP;
the device-state SQL on both backends."""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from edgeorder import __version__
from edgeorder import protocol as p
from edgeorder.ingest.store import queries, registry
from edgeorder.ingest.store.database import Database
from edgeorder.ingest.store.reports import record_presence
from tests.ingest.support import Ingest, OrderCore, add_device, press, status_is, wait_for
from tests.support.mqtt import MqttProbe

MAPPING = p.ButtonMapping(single=p.ReorderAction(sku="COFFEE-1KG", quantity=1))
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(ingest: Ingest) -> Samples:
    status, text = await ingest.get("/metrics")
    assert status == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def scrape_until(
    ingest: Ingest, done: Callable[[Samples], bool], within_s: float = 15
) -> Samples:
    """Scrape until ``done`` holds (what it waits for is written by another task)."""
    async with asyncio.timeout(within_s):
        while True:
            samples = await scrape(ingest)
            if done(samples):
                return samples
            await asyncio.sleep(0.05)  # poll with a deadline: the write lands on another task


def test_device_states_on_both_backends(database: Database) -> None:
    now = p.utcnow()
    with database.open() as conn:
        for device_id in ("on-1", "on-2", "off-1", "never", "dis-1"):
            registry.add_device(conn, device_id, mapping=MAPPING)
        for device_id in ("on-1", "on-2", "dis-1"):
            record_presence(conn, device_id, p.Presence(online=True, fw="1.2", ts=now), now)
        record_presence(conn, "off-1", p.Presence(online=False, fw="1.2", ts=now), now)
        registry.set_enabled(conn, "dis-1", False)
        assert queries.device_states(conn) == {"online": 2, "offline": 2, "disabled": 1}


def test_device_states_of_an_empty_fleet_lists_every_state(database: Database) -> None:
    with database.open() as conn:
        assert queries.device_states(conn) == {"online": 0, "offline": 0, "disabled": 0}


async def test_links_fleet_and_build_info(
    ingest: Ingest, ingest_dir: Path, probe: MqttProbe
) -> None:
    for device_id in ("m-on", "m-off", "m-dis"):
        add_device(ingest_dir, device_id)
    await ingest.service.devices.reload()
    await ingest.service.writer.run(lambda c: registry.set_enabled(c, "m-dis", False))
    presence = p.Presence(online=True, fw="2.0", ts=p.utcnow())
    probe.publish(p.device_topic("m-on", p.Channel.PRESENCE), p.encode(presence), qos=1)

    samples = await scrape_until(
        ingest, lambda s: value(s, "edgeorder_devices", state="online") == 1
    )
    assert value(samples, "edgeorder_devices", state="offline") == 1
    assert value(samples, "edgeorder_devices", state="disabled") == 1
    assert value(samples, "edgeorder_mqtt_up") == 1
    assert value(samples, "edgeorder_order_platform_up") == 1
    assert value(samples, "edgeorder_buffered_order_oldest_age_seconds") == 0
    build = {
        "service": "ingest",
        "version": __version__,
        "python": platform.python_version(),
        "backend": "sqlite",
    }
    assert value(samples, "edgeorder_build_info", **build) == 1
    # the renamed-by-convention counters: exposed with _total
    assert value(samples, "edgeorder_ingest_events_received_total") is not None


async def test_platform_down_and_buffered_order_age(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "m-buf")
    await ingest.service.devices.reload()
    await ordercore.stop()
    event = press("m-buf")
    probe.publish(p.device_topic("m-buf", p.Channel.EVENTS), p.encode(event), qos=1)
    await wait_for(probe, status_is("m-buf", event.event_id, "queued"))

    samples = await scrape_until(
        ingest, lambda s: (value(s, "edgeorder_buffered_order_oldest_age_seconds") or 0) > 0
    )
    assert value(samples, "edgeorder_order_platform_up") == 0
    assert value(samples, "edgeorder_mqtt_up") == 1

    await ordercore.start()
    await wait_for(probe, status_is("m-buf", event.event_id, "ordered"))
    samples = await scrape_until(
        ingest, lambda s: value(s, "edgeorder_buffered_order_oldest_age_seconds") == 0
    )
    assert value(samples, "edgeorder_order_platform_up") == 1


async def test_mqtt_down_is_zero(ingest: Ingest) -> None:
    await ingest.service.link.stop()
    samples = await scrape(ingest)
    assert value(samples, "edgeorder_mqtt_up") == 0
