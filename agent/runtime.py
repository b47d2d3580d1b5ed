"""The device agent: one asyncio worker that owns all state.

Threads only hand off: gpiozero edge callbacks, paho callbacks and the thread-safe
``press``/``sensor`` methods all end in the worker's queue (``agent.handoff``). The worker
classifies clicks, stores events in the outbox (on its own thread), publishes them, hands
statuses to the press tracker (``agent.tracker``: re-publishing unacknowledged events, asking
again for the outcome of open presses, never moving a press backwards), applies configs and
drives the LED from its pure state (``agent.led_state``). A second coroutine on the same loop
supervises the connection.

Several agents may run in one process; each has its own paho client, outbox file, LED and
button, and needs its own pin factory (or distinct pins) when they share gpiozero.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog
from gpiozero import Button, Factory
from gpiozero.exc import GPIOZeroError

from edgeorder.agent.classifier import ClickClassifier, ClickTimings
from edgeorder.agent.config import AgentConfig
from edgeorder.agent.errors import AgentError, OutboxFullError
from edgeorder.agent.gpio import Edge, SensorReader, make_button, make_sensor_reader
from edgeorder.agent.handoff import Handoff, SensorValue, SimClick
from edgeorder.agent.inbound import parse_inbound, timings_for
from edgeorder.agent.led import LedDriver
from edgeorder.agent.led_state import LedState
from edgeorder.agent.mqtt_link import Inbound, LinkDown, LinkUp, MqttLink
from edgeorder.agent.outbox import AsyncOutbox, Outbox
from edgeorder.agent.presses import Verdict, settles
from edgeorder.agent.sensor_trigger import SensorTrigger, TriggerSettings
from edgeorder.agent.tracker import PressTracker
from edgeorder.agent.version import FW_VERSION
from edgeorder.kit.backoff import Backoff
from edgeorder.protocol.device import (
    DesiredConfig,
    DeviceEvent,
    DeviceStatus,
    Reading,
    config_reported_payload,
    telemetry_payload,
)
from edgeorder.protocol.errors import ProtocolError
from edgeorder.protocol.led import Pattern
from edgeorder.protocol.topics import Channel
from edgeorder.protocol.values import Click, EventKind, State, new_ulid, utcnow

__all__ = ["Agent"]

log = structlog.get_logger(__name__)

STABLE_S = 10.0
"""A connection that lasted this long resets the reconnect backoff; a quicker kick grows it."""


def _state(value: str | None) -> State | None:
    return None if value is None else State(value)


def _value(state: State | None) -> str | None:
    return None if state is None else state.value


@dataclass
class _Counters:
    dropped: int = 0
    published: int = 0


class Agent:
    """One device. ``await run(stop)`` until ``stop`` is set; ``press``/``sensor`` simulate
    input from any thread; ``on_led(pattern, state)`` hears every LED change and
    ``on_event(event)`` every event once it is stored, ``on_status(status)`` every valid
    status received (all on the agent's event loop)."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        pin_factory: Factory | None = None,
        on_led: Callable[[str, str], None] | None = None,
        on_event: Callable[[DeviceEvent], None] | None = None,
        on_status: Callable[[DeviceStatus], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self._factory, self._on_led, self._clock = config, pin_factory, on_led, clock
        self._on_event, self._status_listener = on_event, on_status
        self.device_id = config.device_id
        b = config.button
        self._classifier = ClickClassifier(
            ClickTimings.from_ms(b.bounce_ms, b.double_window_ms, b.long_press_ms)
        )
        s = config.sensor
        self._trigger = (
            None
            if s is None
            else SensorTrigger(
                TriggerSettings(s.threshold, s.hysteresis, s.min_dwell_ms / 1000, s.trigger)
            )
        )
        self._input = Handoff(self.device_id)
        self._led_state = LedState()
        self._presses = PressTracker(config.outbox)
        self._counters = _Counters()
        self._seq = 0
        self._config_version: int | None = None
        self._started_at = clock()
        self._link_down = asyncio.Event()
        self.ready = asyncio.Event()
        """Set once ``run`` has opened the outbox and the GPIO devices."""
        self._connected_at: float | None = None
        self._next_heartbeat = 0.0
        self._next_poll = 0.0
        self._last_reading: Reading | None = None  # sent with the next heartbeat
        self._outbox = AsyncOutbox(
            partial(
                Outbox,
                config.outbox.path,
                max_events=config.outbox.max_events,
                overflow=config.outbox.overflow,
                keep_settled=config.outbox.keep_settled,
            )
        )
        self._link: MqttLink | None = None
        self._led: LedDriver | None = None
        self._button: Button | None = None
        self._sensor: SensorReader | None = None

    # -- thread-safe input ------------------------------------------------------------------

    def press(self, click: str) -> None:
        """Simulate a classified click (``single``/``double``/``long``); any thread.

        From another thread this waits while the worker's queue is full (back-pressure for
        scripted floods); on the agent's own loop it never blocks.
        """
        self._input.submit(SimClick(Click(click), self._clock()))

    def sensor(self, name: str, value: float) -> None:
        """Simulate one sensor reading; any thread (same queueing as ``press``)."""
        self._input.submit(SensorValue(name, float(value), self._clock()))

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then presence goes offline and the outbox stays intact."""
        self._input.bind(asyncio.get_running_loop())
        try:
            await self._open()
            self.ready.set()
            supervisor = asyncio.create_task(self._supervise(), name=f"mqtt-{self.device_id}")
            try:
                await self._work(stop)
            finally:
                supervisor.cancel()
                await asyncio.gather(supervisor, return_exceptions=True)
        finally:
            await self._close()
            self._input.bind(None)

    async def _open(self) -> None:
        try:
            await self._outbox.open()
        except (OSError, sqlite3.Error) as exc:
            raise AgentError(f"cannot open outbox {self.config.outbox.path}: {exc}") from exc
        self._seq = await self._outbox.last_seq()
        depth_dropped = await self._outbox.counts()
        self._counters.dropped = depth_dropped[1]
        await self._load_presses()
        try:
            self._led = LedDriver(self.config.led, self._factory)
            self._button = make_button(
                self.config.button, self._factory, self._input.post, self._clock
            )
            if self.config.sensor is not None:
                self._sensor = make_sensor_reader(self.config.sensor, self._factory)
        except GPIOZeroError as exc:
            raise AgentError(f"GPIO set-up failed: {exc}") from exc
        self._link = MqttLink(self.config, FW_VERSION, self._input.post)
        self._refresh_led()
        log.info(
            "agent.started",
            device_id=self.device_id,
            pending=self._presses.unacknowledged,
            open=self._presses.open,
            url=self.config.mqtt.url,
        )

    async def _load_presses(self) -> None:
        """Unsettled events back into their schedules, settled ones into the book; the
        newest into the LED's recent window."""
        settled = await self._outbox.settled()
        pending = await self._outbox.pending()
        self._presses.load(
            ((e.event_id, e.payload, _state(e.state)) for e in pending),
            ((s.event_id, _state(s.state)) for s in settled),
            self._clock(),
        )
        for event_id in sorted([*(s.event_id for s in settled), *(e.event_id for e in pending)]):
            self._led_state.recent.append(event_id)  # ULIDs sort by creation time

    async def _close(self) -> None:
        if self._link is not None:
            await self._link.close()
        for dev in (self._button, self._sensor, self._led):
            if dev is not None:
                dev.close()
        await self._outbox.close()
        log.info("agent.stopped", device_id=self.device_id, pending=self._presses.unacknowledged)

    async def _supervise(self) -> None:
        """Connect, wait for the link to drop, back off (jittered, exponential), repeat."""
        assert self._link is not None
        m = self.config.mqtt
        backoff = Backoff(m.reconnect_min_s, m.reconnect_max_s)
        while True:
            self._link_down.clear()
            if await self._link.connect():
                await self._link_down.wait()
                await self._link.join_loop()
                up = self._connected_at
                if up is not None and self._clock() - up >= STABLE_S:
                    backoff.reset()
            delay = backoff.next()
            log.info("agent.reconnect_wait", device_id=self.device_id, delay_s=round(delay, 2))
            await asyncio.sleep(delay)

    # -- the worker -------------------------------------------------------------------------

    async def _work(self, stop: asyncio.Event) -> None:
        stopper = asyncio.ensure_future(stop.wait())
        getter: asyncio.Future[Any] = asyncio.ensure_future(self._input.queue.get())
        try:
            while not stop.is_set():
                timeout = max(0.0, self._next_wake() - self._clock())
                await asyncio.wait(
                    {stopper, getter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if getter.done():
                    await self._handle_safely(getter.result())
                    getter = asyncio.ensure_future(self._input.queue.get())
                await self._on_time(self._clock())
        finally:
            stopper.cancel()
            getter.cancel()

    def _next_wake(self) -> float:
        times = [
            self._next_heartbeat if self._led_state.connected else None,
            self._classifier.deadline(),
            self._led_state.until,
            self._presses.next_at() if self._led_state.connected else None,
            self._next_poll if self._sensor is not None else None,
        ]
        return min((t for t in times if t is not None), default=self._clock() + 3600)

    async def _handle_safely(self, item: object) -> None:
        """Handle one input; a bug or a failing disk is logged, never the end of the loop."""
        try:
            await self._handle(item)
        except Exception:
            log.exception("agent.handle_failed", device_id=self.device_id, item=repr(item))

    async def _handle(self, item: object) -> None:
        if isinstance(item, Edge):
            await self._on_edge(item)
        elif isinstance(item, SimClick):
            self._local_press(item.at)
            await self._make_event(item.at, click=item.click)
        elif isinstance(item, SensorValue):
            await self._on_reading(item.name, item.value, item.at)
        elif isinstance(item, LinkUp):
            self._on_link_up(item)
        elif isinstance(item, LinkDown):
            self._on_link_down(item)
        elif isinstance(item, Inbound):
            await self._on_inbound(item)

    async def _on_time(self, now: float) -> None:
        # A click deadline is judged only once no older edge waits in the queue.
        for click in self._classifier.tick(now) if self._input.queue.empty() else []:
            await self._make_event(now, click=click)
        until = self._led_state.until
        if until is not None and now >= until:
            self._refresh_led()
        if self._led_state.connected:
            await self._publish_due(now)
            if now >= self._next_heartbeat:
                await self._heartbeat(now)
        if self._sensor is not None and now >= self._next_poll:
            assert self.config.sensor is not None
            self._next_poll = now + self.config.sensor.poll_ms / 1000
            await self._on_reading(self._sensor.name, self._sensor.read(), now)

    # -- input -> events --------------------------------------------------------------------

    async def _on_edge(self, edge: Edge) -> None:
        if edge.pressed:
            self._local_press(edge.at)
            clicks = self._classifier.pressed(edge.at)
        else:
            clicks = self._classifier.released(edge.at)
        for click in clicks:
            await self._make_event(edge.at, click=click)

    def _local_press(self, at: float) -> None:
        """Acknowledge a press on the LED at once, before anything touches the disk."""
        self._led_state.pressed(at)
        self._refresh_led(restart=True)

    async def _on_reading(self, name: str, value: float, at: float) -> None:
        sensor = self.config.sensor
        if sensor is None or self._trigger is None or name != sensor.name:
            log.warning("agent.unknown_sensor", device_id=self.device_id, sensor=name)
            return
        self._last_reading = Reading(name=name, value=value)
        if self._trigger.reading(value, at):
            await self._make_event(at, reading=Reading(name, value))

    def _wall_time(self, at: float) -> datetime:
        return datetime.fromtimestamp(time.time() - (self._clock() - at), UTC)

    async def _make_event(
        self, at: float, *, click: Click | None = None, reading: Reading | None = None
    ) -> None:
        wall = self._wall_time(at)
        self._seq += 1
        event = DeviceEvent(
            event_id=new_ulid(wall),
            device_id=self.device_id,
            seq=self._seq,
            kind=EventKind.PRESS if click else EventKind.SENSOR,
            click=click,
            sensor=reading,
            ts=wall,
            fw=FW_VERSION,
        )
        payload = event.encode()
        try:
            dropped = await self._outbox.add(event.event_id, payload, self._seq)
        except OutboxFullError as exc:
            self._counters.dropped += 1
            log.warning("agent.outbox_full", device_id=self.device_id, error=str(exc))
            return
        for old in dropped:
            self._presses.dropped(old)
            self._counters.dropped += 1
            log.warning("agent.outbox_dropped_oldest", device_id=self.device_id, event_id=old)
        self._led_state.made(event.event_id)
        self._refresh_led()
        now = self._clock()
        self._presses.made(event.event_id, payload, now)
        log.info(
            "agent.event",
            device_id=self.device_id,
            event_id=event.event_id,
            trigger=event.trigger,
            seq=event.seq,
        )
        self._notify(self._on_event, event)
        if self._led_state.connected:
            await self._publish_due(now)

    async def _publish_due(self, now: float) -> None:
        """Publish every event whose time has come: unacknowledged ones, and open presses to
        ask for their outcome (ingest answers a repeat with the event's current status);
        record the presses past ``ask_for_s`` as given up."""
        assert self._link is not None
        link = self._link
        due = self._presses.run_due(
            now, lambda payload: link.publish(Channel.EVENTS, payload, qos=1)
        )
        self._counters.published += due.published + due.asked
        if due.asked:
            log.info("agent.asked", device_id=self.device_id, presses=due.asked)
        for event_id in due.expired:
            await self._record_given_up(event_id, "ask_for_s passed")

    async def _record_given_up(self, event_id: str, why: str) -> None:
        await self._outbox.give_up(event_id)
        log.warning(
            "agent.press_unsettled",
            device_id=self.device_id,
            event_id=event_id,
            state=_value(self._presses.state(event_id)),
            why=why,
        )

    # -- connection -------------------------------------------------------------------------

    def _on_link_up(self, up: LinkUp) -> None:
        assert self._link is not None
        if not up.ok:
            log.warning("agent.connect_refused", device_id=self.device_id, reason=up.reason)
            self._link.client.disconnect()
            return
        now = self._clock()
        self._connected_at = now
        self._led_state.link(connected=True)
        self._link.subscribe_own()
        self._link.publish(Channel.PRESENCE, self._link.presence(online=True), qos=1, retain=True)
        self._next_heartbeat = now
        self._presses.connected(now)  # what was in flight, or queued for us, may be lost
        log.info(
            "agent.connected",
            device_id=self.device_id,
            session=up.session_present,
            pending=self._presses.unacknowledged,
            open=self._presses.open,
        )
        self._refresh_led()

    def _on_link_down(self, down: LinkDown) -> None:
        self._led_state.link(connected=False)
        self._link_down.set()
        log.info("agent.disconnected", device_id=self.device_id, reason=down.reason)
        self._refresh_led()

    async def _heartbeat(self, now: float) -> None:
        assert self._link is not None
        self._next_heartbeat = now + self.config.telemetry.heartbeat_s
        tele = telemetry_payload(
            uptime_s=int(now - self._started_at),
            queue_depth=self._presses.unacknowledged,
            fw=FW_VERSION,
            dropped=self._counters.dropped,
            ts=utcnow(),
            # extra fields (older backends ignore them): open presses, the latest reading
            extras={"open_presses": self._presses.open, **self._reading_extra()},
        )
        self._link.publish(Channel.TELEMETRY, tele, qos=0)

    def _reading_extra(self) -> dict[str, float]:
        """The latest sensor reading as a telemetry extra field (``sensor.NAME``, at most 64
        characters as extras allow): ingest keeps it for the device page's chart."""
        reading = self._last_reading
        if reading is None:
            return {}
        return {f"sensor.{reading.name}"[:64]: reading.value}

    # -- inbound messages: a router ---------------------------------------------------------

    async def _on_inbound(self, msg: Inbound) -> None:
        try:
            message = parse_inbound(msg.topic, msg.payload, self.device_id)
        except ProtocolError as exc:
            log.warning(
                "agent.bad_message",
                device_id=self.device_id,
                topic=msg.topic,
                reason=str(exc),
                payload=msg.payload[:200].decode("utf-8", "replace"),
            )
            return
        if isinstance(message, DeviceStatus):
            await self._on_status(message)
        else:
            self._on_config(message)

    async def _on_status(self, status: DeviceStatus) -> None:
        event_id = status.event_id
        if event_id is None:
            log.warning("agent.rejected_unreadable", device_id=self.device_id, reason=status.reason)
            return
        verdict = self._presses.judge(status)
        if verdict is Verdict.ADVANCE:  # else a repeat, or stale (an old queued status)
            await self._advance(event_id, status)
        log.info(
            "agent.status",
            device_id=self.device_id,
            event_id=event_id,
            state=status.state.value,
            order_id=status.order_id,
            reason=status.reason,
            verdict=verdict.value,
            settled=self._presses.is_settled(event_id),
        )
        self._notify(self._status_listener, status)

    async def _advance(self, event_id: str, status: DeviceStatus) -> None:
        """A newer state for one of our presses: record it durably, then reschedule and show."""
        settled = settles(status)
        victim = None if settled else self._presses.to_give_up_for(event_id)
        if victim is not None:  # ask_max_open: the oldest open press makes room
            await self._record_given_up(victim, "ask_max_open reached")
            self._presses.give_up(victim)
        await self._outbox.record(event_id, status.state.value, settled=settled)
        now = self._clock()
        self._presses.advance(event_id, status.state, settled=settled, now=now)
        if self._led_state.status_for(event_id, status.state, now, status.reason):
            self._refresh_led()

    def _on_config(self, desired: DesiredConfig) -> None:
        assert self._link is not None
        self._classifier.timings = timings_for(self._classifier.timings, desired)
        if desired.version != self._config_version:
            self._config_version = desired.version
            reported = config_reported_payload(version=desired.version, ts=utcnow())
            self._link.publish(Channel.CONFIG_REPORTED, reported, qos=1, retain=True)
            log.info("agent.config_applied", device_id=self.device_id, version=desired.version)

    # -- LED --------------------------------------------------------------------------------

    def _refresh_led(self, *, restart: bool = False) -> None:
        """Re-choose the pattern; drive the LED and tell ``on_led`` if it changed."""
        choice = self._led_state.choose(self._clock())
        if self._led is None:
            return
        if self._led.show(choice.pattern, choice.state, restart=restart):
            self._notify(self._on_led, choice.pattern.value, choice.state)

    def _notify(self, listener: Callable[..., None] | None, *args: Any) -> None:
        if listener is None:
            return
        try:
            listener(*args)
        except Exception:  # a listener's bug must not stop the device
            log.exception("agent.listener_failed", device_id=self.device_id)

    # -- introspection (tests, bench, telemetry) --------------------------------------------

    @property
    def queue_depth(self) -> int:
        """Unacknowledged events (mirrors the outbox)."""
        return self._presses.unacknowledged

    @property
    def open_presses(self) -> int:
        """Presses acknowledged but not settled: their outcome is still asked for."""
        return self._presses.open

    def press_state(self, event_id: str) -> State | None:
        """The latest state heard for one of the device's kept presses (None: none yet, or
        not a press it remembers)."""
        return self._presses.state(event_id)

    @property
    def connected(self) -> bool:
        return self._led_state.connected

    @property
    def led_pattern(self) -> Pattern | None:
        choice = self._led_state.choice
        return choice.pattern if choice is not None else None
