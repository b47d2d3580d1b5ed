"""The agent's MQTT connection (paho-mqtt 2.x, MQTT 3.1.1, persistent session).

paho's network thread only converts its callbacks into ``LinkUp``/``LinkDown``/``Inbound``
values and hands them to the agent's worker through ``handoff`` (which must be thread-safe,
e.g. ``loop.call_soon_threadsafe``). Reconnecting is the worker's job, with jittered backoff:
paho's own reconnect loop is off (``reconnect_on_failure=False``), so its thread ends at every
disconnect and ``connect()`` starts a fresh one.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion

from edgeorder.agent.config import AgentConfig
from edgeorder.protocol.device import presence_payload
from edgeorder.protocol.topics import Channel, device_topic
from edgeorder.protocol.values import utcnow

__all__ = ["Inbound", "LinkDown", "LinkEvent", "LinkUp", "MqttLink"]

log = structlog.get_logger(__name__)

MAX_QUEUED = 1000
"""paho's own outgoing queue; the outbox is the real buffer, so this only bounds memory."""
MAX_INFLIGHT = 20


@dataclass(frozen=True)
class LinkUp:
    ok: bool
    session_present: bool
    reason: str


@dataclass(frozen=True)
class LinkDown:
    reason: str


@dataclass(frozen=True)
class Inbound:
    topic: str
    payload: bytes


LinkEvent = LinkUp | LinkDown | Inbound


class MqttLink:
    """One paho client per agent (several agents may share a process)."""

    def __init__(self, config: AgentConfig, fw: str, handoff: Callable[[LinkEvent], None]) -> None:
        self.config, self._handoff, self.fw = config, handoff, fw
        self.device_id = config.device_id
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        self.client.max_queued_messages_set(MAX_QUEUED)
        self.client.max_inflight_messages_set(MAX_INFLIGHT)
        self._auth_and_tls()
        self.client.will_set(
            self.topic(Channel.PRESENCE), self.presence(online=False), qos=1, retain=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def _auth_and_tls(self) -> None:
        m = self.config.mqtt
        if m.username is not None:
            self.client.username_pw_set(m.username, m.read_password())
        if m.tls:
            self.client.tls_set(
                ca_certs=str(m.ca_file) if m.ca_file else None,
                certfile=str(m.cert_file) if m.cert_file else None,
                keyfile=str(m.key_file) if m.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )

    def topic(self, channel: Channel) -> str:
        return device_topic(self.device_id, channel)

    def presence(self, *, online: bool) -> bytes:
        return presence_payload(online=online, fw=self.fw, ts=utcnow())

    # -- paho thread: convert and hand off, nothing else ---------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None
    ) -> None:
        failed = bool(getattr(rc, "is_failure", False))
        self._handoff(LinkUp(not failed, bool(flags.session_present), str(rc)))

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None
    ) -> None:
        self._handoff(LinkDown(str(rc)))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._handoff(Inbound(msg.topic, bytes(msg.payload)))

    # -- worker side ----------------------------------------------------------------------

    async def connect(self) -> bool:
        """Open the TCP/TLS connection in a thread and start paho's loop; False if refused.

        Success here is only the socket: ``LinkUp`` arrives with the broker's CONNACK.
        """
        m = self.config.mqtt
        try:
            await asyncio.to_thread(self.client.connect, m.host, m.port, m.keepalive_s)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.info("agent.connect_failed", device_id=self.device_id, url=m.url, error=str(exc))
            return False
        self.client.loop_start()
        return True

    async def join_loop(self) -> None:
        """Wait for paho's network thread to end (after a disconnect)."""
        await asyncio.to_thread(self._stop_loop)

    def _stop_loop(self) -> None:
        try:
            self.client.loop_stop()
        except AttributeError:  # the thread ended between paho's check and its join
            pass

    def subscribe_own(self) -> None:
        self.client.subscribe([(self.topic(Channel.STATUS), 1), (self.topic(Channel.CONFIG), 1)])

    def publish(self, channel: Channel, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        """Queue a publish with paho; False if paho refused it (queue full, not connected)."""
        info = self.client.publish(self.topic(channel), payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    async def close(self, *, wait_s: float = 3.0) -> None:
        """Publish retained presence offline (if connected), disconnect, end paho's thread."""
        if self.client.is_connected():
            info = self.client.publish(
                self.topic(Channel.PRESENCE), self.presence(online=False), qos=1, retain=True
            )
            try:
                await asyncio.to_thread(info.wait_for_publish, wait_s)
            except (RuntimeError, ValueError) as exc:
                log.warning(
                    "agent.presence_offline_unsent", device_id=self.device_id, error=str(exc)
                )
        self.client.disconnect()
        await self.join_loop()
