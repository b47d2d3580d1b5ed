"""The embedded MQTT broker of ``edgeorder demo``: amqtt (the maintained fork of hbmqtt, which
no longer imports on Python >= 3.10), locked down like the production Mosquitto.

It enforces what a production Mosquitto gets from ``edgeorder broker-auth`` and
``deploy/mosquitto/edgeorder.conf``:

- the password hashes, read from ingest's registry at each CONNECT (no anonymous access), so a
  device provisioned or disabled from the dashboard takes effect without a reload; and, as
  Mosquitto does at a reload, a connected client whose credentials were rotated, or whose
  device was disabled or removed, is disconnected within a second of the change (the registry's
  mark is followed);
- ``use_username_as_clientid``: a client's id is its username, whatever it sends, so no
  credentials can take over, or wipe, another account's session;
- the ACL file (a device touches only its own topics; re-read when it changes) on publish,
  subscribe, delivery *and* retained messages.

amqtt 0.12 gets three of these wrong on its own (``amqtt/broker.py``), which is why
``GuardedBroker`` overrides three of its methods (and checks a last will's topic at CONNECT,
which amqtt publishes and retains without asking the ACL):

1. ``_initialize_client_session`` deletes a clean-session client's old session and takes over a
   connected one of the same client id *before* any authentication: a wrong password with
   ingest's client id wiped ingest's queued session. The guard here authenticates first.
2. ``_publish_retained_messages_for_subscription`` sends retained messages without asking the
   topic filter, and ``_handle_client_session`` calls it at every CONNECT for *every* filter any
   client holds: any device password received every device's retained status, config and
   presence. Here only the session's own filters count, and each topic passes the ACL.
3. ``_run_broadcast`` iterates ``self._subscriptions.items()`` across ``await
   self._topic_filtering(...)``, which goes through the plugin manager's tasks and so yields;
   a SUBSCRIBE arriving then raises ``RuntimeError: dictionary changed size during iteration``
   (printed at every demo start, and the message being broadcast is lost for the subscribers
   not reached yet). ``_topic_filtering`` here answers from the parsed ACL without suspending,
   so the iteration never spans a yield.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import BAD_USERNAME_PASSWORD, NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from edgeorder.ingest.domain.credentials import verify_password
from edgeorder.ingest.domain.mosquitto_files import Access, Acl, parse_acl
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.store.registry import (
    device_hashes,
    registry_mark,
    service_account_hashes,
)

log = structlog.get_logger(__name__)

__all__ = [
    "EmbeddedBroker",
    "GuardedBroker",
    "PortInUseError",
    "RegistryAuthPlugin",
    "ensure_port_free",
]


class PortInUseError(OSError):
    """The broker's port is taken (on a machine with Mosquitto running, 1883 usually is)."""


class _ReloadingFile:
    """Re-parses a file when its mtime or size changes; keeps the last good parse on error."""

    def __init__(self, path: Path, parse: Any) -> None:
        self.path, self._parse = path, parse
        self._stamp: tuple[int, int] | None = None
        self.value: Any = None

    def get(self) -> Any:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self.value = self._parse(self.path.read_text())
                self._stamp = stamp
        except (OSError, ValueError) as exc:
            if self.value is None:
                raise
            log.warning("broker.acl_reload_failed", path=str(self.path), error=str(exc))
        return self.value


def _registry_hashes(db_path: Path) -> dict[str, str]:
    """Every account that may connect (enabled devices, service accounts): its hash."""
    db = open_db(db_path, migrate_schema=False)
    try:
        return {**device_hashes(db), **service_account_hashes(db)}
    finally:
        db.conn.close()


def _registry_mark(db_path: Path) -> int:
    db = open_db(db_path, migrate_schema=False)
    try:
        return registry_mark(db)
    finally:
        db.conn.close()


async def accepted_hash(db_path: Path, username: str | None, password: str | None) -> str | None:
    """The registry's hash of ``username`` if it may connect with this password, else None."""
    if not username or password is None:
        return None
    hashed = (await asyncio.to_thread(_registry_hashes, db_path)).get(username)
    return hashed if hashed and verify_password(hashed, password) else None


async def credentials_ok(db_path: Path, username: str | None, password: str | None) -> bool:
    """True if ``username`` is an enabled device or a service account with this password."""
    return await accepted_hash(db_path, username, password) is not None


