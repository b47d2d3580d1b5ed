"""The agent's GPIO through gpiozero's MockFactory: drive the button pin, watch the LED pins.

No broker listens on the configured port, so these also show the offline behaviour: presses
are acknowledged at once, stored, and the LED says offline.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edgeorder import protocol as p
from edgeorder.agent.outbox import Outbox
from edgeorder.agent.runtime import Agent
from edgeorder.protocol.device import Reading
from tests.agent.support import Recorder, SkewClock, make_config, running, signal_factory
from tests.support.net import free_port


def stored_clicks(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    rows = db.execute("SELECT payload FROM events ORDER BY n").fetchall()
    db.close()
    return [p.decode(p.Event, bytes(r[0])).trigger for r in rows]


async def test_button_edges_become_clicks_and_led_acks_offline(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, free_port(), button={"long_press_ms": 300})
    factory, rec, clock = signal_factory(), Recorder(), SkewClock()
    agent = Agent(cfg, pin_factory=factory, on_led=rec.on_led, on_event=rec.on_event, clock=clock)
    button, led = factory.pin(17), factory.pin(27)
    async with running(agent):
        await rec.led("offline", "offline")
        led.wait_state(lambda s: s == 1)  # heartbeat blink lights it

        mark = len(rec.leds)
        button.drive_low()  # press: acknowledged on the LED before the click is decided
        await rec.led("press_ack", "pressed", since=mark)
        button.drive_high()
        await rec.until(lambda: len(rec.events) == 1)
        await rec.led("offline", "offline", since=mark + 1)

        for _ in range(2):  # a double press: 100 ms down, 100 ms up, in agent time
            button.drive_low()
            clock.advance(0.1)
            button.drive_high()
            clock.advance(0.1)
        await rec.until(lambda: len(rec.events) == 2)

        button.drive_low()  # held past long_press_ms: long fires while still held
        await rec.until(lambda: len(rec.events) == 3)
        button.drive_high()
        clock.advance(0.1)

        for _ in range(3):  # contact bounce: edges 1 ms apart are one press, not a double
            button.drive_low()
            clock.advance(0.001)
            button.drive_high()
            clock.advance(0.001)
        await rec.until(lambda: len(rec.events) == 4)
        assert agent.queue_depth == 4
    assert [e.click for e in rec.events] == [
        p.Click.SINGLE,
        p.Click.DOUBLE,
        p.Click.LONG,
        p.Click.SINGLE,
    ]
    assert stored_clicks(cfg.outbox.path) == ["single", "double", "long", "single"]
    assert [e.seq for e in rec.events] == [1, 2, 3, 4]


async def test_rgb_led_colours(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, free_port(), led={"rgb": {"red": 5, "green": 6, "blue": 13}})
    factory, rec = signal_factory(), Recorder()
    agent = Agent(cfg, pin_factory=factory, on_led=rec.on_led)
    red, green, blue = factory.pin(5), factory.pin(6), factory.pin(13)
    async with running(agent):
        await rec.led("offline", "offline")
        red.wait_state(lambda s: s > 0)  # red heartbeat
        assert green.state == 0
        assert blue.state == 0
        agent.press("single")
        await rec.led("press_ack")
        for pin in (red, green, blue):  # white blink
            pin.wait_state(lambda s: s > 0)


async def test_simulated_press_and_restart_keeps_outbox_and_seq(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, free_port())
    rec = Recorder()
    agent = Agent(cfg, pin_factory=signal_factory(), on_event=rec.on_event)
    async with running(agent):
        agent.press("single")
        agent.press("double")
        await rec.until(lambda: len(rec.events) == 2)

    rec2 = Recorder()
    again = Agent(cfg, pin_factory=signal_factory(), on_event=rec2.on_event)
    async with running(again):
        assert again.queue_depth == 2  # loaded from the outbox
        again.press("long")
        await rec2.until(lambda: len(rec2.events) == 1)
    assert rec2.events[0].seq == 3
    assert stored_clicks(cfg.outbox.path) == ["single", "double", "long"]


async def test_level_switch_pin_drives_sensor_events(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path,
        free_port(),
        sensor={"type": "level_switch", "name": "tank", "pin": 22, "pull_up": False, "poll_ms": 10},
    )
    factory, rec = signal_factory(), Recorder()
    agent = Agent(cfg, pin_factory=factory, on_event=rec.on_event)
    async with running(agent):
        # the switch's pin is pulled down: the tank reads empty, which is one event
        await rec.until(lambda: len(rec.events) == 1)
        agent.sensor("tank", 1.0)  # a (simulated) refill re-arms the same trigger ...
        await rec.until(lambda: len(rec.events) == 2)  # ... and the pin, still low, fires again
        factory.pin(22).drive_high()
    assert [e.sensor for e in rec.events] == [Reading("tank", 0.0)] * 2
    assert all(e.kind is p.EventKind.SENSOR and e.click is None for e in rec.events)


async def test_unknown_sensor_name_is_ignored(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path,
        free_port(),
        sensor={"type": "mcp3008", "name": "beans", "channel": 0, "threshold": 0.2},
    )
    rec = Recorder()
    agent = Agent(cfg, pin_factory=signal_factory(), on_event=rec.on_event)
    async with running(agent):
        agent.sensor("other", 0.0)  # not configured: logged, ignored
        agent.sensor("beans", 0.5)
        agent.sensor("beans", 0.1)  # crossing: one event
        agent.sensor("beans", 0.05)
        await rec.until(lambda: len(rec.events) == 1)
        agent.press("single")  # handled after the readings above: they made no more events
        await rec.until(lambda: len(rec.events) == 2)
    assert rec.events[0].sensor == Reading("beans", 0.1)
    assert rec.events[1].click is p.Click.SINGLE


async def test_full_outbox_drops_oldest_and_counts(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, free_port(), outbox={"max_events": 2})
    rec = Recorder()
    agent = Agent(cfg, pin_factory=signal_factory(), on_event=rec.on_event)
    async with running(agent):
        for click in ("single", "double", "long"):
            agent.press(click)
        await rec.until(lambda: len(rec.events) == 3)
        assert agent.queue_depth == 2
    assert stored_clicks(cfg.outbox.path) == ["double", "long"]  # the newest two are kept
    box = Outbox(cfg.outbox.path)
    assert box.dropped() == 1
    box.close()
