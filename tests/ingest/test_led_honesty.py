"""The LED tells what a press led to, through the whole chain: gpiozero MockFactory pins on
the agent, real Mosquitto, ingest in this loop and the real order core. A click mapped to
nothing and a long press with nothing to cancel show "nothing to do" (one long blink), never
the fast blink of an order in progress; a cancel that went through shows "cancelled"."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from edgeorder import protocol as p
from edgeorder.agent.runtime import Agent
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from edgeorder.protocol.device import DeviceEvent
from tests.agent.support import Recorder, SkewClock, running, signal_factory
from tests.chaos.support import device_config
from tests.ingest.support import Ingest, OrderCore
from tests.support.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration

BUTTON, LED = 17, 27


def register(data_dir: Path, device_id: str) -> None:
    """single: reorder; double: nothing; long: cancel the last order (the default)."""
    db = open_db(data_dir / "ingest.db")
    try:
        mapping = p.ButtonMapping(single=p.ReorderAction(sku="COFFEE-1KG"), double=p.NoAction())
        registry.add_device(db, device_id, mapping=mapping)
    finally:
        db.conn.close()


class Button:
    """Drives the agent's button pin; ``clock`` is the agent's, moved instead of sleeping."""

    def __init__(self, factory: MockFactory, clock: SkewClock, rec: Recorder) -> None:
        self.pin = factory.pin(BUTTON)
        self.clock, self.rec = clock, rec

    async def click(self, kind: str) -> DeviceEvent:
        before = len(self.rec.events)
        self.clock.advance(1.0)  # well apart from the last click's edges (no bounce, no double)
        if kind == "long":  # held past long_press_ms: the long click fires while held
            self.pin.drive_low()
            await self.rec.until(lambda: len(self.rec.events) > before)
            self.pin.drive_high()
            self.clock.advance(0.1)
        else:
            for _ in range(2 if kind == "double" else 1):
                self.pin.drive_low()
                self.clock.advance(0.05)
                self.pin.drive_high()
                self.clock.advance(0.05)
            await self.rec.until(lambda: len(self.rec.events) > before)
        event = self.rec.events[-1]
        assert event.trigger == kind
        return event


def leds_after(rec: Recorder, mark: int) -> list[tuple[str, str]]:
    return rec.leds[mark:]


async def test_nothing_to_do_and_cancelled_are_what_the_led_shows(
    tmp_path: Path, mosquitto: MosquittoServer, ordercore: OrderCore, ingest: Ingest
) -> None:
    register(ingest.settings.data_dir, "honest-01")
    await ingest.service.devices.reload()
    factory, rec, clock = signal_factory(), Recorder(), SkewClock()
    cfg = device_config(tmp_path, "honest-01", mosquitto.port)
    agent = Agent(cfg, pin_factory=factory, clock=clock, **rec.hooks())
    button, led = Button(factory, clock, rec), factory.pin(LED)
    async with running(agent):
        await rec.until(lambda: agent.connected)

        # A double click maps to nothing: one long blink, then off; no "accepted" fast blink.
        mark = len(rec.leds)
        event = await button.click("double")
        await rec.led("nothing", "accepted", since=mark)
        await asyncio.to_thread(led.wait_state, lambda s: s == 1)  # lit by the blink thread
        await rec.led("off", "accepted", since=mark)
        assert ("accepted", "accepted") not in leds_after(rec, mark)
        assert agent.press_state(event.event_id) is p.State.ACCEPTED
        assert agent.open_presses == 0  # settled: the device does not ask again

        # A long press with no order to cancel: nothing to do too, not the red error blinks.
        mark = len(rec.leds)
        await button.click("long")
        await rec.led("nothing", "rejected", since=mark)
        assert not [led for led in leds_after(rec, mark) if led[0] == "error"]

        # An order, then a long press that cancels it: "cancelled", not merely off.
        mark = len(rec.leds)
        ordered = await button.click("single")
        await rec.led("ordered", "ordered", since=mark)
        mark = len(rec.leds)
        cancel = await button.click("long")
        await rec.led("cancelled", "cancelled", since=mark)
        await asyncio.to_thread(led.wait_state, lambda s: s == 1)  # lit by the blink thread
        await rec.led("off", "cancelled", since=mark)
        assert agent.press_state(cancel.event_id) is p.State.CANCELLED
        await rec.until(lambda: agent.press_state(ordered.event_id) is p.State.CANCELLED)
    orders = await ordercore.orders("honest-01")
    assert len(orders) == 1