class RegistryAuthPlugin(BaseAuthPlugin):
    """amqtt's own authentication step, answered from ingest's registry. ``GuardedBroker``
    already refused bad credentials before touching any session; this keeps amqtt from
    loading its default plugins (which allow anonymous clients) and checks once more."""

    @dataclass
    class Config:
        db_path: str = ""

    async def authenticate(self, *, session: Session) -> bool | None:
        return await credentials_ok(Path(self.config.db_path), session.username, session.password)


class GuardedBroker(Broker):
    """amqtt's Broker with authentication before session handling, client ids bound to
    usernames and the ACL applied everywhere (see the module docstring for why)."""

    def __init__(self, config: dict[str, Any], *, registry_db: Path, acl_file: Path) -> None:
        super().__init__(config)
        self._registry_db = registry_db
        self._acl = _ReloadingFile(acl_file, lambda text: Acl(parse_acl(text)))
        self._acl.get()  # a missing or broken ACL stops the start, not the first client
        self._retained_sends: set[asyncio.Task[Any]] = set()
        self._admitted: dict[str, str] = {}  # username -> the hash it connected with

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        """amqtt asks a new connection for its peer address first; a client already gone (one
        refused a moment ago reconnecting at once) made that an unhandled ENOTCONN."""
        try:
            await super().stream_connected(reader, writer, listener_name)
        except OSError as exc:
            if exc.errno != errno.ENOTCONN:
                raise
            log.info("broker.client_gone", error=str(exc))
            writer.close()

    # -- 1. authenticate before any session is deleted or taken over --------------------------

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, incoming = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except MQTTError:
            await writer.close()
            raise
        except NoDataError as exc:
            raise AMQTTError(exc) from exc
        await self._guard(incoming, writer, f"{remote_address}:{remote_port}")
        return await self._attach_session(handler, incoming)

    async def _guard(self, incoming: Session, writer: WriterAdapter, peer: str) -> None:
        """Refuse bad credentials with a CONNACK; bind the client id to the username."""
        username = incoming.username
        hashed = await accepted_hash(self._registry_db, username, incoming.password)
        if hashed is None:
            log.warning(
                "broker.auth_refused", username=username, client_id=incoming.client_id, peer=peer
            )
            code = BAD_USERNAME_PASSWORD if not username else NOT_AUTHORIZED
            await ConnackPacket.build(0, code).to_stream(writer)
            await writer.close()
            raise MQTTError(f"{peer}: not authorised as {username!r}")
        # Mosquitto's use_username_as_clientid: the session is the account's, whatever id the
        # client sent, so a device's password can never reach ingest's or another device's.
        incoming.client_id = username
        self._admitted[username or ""] = hashed
        # amqtt publishes (and retains) a last will without asking the ACL: a device could
        # leave a forged retained status on another device's topic. Mosquitto refuses such a
        # CONNECT; so does this.
        will = incoming.will_topic if incoming.will_flag else None
        if will is not None and not self.allows(incoming, will, Action.PUBLISH):
            log.warning("broker.will_refused", username=username, topic=will)
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError(f"{peer}: {username!r} may not publish its will there")

    async def _attach_session(
        self, handler: BrokerProtocolHandler, incoming: Session
    ) -> tuple[BrokerProtocolHandler, Session]:
        """amqtt 0.12's session lookup after the CONNECT, now only ever for the account's own
        session (the client id is the username)."""
        client_id = incoming.client_id or ""
        session = incoming
        if incoming.clean_session:
            old = self._sessions.get(client_id)
            if old is not None and old[0].transitions.is_connected():
                await old[1].handle_connection_closed()  # as Mosquitto: the new one wins
                await old[1].stop()
            await self._delete_session(client_id)
            incoming.parent = 0
        elif client_id in self._sessions:
            session, _ = self._sessions[client_id]
            for name in ("will_flag", "will_retain", "will_message", "will_topic", "will_qos"):
                setattr(session, name, getattr(incoming, name))
            session.keep_alive = incoming.keep_alive
            session.username, session.password = incoming.username, incoming.password
            session.parent = 1
        else:
            incoming.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def follow_registry(self, period_s: float = 1.0) -> None:
        """Disconnect, within ``period_s`` of the change, every connected client whose
        account no longer has the hash it connected with (credentials rotated, device disabled
        or removed), as Mosquitto re-checks its clients at a reload. Runs until cancelled."""
        seen = await asyncio.to_thread(_registry_mark, self._registry_db)
        while True:
            await asyncio.sleep(period_s)  # a period, not a readiness wait
            try:
                mark = await asyncio.to_thread(_registry_mark, self._registry_db)
                if mark == seen:
                    continue
                hashes = await asyncio.to_thread(_registry_hashes, self._registry_db)
            except Exception:  # the file is being replaced, say: next period
                log.exception("broker.registry_unreadable")
                continue
            seen = mark
            await self._revoke(hashes)

    async def _revoke(self, hashes: dict[str, str]) -> None:
        for client_id, (session, handler) in list(self._sessions.items()):
            username = session.username or ""
            if not session.transitions.is_connected():
                continue
            if hashes.get(username) == self._admitted.get(username):
                continue
            log.warning("broker.session_revoked", username=username, client_id=client_id)
            await handler.handle_connection_closed()
            await handler.stop()

    # -- 2./3. the ACL, answered without suspending, on every path ----------------------------

    def allows(self, session: Session, topic: str, action: Action) -> bool:
        """The ACL's answer for this client, topic (or filter, on SUBSCRIBE) and action."""
        acl: Acl = self._acl.get()
        access = Access.WRITE if action == Action.PUBLISH else Access.READ
        return acl.allows(
            session.username,
            session.client_id or "",
            topic,
            access,
            is_filter=action == Action.SUBSCRIBE,
        )

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        # Must not await anything: amqtt's broadcast loop iterates its subscription dict across
        # this call (see the module docstring, point 3).
        allowed = self.allows(session, topic, action)
        if not allowed and action != Action.RECEIVE:
            log.warning(
                "broker.acl_refused", username=session.username, topic=topic, action=str(action)
            )
        return allowed

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        """Retained messages for one of the session's own filters, each one the ACL lets the
        session read. Sends are scheduled, never awaited here: amqtt calls this inside a loop
        over its live subscription dict, which must not change under it."""
        topic_filter, qos = subscription
        holders = self._subscriptions.get(topic_filter, [])
        if not any(s.client_id == session.client_id for s, _ in holders):
            return  # amqtt 0.12 calls this at CONNECT for every filter of every client
        handler = self._get_handler(session)
        if handler is None:
            return
        for topic, retained in list(self._retained_messages.items()):
            if not self._matches(topic, topic_filter):
                continue
            if not self.allows(session, topic, Action.RECEIVE):
                continue
            send = asyncio.ensure_future(
                handler.mqtt_publish(
                    retained.topic, retained.data, min(qos, retained.qos or qos), retain=True
                )
            )
            self._retained_sends.add(send)
            send.add_done_callback(self._retained_sent)

    def _retained_sent(self, task: asyncio.Task[Any]) -> None:
        self._retained_sends.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("broker.retained_send_failed", error=str(task.exception()))


