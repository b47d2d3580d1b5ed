"""The load generator: N simulated devices publishing Events (QoS 1) through a few paho clients.

Each device's events go on its own ``events`` topic; the devices are spread over
``connections`` MQTT connections (200 sockets would measure the bench, not the system). The
number of unacknowledged publishes is bounded by ``window``: with no target rate the fleet
publishes as fast as the broker acknowledges (PUBACK).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgeorder.bench.events import PlannedEvent
from edgeorder.protocol import Channel, PayloadError, Status, decode, subscription

__all__ = ["LoadGenerator", "PublishRun", "StatusWatcher", "connect_client"]

OnPublished = Callable[[str, float], None]


def connect_client(
    host: str, port: int, client_id: str, *, inflight: int = 20, timeout: float = 10.0
) -> mqtt.Client:
    """A connected paho client with its network loop running; raises ConnectionError."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)
    connected = threading.Event()
    result: list[object] = []

    def on_connect(c: mqtt.Client, u: object, flags: object, rc: object, props: object) -> None:
        result.append(rc)
        connected.set()

    client.on_connect = on_connect
    client.connect(host, port, keepalive=60)
    client.loop_start()
    if not connected.wait(timeout) or getattr(result[0], "is_failure", False):
        client.loop_stop()
        raise ConnectionError(f"MQTT connect to {host}:{port} failed: {result or 'timeout'}")
    return client


@dataclass(frozen=True)
class PublishRun:
    """Monotonic times of the first and last publish call and of the last PUBACK."""

    count: int
    first_publish: float
    last_publish: float
    last_ack: float


class LoadGenerator:
    """Publishes planned events at a target rate or as fast as PUBACKs allow."""

    def __init__(self, host: str, port: int, *, connections: int = 4, window: int = 1000) -> None:
        if connections < 1 or window < 1:
            raise ValueError("connections and window must be at least 1")
        self._window = threading.Semaphore(window)
        self._acked = threading.Condition()
        self._pending = 0
        self._last_ack = 0.0
        tag = uuid.uuid4().hex[:6]
        self._clients: list[mqtt.Client] = []
        try:
            for i in range(connections):
                client = connect_client(host, port, f"bench-load-{tag}-{i}", inflight=window)
                client.on_publish = self._on_publish
                self._clients.append(client)
        except Exception:
            self.close()
            raise

    def _on_publish(self, c: mqtt.Client, u: object, mid: int, rc: object, props: object) -> None:
        # paho's thread: release one window slot and count the ack; nothing else.
        self._window.release()
        with self._acked:
            self._pending -= 1
            self._last_ack = time.monotonic()
            self._acked.notify_all()

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
        start = time.monotonic()
        first = start
        for i, ev in enumerate(events):
            if rate:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self._window.acquire()
            with self._acked:
                self._pending += 1
            now = time.monotonic()
            if i == 0:
                first = now
            if on_published is not None:
                on_published(ev.event_id, now)
            self._send(ev)
        last = time.monotonic()
        with self._acked:
            if not self._acked.wait_for(lambda: self._pending <= 0, ack_timeout):
                raise TimeoutError(f"{self._pending} publishes not acknowledged in {ack_timeout}s")
            return PublishRun(len(events), first, last, self._last_ack)

    def _send(self, ev: PlannedEvent) -> None:
        client = self._clients[ev.device_index % len(self._clients)]
        info = client.publish(ev.topic, ev.payload, qos=1, retain=False)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            reason = mqtt.error_string(info.rc)
            raise ConnectionError(f"publish of {ev.event_id} failed: {reason}")

    def close(self) -> None:
        for client in self._clients:
            client.disconnect()
            client.loop_stop()
        self._clients.clear()


StatusHandler = Callable[[str | None, str, str | None, str | None, float], None]


class StatusWatcher:
    """Subscribes to every device's ``status`` (QoS 1) and hands each one to ``handler``.

    The handler gets ``(event_id, state, order_id, reason, monotonic_time)``; undecodable
    messages are counted in ``bad`` and dropped.
    """

    def __init__(self, host: str, port: int, handler: StatusHandler) -> None:
        self._handler = handler
        self.bad = 0
        self._subscribed = threading.Event()
        self._client = connect_client(host, port, f"bench-status-{uuid.uuid4().hex[:6]}")
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.subscribe(subscription(Channel.STATUS), qos=1)
        if not self._subscribed.wait(10):
            self.close()
            raise TimeoutError("no SUBACK for the status subscription")

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        at = time.monotonic()
        try:
            status = decode(Status, bytes(msg.payload))
        except PayloadError:
            self.bad += 1
            return
        self._handler(status.event_id, status.state.value, status.order_id, status.reason, at)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
