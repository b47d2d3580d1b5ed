"""The load generator: N simulated devices publishing Events (QoS 1) over a few connections.

Each device's events go on its own ``events`` topic; the devices are spread over
``connections`` MQTT connections (200 sockets would measure the bench, not the system). The
number of unacknowledged publishes is bounded by ``window``: with no target rate the fleet
publishes as fast as the broker acknowledges (PUBACK).

The connections are the bench's own lean MQTT 3.1.1 clients (``bench.client``) on one event
loop in a thread of their own: the bench shares the 2 cores with the processes it measures,
and paho's per-publish ``MQTTMessageInfo`` with its ``threading.Condition``, its network
thread and one ``send`` per publish cost ~0.5 ms of CPU per event, as much as ingest itself.
Same payloads, same QoS, same broker acknowledgements; publishes that are due together are
written in one system call.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from edgeorder.bench.client import BenchClient, open_client
from edgeorder.bench.events import PlannedEvent
from edgeorder.protocol import Channel, State, subscription

__all__ = ["BenchLoop", "LoadGenerator", "PublishRun", "StatusWatcher", "status_fields"]

OnPublished = Callable[[str, float], None]
T = TypeVar("T")
_STATES = frozenset(s.value for s in State)
_PACE_SLACK_S = 0.001
"""At a target rate, an event due within this is sent at once with the ones before it: one
loop wake-up per millisecond at most instead of one per event (a third of the generator's CPU
at 2,000/s), the pace off by less than a millisecond."""


class BenchLoop:
    """An asyncio loop on its own daemon thread; ``run(coro)`` waits for a result from
    any other thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="bench-mqtt")
        self._thread.daemon = True
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        if not self.loop.is_running():
            self.loop.close()


@dataclass(frozen=True)
class PublishRun:
    """Monotonic times of the first and last publish call and of the last PUBACK."""

    count: int
    first_publish: float
    last_publish: float
    last_ack: float