@dataclass
class EmbeddedBroker:
    """amqtt on ``host:port`` enforcing ``acl_file`` and the password hashes in ingest's
    registry (``registry_db``): never anonymous."""

    host: str
    port: int
    acl_file: Path
    registry_db: Path
    _broker: GuardedBroker | None = field(default=None, init=False)
    _follow: asyncio.Task[None] | None = field(default=None, init=False)

    def config(self) -> dict[str, Any]:
        return {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 0}
            },
            # Only this plugin: amqtt's defaults would allow anonymous clients.
            "plugins": {f"{__name__}.RegistryAuthPlugin": {"db_path": str(self.registry_db)}},
        }

    async def start(self) -> None:
        """Listen, or raise PortInUseError with a message that says what to do."""
        ensure_port_free(self.host, self.port, what="MQTT broker", flag="--mqtt-port")
        # amqtt logs every packet at INFO; its useful refusals come through our guard.
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        self._broker = GuardedBroker(
            self.config(), registry_db=self.registry_db, acl_file=self.acl_file
        )
        await self._broker.start()
        self._follow = asyncio.create_task(self._broker.follow_registry(), name="broker-registry")
        log.info("broker.started", url=f"mqtt://{self.host}:{self.port}")

    async def stop(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
            self._follow = None
        if self._broker is not None:
            await asyncio.shield(self._broker.shutdown())
            self._broker = None


def ensure_port_free(host: str, port: int, *, what: str, flag: str) -> None:
    """Raise PortInUseError naming the option to change when ``host:port`` is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUseError(
                errno.EADDRINUSE,
                f"{what}: port {port} on {host} is already in use"
                + (" (a system Mosquitto usually holds 1883)" if port == 1883 else "")
                + f"; choose another with {flag} PORT",
            ) from exc
