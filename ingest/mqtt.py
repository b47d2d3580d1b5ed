"""ingest's MQTT link: the ONE place where paho-mqtt's thread meets asyncio.

paho's callbacks only convert and hand off (``loop.call_soon_threadsafe``) into a bounded
queue. Messages are acknowledged by hand (``manual_ack``) and only after the caller has
committed them, on a persistent session (``clean_session=False``, stable client id): if ingest
dies, the broker redelivers every event that was not yet on disk.

The network loop runs in its own thread and reconnects with jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

import protocol as p

__all__ = ["Inbound", "MqttLink", "MqttOptions", "backoff_delays"]

log = structlog.get_logger(__name__)

_SUBSCRIPTIONS = (
    (p.Channel.EVENTS, 1),
    (p.Channel.PRESENCE, 1),
    (p.Channel.TELEMETRY, 0),
    (p.Channel.CONFIG_REPORTED, 1),
)


@dataclass(frozen=True)
class MqttOptions:
    """How to reach the broker (from ``Settings``)."""

    url: str
    username: str | None
    password: str | None
    client_id: str
    ca_file: str | None = None
    shared_group: str | None = None
    queue_size: int = 20_000
    backoff_min_s: float = 0.2
    backoff_max_s: float = 30.0
    keepalive_s: int = 30


@dataclass(frozen=True)
class Inbound:
    """One received message; ``generation`` is the connection it arrived on."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    generation: int


def backoff_delays(minimum: float, maximum: float, rng: random.Random | None = None
                   ) -> Any:
    """Endless "full jitter" exponential backoff: uniform(minimum, min(maximum, minimum*2^n))."""
    rng = rng or random.Random()
    ceiling = minimum
    while True:
        yield rng.uniform(minimum, ceiling)
        ceiling = min(maximum, ceiling * 2)


