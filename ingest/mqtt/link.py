"""ingest's MQTT link: the ONE place where paho-mqtt meets asyncio.

paho runs ON the event loop, in its external-loop mode (as aiomqtt drives it): the socket is
watched with ``add_reader``/``add_writer``, keep-alive runs from a timer task, and only the
blocking TCP/TLS connect goes to a worker thread. There is no network thread: no self-pipe
write per message or acknowledgement, no GIL hand-over between two busy threads, and the
callbacks below run on the loop itself. Reads are buffered (``_BufferedClient``): paho asks the
socket for one byte at a time while it parses a packet header, three system calls per packet.

Messages are acknowledged by hand (``manual_ack``) and only after the caller has committed
them, on a persistent session (``clean_session=False``, stable client id): if ingest dies, the
broker redelivers every event that was not yet on disk. Lost connections are re-made with
jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import inspect
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgeorder import protocol as p
from edgeorder.kit import backoff

__all__ = [
    "Inbound",
    "MqttLink",
    "MqttOptions",
    "PahoCompatibilityError",
    "check_paho_internals",
]

log = structlog.get_logger(__name__)

_SUBSCRIPTIONS = (
    (p.Channel.EVENTS, 1),
    (p.Channel.PRESENCE, 1),
    (p.Channel.TELEMETRY, 0),
    (p.Channel.CONFIG_REPORTED, 1),
)


_DEVICE_TREE = p.TOPIC_ROOT + "/"


@dataclass(frozen=True)
class MqttOptions:
    """How to reach the broker (from ``Settings``)."""

    url: str
    username: str | None
    password: str | None
    client_id: str
    ca_file: str | None = None
    shared_group: str | None = None
    extra_subscriptions: tuple[tuple[str, int], ...] = ()
    """Filters outside the device tree (never shared: every worker hears them), e.g. Home
    Assistant's birth topic; their messages go to ``MqttLink.on_other``, not ``inbound``."""
    queue_size: int = 20_000
    backoff_min_s: float = 0.2
    backoff_max_s: float = 30.0
    keepalive_s: int = 30


