"""Helpers for the agent tests: configs, a recorder to await LED changes and events, a mock
pin that signals its changes, a running-agent context, and a scripted status responder."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from gpiozero.pins.mock import MockFactory, MockPWMPin

from edgeorder import protocol as p
from edgeorder.agent.config import AgentConfig, parse_config
from edgeorder.agent.runtime import Agent
from edgeorder.protocol.device import DeviceEvent, DeviceStatus
from tests.support.mqtt import MqttProbe


def make_config(tmp_path: Path, port: int, **tables: dict[str, Any]) -> AgentConfig:
    """A config for device ``dev-1`` on ``127.0.0.1:port`` with fast reconnects and retries."""
    data: dict[str, Any] = {
        "device_id": "dev-1",
        "mqtt": {
            "url": f"mqtt://127.0.0.1:{port}",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1.0,
            "keepalive_s": 5,
        },
        "outbox": {"path": str(tmp_path / "outbox.db"), "retry_min_s": 2.0, "retry_max_s": 4.0},
    }
    for name, table in tables.items():
        data[name] = {**data.get(name, {}), **table}
    return parse_config(data, source="test", base_dir=tmp_path)


class Recorder:
    """Collects ``on_led``/``on_event`` calls (made on the agent's loop) and awaits them."""

    def __init__(self) -> None:
        self.leds: list[tuple[str, str]] = []
        self.events: list[DeviceEvent] = []
        self.statuses: list[DeviceStatus] = []
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def on_led(self, pattern: str, state: str) -> None:
        self.leds.append((pattern, state))
        self._wake()

    def on_event(self, event: DeviceEvent) -> None:
        self.events.append(event)
        self._wake()

    def on_status(self, status: DeviceStatus) -> None:
        self.statuses.append(status)
        self._wake()

    def hooks(self) -> dict[str, Any]:
        """Keyword arguments wiring this recorder into an ``Agent``."""
        return {"on_led": self.on_led, "on_event": self.on_event, "on_status": self.on_status}

    def answered(self) -> set[str]:
        return {s.event_id for s in self.statuses if s.event_id is not None}

    def _wake(self) -> None:
        for pred, fut in self._waiters:
            if not fut.done() and pred():
                fut.set_result(None)

    async def until(self, pred: Callable[[], bool], wait_s: float = 15) -> None:
        """Return once ``pred()`` holds (checked at every recorded change)."""
        if pred():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (pred, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(fut, wait_s)
        except TimeoutError:
            raise TimeoutError(
                f"timed out; leds={self.leds[-8:]}, events={len(self.events)}"
            ) from None
        finally:
            self._waiters.remove(entry)

    async def led(self, pattern: str, state: str | None = None, *, since: int = 0) -> int:
        """Await ``pattern`` (and ``state``) at or after index ``since``; return its index."""

        def find() -> int | None:
            return next(
                (
                    i
                    for i, (pat, st) in enumerate(self.leds)
                    if i >= since and pat == pattern and (state is None or st == state)
                ),
                None,
            )

        await self.until(lambda: find() is not None)
        index = find()
        assert index is not None
        return index


class SkewClock:
    """``time.monotonic()`` plus an offset the test moves forward: edges driven back to back
    can be spaced out in agent time (past the bounce window) without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class SignalPin(MockPWMPin):
    """A mock pin whose every state change notifies ``changed`` (blinks run on gpiozero's
    thread, so tests block on this condition instead of sleeping)."""

    changed = threading.Condition()

    def _change_state(self, value: Any) -> bool:
        with SignalPin.changed:
            result: bool = super()._change_state(value)
            SignalPin.changed.notify_all()
        return result

    def wait_state(self, pred: Callable[[float], bool], timeout: float = 10) -> None:
        with SignalPin.changed:
            if not SignalPin.changed.wait_for(lambda: pred(self.state), timeout):
                raise TimeoutError(f"pin {self} stayed at {self.state}")


def signal_factory() -> MockFactory:
    return MockFactory(pin_class=SignalPin)


def recorded_agent(config: AgentConfig) -> tuple[Agent, Recorder]:
    """An agent on signalling mock pins, and the recorder of its LED changes and events."""
    rec = Recorder()
    return Agent(config, pin_factory=signal_factory(), **rec.hooks()), rec


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``agent`` for the duration of the block; stop it cleanly afterwards."""
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.ready.wait(), 10)
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


class Responder(MqttProbe):
    """Plays ingest: answers every event with ``accepted`` (then ``then`` if given), retained
    on the device's status topic, and records every event id it saw (duplicates included).

    ``lose_outcome``: the first delivery of an event is answered ``accepted`` only, as if the
    broker lost the ``then`` status after acknowledging it; a repeat is answered with the
    event's current state (``then``), as ingest answers a duplicate."""

    def __init__(
        self,
        port: int,
        *,
        then: p.State | None = None,
        ignore_first: bool = False,
        lose_outcome: bool = False,
        **kwargs: Any,
    ) -> None:
        self.then, self.ignore_first, self.lose_outcome = then, ignore_first, lose_outcome
        self.seen: list[str] = []
        self.seen_cond = threading.Condition()
        self._connects = 0
        super().__init__(port, **kwargs)
        self.subscribe(p.subscription(p.Channel.EVENTS))

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object = None
    ) -> None:
        super()._on_connect(client, userdata, flags, rc, props)
        self._connects += 1
        if self._connects > 1:  # after a broker restart: the session may not have survived
            client.subscribe(p.subscription(p.Channel.EVENTS), 1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        super()._on_message(client, userdata, msg)
        if not msg.topic.endswith("/events"):
            return
        event = p.decode(p.Event, bytes(msg.payload))
        topic = p.device_topic(event.device_id, p.Channel.STATUS)
        first = event.event_id not in self.seen
        states = [s for s in (p.State.ACCEPTED, self.then) if s is not None]
        if self.lose_outcome:
            states = states[:1] if first else states[-1:]
        for state in states:
            if first and self.ignore_first:
                break
            status = p.Status(
                event_id=event.event_id,
                state=state,
                ts=p.utcnow(),
                order_id="100" if state is p.State.ORDERED else None,
            )
            client.publish(topic, p.encode(status), qos=1, retain=True)
        with self.seen_cond:
            self.seen.append(event.event_id)
            self.seen_cond.notify_all()

    def wait_unique(self, ids: set[str], timeout: float = 30) -> None:
        """Block until every id in ``ids`` was seen at least once."""
        with self.seen_cond:
            if not self.seen_cond.wait_for(lambda: ids <= set(self.seen), timeout):
                missing = ids - set(self.seen)
                raise TimeoutError(f"{len(missing)} of {len(ids)} events never arrived")


def presence_payloads(probe: MqttProbe) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in probe.messages if m.topic.endswith("/presence")]
