"""End to end: real Mosquitto, ingest in this loop, the real order core over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import protocol as p
from tests.ingest.support import (
    COFFEE_PRICE,
    Ingest,
    OrderCore,
    add_device,
    press,
    status_is,
    wait_for,
)
from tests.support.mqtt import MqttProbe

pytestmark = pytest.mark.integration


async def test_one_press_becomes_exactly_one_order(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "kitchen-01", quantity=2)
    event = press("kitchen-01")
    probe.publish(p.device_topic("kitchen-01", p.Channel.EVENTS), p.encode(event))

    await wait_for(probe, status_is("kitchen-01", event.event_id, "accepted"))
    ordered = await wait_for(probe, status_is("kitchen-01", event.event_id, "ordered"))
    order_id = json.loads(ordered[0].payload)["order_id"]
    states = [json.loads(m.payload)["state"] for m in probe.messages
              if json.loads(m.payload).get("event_id") == event.event_id]
    assert states[:2] == ["accepted", "ordered"]
    orders = await ordercore.orders("kitchen-01")
    assert [str(o["Id"]) for o in orders] == [order_id]
    order = orders[0]
    assert order["Device"] == {"Id": "kitchen-01"}
    assert [(i["Sku"], i["Quantity"]) for i in order["OrderItems"]] == [("COFFEE-1KG", 2)]
    assert order["Amount"] == 2 * COFFEE_PRICE
    assert order["Test"] is False