class LoadGenerator:
    """Publishes planned events at a target rate or as fast as PUBACKs allow."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connections: int = 4,
        window: int = 1000,
        loop: BenchLoop | None = None,
    ) -> None:
        if connections < 1 or window < 1:
            raise ValueError("connections and window must be at least 1")
        self._window = window
        self._own_loop = loop is None
        self._loop = loop or BenchLoop()
        self._pending = 0  # published, not yet acknowledged (the loop's thread only)
        self._last_ack = 0.0
        self._room: asyncio.Future[None] | None = None  # set when below the window again
        self._topics: dict[str, bytes] = {}
        tag = uuid.uuid4().hex[:6]
        self._clients: list[BenchClient] = []
        try:
            for i in range(connections):
                client = self._loop.run(
                    open_client(host, port, f"bench-load-{tag}-{i}", on_acks=self._acked), 30
                )
                self._clients.append(client)
        except BaseException:
            self.close()
            raise

    @property
    def loop(self) -> BenchLoop:
        return self._loop

    def _acked(self, n: int) -> None:
        self._pending -= n
        self._last_ack = time.monotonic()
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)  # the waiter looks at its own condition again

    def publish(
        self,
        events: Sequence[PlannedEvent],
        *,
        rate: float | None = None,
        on_published: OnPublished | None = None,
        ack_timeout: float = 60.0,
    ) -> PublishRun:
        """Publish every event (QoS 1, not retained) and return once all are acknowledged.

        ``rate``: events per second to aim at (None: as fast as acknowledged).
        ``on_published(event_id, t)`` is called just before each publish with its time.
        """
        if not events:
            now = time.monotonic()
            return PublishRun(0, now, now, now)
        return self._loop.run(self._publish(events, rate, on_published, ack_timeout))

    async def _publish(
        self,
        events: Sequence[PlannedEvent],
        rate: float | None,
        on_published: OnPublished | None,
        ack_timeout: float,
    ) -> PublishRun:
        clients, topics, window = self._clients, self._topics, self._window
        count = len(clients)
        monotonic = time.monotonic
        start = first = monotonic()
        for i, ev in enumerate(events):
            if rate:
                delay = start + i / rate - monotonic()
                if delay > _PACE_SLACK_S:  # else due now: sent with the ones before it
                    self._flush()
                    await asyncio.sleep(delay)
            if self._pending >= window:
                self._flush()
                await self._wait_room(lambda: self._pending < window, ack_timeout)
            self._pending += 1
            now = monotonic()
            if i == 0:
                first = now
            if on_published is not None:
                on_published(ev.event_id, now)
            topic = topics.get(ev.topic)
            if topic is None:
                topic = topics[ev.topic] = ev.topic.encode()
            clients[ev.device_index % count].queue_publish(topic, ev.payload)
            if rate and start + (i + 1) / rate - monotonic() > _PACE_SLACK_S:
                self._flush()  # the next one is not due yet: this one goes now, not with it
        self._flush()
        last = monotonic()
        try:
            await self._wait_room(lambda: self._pending <= 0, ack_timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{self._pending} publishes not acknowledged in {ack_timeout}s"
            ) from None
        return PublishRun(len(events), first, last, self._last_ack)

    async def _wait_room(self, ready: Callable[[], bool], within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while not ready():
            for client in self._clients:
                if client.lost is not None:
                    raise ConnectionError(f"{client.client_id}: connection lost: {client.lost}")
            self._room = asyncio.get_running_loop().create_future()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no PUBACK in {within_s}s")
            # a lost connection never acknowledges: look again at least every second
            await asyncio.wait([self._room], timeout=min(left, 1.0))
            self._room = None

    def _flush(self) -> None:
        for client in self._clients:
            client.flush()

    def close(self) -> None:
        clients, self._clients = self._clients, []
        if clients and self._loop.loop.is_running():
            self._loop.run(_close_all(clients), 10)
        if self._own_loop:
            self._loop.stop()


async def _close_all(clients: list[BenchClient]) -> None:
    for client in clients:
        client.close()


StatusHandler = Callable[[str | None, str, str | None, str | None, float], None]


def status_fields(payload: bytes) -> tuple[str | None, str, str | None, str | None] | None:
    """``(event_id, state, order_id, reason)`` of a status payload; None when it is not a
    JSON object with a known ``state`` and string-or-null ids (the bench only reads what it
    measures: ingest's statuses are checked field by field in ingest's own tests)."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    state, event_id = data.get("state"), data.get("event_id")
    order_id, reason = data.get("order_id"), data.get("reason")
    if state not in _STATES or not all(
        v is None or isinstance(v, str) for v in (event_id, order_id, reason)
    ):
        return None
    return event_id, state, order_id, reason


class StatusWatcher:
    """Subscribes to every device's ``status`` (QoS 1) and hands each one to ``handler``.

    The handler gets ``(event_id, state, order_id, reason, monotonic_time)`` on the bench
    loop's thread (``loop``, or one of its own); undecodable messages are counted in ``bad``
    and dropped.
    """

    def __init__(
        self, host: str, port: int, handler: StatusHandler, loop: BenchLoop | None = None
    ) -> None:
        self._handler = handler
        self._own_loop = loop is None
        self._loop = loop = loop or BenchLoop()
        self.bad = 0
        client_id = f"bench-status-{uuid.uuid4().hex[:6]}"
        try:
            self._client = loop.run(
                open_client(host, port, client_id, on_message=self._on_message), 30
            )
        except BaseException:
            if self._own_loop:
                loop.stop()
            raise
        try:
            granted = loop.run(self._client.subscribe(subscription(Channel.STATUS), 1), 10)
        except BaseException:
            self.close()
            raise
        if granted not in (0, 1):
            self.close()
            raise ConnectionError(f"status subscription refused (SUBACK {granted:#x})")

    def _on_message(self, topic: str, payload: bytes) -> None:
        at = time.monotonic()
        fields = status_fields(payload)
        if fields is None:
            self.bad += 1
            return
        self._handler(*fields, at)

    def close(self) -> None:
        if self._loop.loop.is_running():
            self._loop.run(_close_all([self._client]), 10)
        if self._own_loop:
            self._loop.stop()