class MqttLink:
    """Subscribes to the device channels and publishes statuses/configs.

    ``inbound`` is the bounded asyncio queue of received messages; ``subscribed`` is set once
    the broker acknowledged the subscriptions of the current connection, ``disconnected``
    while the connection is down. ``on_published(mid)`` is called on the event loop when the
    broker acknowledged our QoS 1 publish ``mid`` (PUBACK).
    """

    def __init__(self, options: MqttOptions) -> None:
        self.options = options
        self.inbound: asyncio.Queue[Inbound] = asyncio.Queue(options.queue_size)
        self.subscribed = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.dropped = 0
        self.on_published: Callable[[int], None] | None = None
        self._generation = 0
        self._resync_generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._had_session = threading.Event()
        self._thread: threading.Thread | None = None
        self._handoff: list[tuple[Any, tuple[Any, ...]]] = []  # guarded by _handoff_lock
        self._handoff_scheduled = False
        self._handoff_lock = threading.Lock()
        self._client = self._make_client()

    # --- set-up -----------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        o = self.options
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=o.client_id,
                             clean_session=False)
        client.manual_ack_set(True)
        # 0 = no client-side in-flight cap. With a cap, paho scans EVERY unanswered message on
        # each PUBACK to find queued ones (``_update_inflight``): with ~1000 statuses in flight
        # that scan was the paho thread's largest cost under load. The broker bounds what it
        # takes (deploy/mosquitto: max_inflight/max_queued), and while disconnected paho keeps
        # publishes queued and sends them after the reconnect either way.
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        if o.username:
            client.username_pw_set(o.username, o.password)
        if urlsplit(o.url).scheme == "mqtts":
            client.tls_set(ca_certs=o.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    def start(self) -> None:
        """Start the network thread (call from the event loop)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._network, name="ingest-mqtt", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Disconnect (sending what is queued first) and join the network thread."""
        self._stopping.set()
        self._client.disconnect()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)

    # --- the network thread ---------------------------------------------------------------

    def _network(self) -> None:
        url = urlsplit(self.options.url)
        host = url.hostname or "127.0.0.1"
        port = url.port or (8883 if url.scheme == "mqtts" else 1883)
        delays = backoff_delays(self.options.backoff_min_s, self.options.backoff_max_s)
        while not self._stopping.is_set():
            try:
                self._client.connect(host, port, keepalive=self.options.keepalive_s)
            except OSError as exc:
                delay = next(delays)
                log.warning("mqtt.connect_failed", error=str(exc), retry_in_s=round(delay, 2))
                self._stopping.wait(delay)
                continue
            rc = MQTTErrorCode.MQTT_ERR_SUCCESS
            while not self._stopping.is_set() and rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = self._client.loop(timeout=0.5)
            if self._stopping.is_set():
                self._drain()
                return
            if self._had_session.is_set():  # it worked until now: start the backoff afresh
                self._had_session.clear()
                delays = backoff_delays(self.options.backoff_min_s, self.options.backoff_max_s)
            delay = next(delays)
            log.warning("mqtt.connection_lost", rc=str(rc), retry_in_s=round(delay, 2))
            self._stopping.wait(delay)

    def _drain(self) -> None:
        """Let the final DISCONNECT (and anything queued before it) leave the socket."""
        for _ in range(20):
            if self._client.loop(timeout=0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break

    # --- paho callbacks (network thread): convert and hand off, nothing else ----------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            log.error("mqtt.refused", reason=str(reason))
            return
        self._generation += 1
        self._had_session.set()
        topics = [(p.subscription(ch, shared_group=self.options.shared_group), qos)
                  for ch, qos in _SUBSCRIPTIONS]
        client.subscribe(topics)
        log.info("mqtt.connected", url=self.options.url, session_present=flags.session_present)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any,
                      properties: Any = None) -> None:
        self._call(self.subscribed.set)
        self._call(self.disconnected.clear)
        log.info("mqtt.subscribed", shared_group=self.options.shared_group)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        self._call(self.subscribed.clear)
        self._call(self.disconnected.set)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._call(self._enqueue, Inbound(msg.topic, bytes(msg.payload), msg.qos, msg.mid,
                                          self._generation))

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any = None) -> None:
        if getattr(reason, "is_failure", False):  # MQTT 5 only: the broker refused it
            log.error("mqtt.publish_refused", mid=mid, reason=str(reason))
            return
        if self.on_published is not None:
            self._call(self.on_published, mid)

    def _call(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the event loop, in call order. Calls made while an earlier
        hand-off is still waiting ride along with it: under load one loop wake-up (a write to
        its self-pipe) carries hundreds of messages and PUBACKs instead of one each."""
        with self._handoff_lock:
            self._handoff.append((fn, args))
            if self._handoff_scheduled:
                return
            self._handoff_scheduled = True
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._run_handoff)
                return
            except RuntimeError:  # loop closed between the check and the call
                pass
        with self._handoff_lock:  # nobody will run them: don't keep them
            self._handoff.clear()
            self._handoff_scheduled = False

    def _run_handoff(self) -> None:
        with self._handoff_lock:
            calls, self._handoff = self._handoff, []
            self._handoff_scheduled = False
        for fn, args in calls:
            try:
                fn(*args)
            except Exception:  # one failing callback must not lose the ones after it
                log.exception("mqtt.callback_failed", callback=getattr(fn, "__qualname__", fn))

    # --- event-loop side --------------------------------------------------------------------

    def _enqueue(self, message: Inbound) -> None:
        try:
            self.inbound.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("mqtt.queue_full", topic=message.topic, qos=message.qos,
                      dropped=self.dropped)
            if message.qos > 0:
                self._resync(message.generation)

    def _resync(self, generation: int) -> None:
        """A QoS 1 message was dropped unacknowledged. The broker resends it only on a NEW
        connection, so without one it would wait forever (holding an in-flight slot): reconnect
        (once per connection; the session persists, and what is still queued from this one is
        handled but no longer acknowledged, as ``ack`` explains)."""
        if (generation != self._generation or self._resync_generation == generation
                or self._stopping.is_set()):
            return
        self._resync_generation = generation
        log.warning("mqtt.resync", generation=generation)
        self._client.disconnect()

    def ack(self, message: Inbound) -> None:
        """Acknowledge ``message`` (after its commit). A message from an earlier connection is
        left alone: the broker has redelivered it on this one, under the same rules."""
        if message.qos > 0 and message.generation == self._generation:
            self._client.ack(message.mid, message.qos)

    def is_current(self, message: Inbound) -> bool:
        """True while the connection ``message`` arrived on lasts (an ack can still settle
        it); after a reconnect the broker redelivers it instead."""
        return message.generation == self._generation

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
                ) -> int | None:
        """Queue a publish (paho sends it from the network thread; kept while disconnected and
        re-sent after a reconnect); its message id, which ``on_published`` reports back, or
        None when paho could not queue it (every message id still unanswered)."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            log.error("mqtt.publish_not_queued", topic=topic, mid=info.mid)
            return None
        return info.mid
