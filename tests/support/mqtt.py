"""A paho-mqtt probe for tests: publish, and wait for matching messages without sleeping."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int


class MqttProbe:
    """A connected paho client recording every message it receives.

    ``wait_for(pred)`` blocks on a condition variable until a recorded message matches.
    """

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        clean_session: bool = True,
    ) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self.connect_rc: object = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"probe-{uuid.uuid4().hex[:8]}",
            clean_session=clean_session,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.disconnects: list[str] = []
        self.disconnected = threading.Event()  # set at the first disconnect
        self._subscriptions: dict[str, int] = {}  # re-sent by _on_connect after a reconnect
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object = None
    ) -> None:
        self.connect_rc = rc
        # Like any well-behaved client: after a reconnect without a kept session, subscribe
        # again (paho does not). A broker that drops a fresh connection (the embedded amqtt
        # occasionally closes one right after its CONNACK) then costs no subscription.
        if not getattr(flags, "session_present", False) and not getattr(rc, "is_failure", False):
            for topic, qos in list(self._subscriptions.items()):
                client.subscribe(topic, qos)
        self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object = None
    ) -> None:
        self.disconnects.append(str(rc))
        self.disconnected.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos))
            self._cond.notify_all()

    def wait_connected(self, timeout: float = 10) -> bool:
        """True once CONNACK arrived and was a success."""
        if not self._connected.wait(timeout):
            raise TimeoutError("no CONNACK")
        return not getattr(self.connect_rc, "is_failure", False)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a, **k: done.set()
        self._subscriptions[topic] = qos
        rc, mid = self.client.subscribe(topic, qos)
        if not done.wait(10):
            raise TimeoutError(
                f"no SUBACK for {topic} (subscribe rc={rc} mid={mid}, "
                f"connected={self.client.is_connected()}, "
                f"disconnects={self.disconnects})"
            )

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)

    def wait_for(
        self,
        predicate: Callable[[Received], bool],
        timeout: float = 15,
        count: int = 1,
        *,
        key: Callable[[Received], object] | None = None,
    ) -> list[Received]:
        """Block until ``count`` recorded messages satisfy ``predicate``; return them all.

        With ``key``, wait for ``count`` distinct keys instead: a status that is legitimately
        published twice (re-sent after a restart) must not stand in for a missing one.
        """

        def matches() -> list[Received]:
            return [m for m in self.messages if predicate(m)]

        def counted() -> int:
            found = matches()
            return len({key(m) for m in found}) if key is not None else len(found)

        with self._cond:
            if not self._cond.wait_for(lambda: counted() >= count, timeout):
                raise TimeoutError(
                    f"waited {timeout}s for {count} matching messages, got {counted()}; "
                    f"last seen: {[(m.topic, m.payload[:120]) for m in self.messages[-5:]]}"
                )
            return matches()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