@dataclass(frozen=True)
class Inbound:
    """One received message; ``generation`` is the connection it arrived on; ``retain``: the
    broker sent it from its retained store (on our SUBSCRIBE), not live."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    generation: int
    retain: bool = False


_READ_CHUNK = 65536
_MISC_INTERVAL_S = 1.0


_PUBACK_OK = ReasonCode(PacketTypes.PUBACK)  # "Success"; MQTT 3.1.1 carries no code
_NO_PROPERTIES = Properties(PacketTypes.PUBACK)


class PahoCompatibilityError(RuntimeError):
    """The installed paho-mqtt lacks a private part that ``_BufferedClient`` overrides."""


_PAHO_METHODS = {  # private method -> the parameters the override relies on (after self)
    "_sock_recv": ("bufsize",),
    "_sock_close": (),
    "_handle_pubackcomp": ("cmd",),
    "_handle_on_message": ("message",),
    "_do_on_publish": ("mid", "reason_code", "properties"),
    "_packet_read": (),
    "_loop_rc_handle": ("rc",),
}
_PAHO_ATTRIBUTES = (
    "_in_packet",
    "_out_message_mutex",
    "_out_messages",
    "_in_callback_mutex",
    "_protocol",
    "_userdata",
)


@functools.cache
def check_paho_internals(client_class: type[mqtt.Client] = mqtt.Client) -> None:
    """Fail at start-up, with a clear message, if paho-mqtt changed the private methods and
    attributes ``_BufferedClient`` overrides or reads (a paho upgrade outside the pinned
    range would otherwise break the link at its first packet, deep in a callback)."""
    missing = []
    for name, params in _PAHO_METHODS.items():
        method = getattr(client_class, name, None)
        if not callable(method):
            missing.append(f"method {name}")
            continue
        found = tuple(inspect.signature(method).parameters)[1:]
        if found[: len(params)] != params:
            missing.append(f"{name}{params} (found {found})")
    probe = client_class(CallbackAPIVersion.VERSION2)
    missing += [f"attribute {a}" for a in _PAHO_ATTRIBUTES if not hasattr(probe, a)]
    probe.__del__()  # paho opens a socket pair per client: close it now
    if missing:
        raise PahoCompatibilityError(
            f"ingest's MQTT link overrides private parts of paho-mqtt 2.1-2.2, and the installed "
            f"paho-mqtt {_paho_version()} lacks: {', '.join(missing)}. "
            "Install a supported version: pip install 'paho-mqtt>=2.1,<2.3'"
        )


def _paho_version() -> str:
    try:
        return importlib.metadata.version("paho-mqtt")
    except importlib.metadata.PackageNotFoundError:
        return "(unknown version)"


class _BufferedClient(mqtt.Client):
    """paho's client with the per-packet costs that showed in ingest's profile taken out:

    - reads come from a 64 KiB buffer instead of one ``recv`` per header byte; ``buffered()``
      says whether bytes are waiting that the selector will not report (they already left the
      socket);
    - an MQTT 3.1.1 PUBACK (a bare message id) no longer builds a ReasonCode and a Properties
      object each (~5% of ingest's CPU with two statuses per event);
    - messages go straight to ``on_message``: the link registers no per-topic callbacks, so
      paho's walk of its topic trie for each message (~5%) finds nothing anyway;
    - ``loop_read`` reads one packet per call, so the link can stop reading between two
      messages when its queue is full.

    These override private methods of paho-mqtt 2.1-2.2 (pinned in pyproject.toml); the link's
    tests (broker restart, resync, TLS) run through all of them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = bytearray()

    def buffered(self) -> bool:
        return bool(self._rbuf)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """One packet per call. paho's own reads one per message in flight each call, so a
        burst (a resync's redelivery) would pass the link's check of its queue in one go."""
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        rc = self._packet_read()
        if rc > 0:
            return self._loop_rc_handle(rc)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._rbuf:
            chunk = super()._sock_recv(_READ_CHUNK)  # BlockingIOError when nothing is there
            if not chunk:
                return chunk  # end of stream: paho treats it as a lost connection
            self._rbuf += chunk
        data = bytes(self._rbuf[:bufsize])
        del self._rbuf[:bufsize]
        return data

    def _sock_close(self) -> None:
        self._rbuf.clear()  # bytes of a dead connection must not prefix the next one
        super()._sock_close()

    def _handle_pubackcomp(self, cmd: Any) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        if cmd != "PUBACK" or self._protocol == mqtt.MQTTv5 or len(packet) != 2:
            return super()._handle_pubackcomp(cmd)
        mid = int.from_bytes(packet, "big")
        with self._out_message_mutex:
            if mid in self._out_messages:
                return self._do_on_publish(mid, _PUBACK_OK, _NO_PROPERTIES)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        on_message = self.on_message
        if on_message is not None:
            with self._in_callback_mutex:
                on_message(self, self._userdata, message)


class _InboundQueue(asyncio.Queue[Inbound]):
    """The link's bounded queue; ``on_taken`` runs after each message a consumer takes (both
    ``get`` and ``get_nowait`` end in ``get_nowait``), so a paused link reads again."""

    def __init__(self, maxsize: int, on_taken: Callable[[], None]) -> None:
        super().__init__(maxsize)
        self._on_taken = on_taken

    def get_nowait(self) -> Inbound:
        message = super().get_nowait()
        self._on_taken()
        return message


def _tls_pending(sock: Any) -> bool:
    """Decrypted bytes waiting inside a TLS socket (0 for plain TCP)."""
    pending = getattr(sock, "pending", None)
    return bool(pending and pending() > 0)


class MqttLink:
    """Subscribes to the device channels and publishes statuses/configs.

    ``inbound`` is the bounded asyncio queue of received messages; ``subscribed`` is set once
    the broker acknowledged the subscriptions of the current connection, ``disconnected``
    while the connection is down. ``on_published(mid)`` is called when the broker acknowledged
    our QoS 1 publish ``mid`` (PUBACK). Everything runs on the event loop that called
    ``start()``.
    """

    def __init__(self, options: MqttOptions) -> None:
        check_paho_internals()
        self.options = options
        self.inbound: asyncio.Queue[Inbound] = _InboundQueue(options.queue_size, self._taken)
        self.subscribed = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        self.dropped = 0
        self.on_published: Callable[[int], None] | None = None
        self.on_other: Callable[[str, bytes, bool], None] | None = None
        """Called on the loop with (topic, payload, retain) for a message outside the device
        tree (``extra_subscriptions``); it only hands off, as every paho callback here."""
        self._generation = 0
        self._resync_generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stopping = asyncio.Event()
        self._closed = asyncio.Event()  # the current connection's socket was closed
        self._had_session = False
        self._sock: Any = None
        self.paused = asyncio.Event()
        """Set while the link does not read because ``inbound`` is full (backpressure)."""
        self._task: asyncio.Task[None] | None = None
        self._misc: asyncio.Task[None] | None = None
        self._client = self._make_client()

    # --- set-up -----------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        o = self.options
        client = _BufferedClient(
            CallbackAPIVersion.VERSION2, client_id=o.client_id, clean_session=False
        )
        client.manual_ack_set(True)
        # 0 = no client-side in-flight cap. With a cap, paho scans EVERY unanswered message on
        # each PUBACK to find queued ones (``_update_inflight``): with ~1000 statuses in flight
        # that scan was the link's largest cost under load. The broker bounds what it takes
        # (deploy/mosquitto: max_inflight/max_queued), and while disconnected paho keeps
        # publishes queued and sends them after the reconnect either way.
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        if o.username:
            client.username_pw_set(o.username, o.password)
        if urlsplit(o.url).scheme == "mqtts":
            client.tls_set(ca_certs=o.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    def start(self) -> None:
        """Start connecting (call from the event loop); reconnects until ``stop()``."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._task = self._loop.create_task(self._connection_loop(), name="ingest-mqtt")

    async def stop(self) -> None:
        """Disconnect (sending what is queued first) and stop reconnecting."""
        self._stopping.set()
        if self._sock is not None:
            self._client.disconnect()  # queued behind what is already waiting to be written
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self._closed.wait()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._drop_socket()

    # --- the connection loop ----------------------------------------------------------------

    async def _connection_loop(self) -> None:
        url = urlsplit(self.options.url)
        host = url.hostname or "127.0.0.1"
        port = url.port or (8883 if url.scheme == "mqtts" else 1883)
        delays = backoff.delays(self.options.backoff_min_s, self.options.backoff_max_s)
        while not self._stopping.is_set():
            self._closed.clear()
            try:
                # blocking socket connect and TLS handshake: off the loop
                await asyncio.to_thread(self._client.connect, host, port, self.options.keepalive_s)
            except (OSError, ssl.SSLError) as exc:
                delay = next(delays)
                log.warning("mqtt.connect_failed", error=str(exc), retry_in_s=round(delay, 2))
                await self._pause(delay)
                continue
            await self._closed.wait()
            if self._stopping.is_set():
                return
            if self._had_session:  # it worked until now: start the backoff afresh
                self._had_session = False
                delays = backoff.delays(self.options.backoff_min_s, self.options.backoff_max_s)
            delay = next(delays)
            log.warning("mqtt.connection_lost", retry_in_s=round(delay, 2))
            await self._pause(delay)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def _keepalive(self) -> None:
        """paho's periodic duties (PINGREQ, keep-alive timeout) while a socket is open."""
        while True:
            await asyncio.sleep(_MISC_INTERVAL_S)
            self._client.loop_misc()

    # --- socket callbacks (paho calls them; connect() does so from its worker thread) --------

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        elif self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                self._loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._watch, sock)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._unwatch, sock)

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._want_write, sock)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._no_write, sock)

    def _watch(self, sock: Any) -> None:
        assert self._loop is not None
        if self._stopping.is_set():  # a connect that finished after stop(): don't serve it
            self._client._sock_close()
            return
        self._drop_socket()
        self._sock = sock
        self._loop.add_reader(sock, self._readable)
        self._misc = self._loop.create_task(self._keepalive())

    def _unwatch(self, sock: Any) -> None:
        """The socket closed, however the connection ended (broker, keep-alive, read error,
        our own DISCONNECT): the link is down until the next connection subscribes."""
        if sock is self._sock:
            self._drop_socket()
            self.subscribed.clear()
            self.disconnected.set()
            self._closed.set()

    def _drop_socket(self) -> None:
        self.paused.clear()  # the next connection starts reading
        if self._sock is not None and self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(ValueError, OSError):  # already closed
                self._loop.remove_reader(self._sock)
                self._loop.remove_writer(self._sock)
        self._sock = None
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None

    def _want_write(self, sock: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):  # closed meanwhile
                self._loop.add_writer(sock, self._writable)

    def _no_write(self, sock: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(sock)

    def _readable(self) -> None:
        client = self._client
        assert isinstance(client, _BufferedClient)
        try:
            while True:  # bytes already read (by us or by TLS) are invisible to the selector
                if self.inbound.full():
                    self._pause_reading()
                    return
                if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return
                if not client.buffered() and not _tls_pending(client.socket()):
                    return
        except OSError as exc:  # e.g. a reset in the middle of a packet
            log.warning("mqtt.read_failed", error=str(exc))
            client._sock_close()  # paho's own close: runs on_socket_close -> reconnect

    def _pause_reading(self) -> None:
        """Backpressure: the consumer is behind by a full queue, so the broker keeps what
        follows (TCP holds it, and the QoS 1 in-flight window stops the broker sending more)
        until ``_taken`` finds the queue half empty. Reading on and dropping instead would
        force a resync whose redelivery burst, larger than the room left, could be dropped
        again and again."""
        if self.paused.is_set() or self._sock is None or self._loop is None:
            return
        self.paused.set()
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._sock)
        log.debug("mqtt.reading_paused", queued=self.inbound.qsize())

    def _taken(self) -> None:
        # half empty before reading again: a saturated consumer does not flip the reader on
        # and off for every message it takes
        if not self.paused.is_set() or self.inbound.qsize() > self.inbound.maxsize // 2:
            return
        self.paused.clear()
        if self._sock is not None and self._loop is not None:
            self._loop.add_reader(self._sock, self._readable)
            # what is already buffered (ours or TLS's) is invisible to the selector
            self._loop.call_soon(self._readable)

    def _writable(self) -> None:
        try:
            self._client.loop_write()
        except OSError as exc:
            log.warning("mqtt.write_failed", error=str(exc))
            self._client._sock_close()

    # --- paho callbacks (on the loop, from loop_read) ---------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any = None
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.error("mqtt.refused", reason=str(reason))
            return
        self._generation += 1
        self._had_session = True
        topics = [
            (p.subscription(ch, shared_group=self.options.shared_group), qos)
            for ch, qos in _SUBSCRIPTIONS
        ]
        client.subscribe(topics + list(self.options.extra_subscriptions))
        log.info("mqtt.connected", url=self.options.url, session_present=flags.session_present)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any = None
    ) -> None:
        self.subscribed.set()
        self.disconnected.clear()
        log.info("mqtt.subscribed", shared_group=self.options.shared_group)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self.on_other is not None and not msg.topic.startswith(_DEVICE_TREE):
            if msg.qos > 0:  # subscribed at QoS 0, but a broker may deliver QoS 1 anyway
                client.ack(msg.mid, msg.qos)
            try:
                self.on_other(msg.topic, bytes(msg.payload), bool(msg.retain))
            except Exception:  # a handler bug must not break the connection
                log.exception("mqtt.on_other_failed", topic=msg.topic)
            return
        message = Inbound(
            msg.topic, bytes(msg.payload), msg.qos, msg.mid, self._generation, bool(msg.retain)
        )
        try:
            self.inbound.put_nowait(message)
        except asyncio.QueueFull:  # a guard: ``_readable`` stops reading before it is full
            self.dropped += 1
            log.error("mqtt.queue_full", topic=message.topic, qos=message.qos, dropped=self.dropped)
            if message.qos > 0:
                self._resync(message.generation)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any = None
    ) -> None:
        if getattr(reason, "is_failure", False):  # MQTT 5 only: the broker refused it
            log.error("mqtt.publish_refused", mid=mid, reason=str(reason))
            return
        if self.on_published is not None:
            try:
                self.on_published(mid)
            except Exception:  # a bookkeeping bug must not break the connection
                log.exception("mqtt.on_published_failed", mid=mid)

    # --- event-loop side --------------------------------------------------------------------

    def _resync(self, generation: int) -> None:
        """A QoS 1 message was dropped unacknowledged. The broker resends it only on a NEW
        connection, so without one it would wait forever (holding an in-flight slot): reconnect
        (once per connection; the session persists, and what is still queued from this one is
        handled but no longer acknowledged, as ``ack`` explains)."""
        if (
            generation != self._generation
            or self._resync_generation == generation
            or self._stopping.is_set()
        ):
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

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> int | None:
        """Queue a publish (written when the socket is writable; kept while disconnected and
        re-sent after a reconnect); its message id, which ``on_published`` reports back, or
        None when paho could not queue it (every message id still unanswered)."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            log.error("mqtt.publish_not_queued", topic=topic, mid=info.mid)
            return None
        return info.mid
