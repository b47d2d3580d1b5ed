"""The embedded MQTT broker of ``edgeorder demo``: amqtt (the maintained fork of hbmqtt, which
no longer imports on Python >= 3.10), locked down like the production Mosquitto.

Two amqtt plugins enforce what a production Mosquitto gets from ``edgeorder broker-auth``: the
password hashes (read from ingest's registry at each CONNECT: no anonymous access) and the ACL
file (a device may touch only its own topics; re-read when it changes), so a device added while
the demo runs can connect at once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from edgeorder.ingest.domain.credentials import verify_password
from edgeorder.ingest.domain.mosquitto_files import Access, Acl, parse_acl
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.store.registry import device_hashes, service_account_hashes

log = structlog.get_logger(__name__)

__all__ = [
    "AclFilePlugin",
    "EmbeddedBroker",
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
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self.value = self._parse(self.path.read_text())
            self._stamp = stamp
        return self.value


class RegistryAuthPlugin(BaseAuthPlugin):
    """Accepts a CONNECT only with a username and the password matching its ``$7$`` hash in
    ingest's registry, read at each CONNECT, so a device provisioned or disabled from the
    dashboard takes effect without a reload."""

    @dataclass
    class Config:
        db_path: str = ""

    async def authenticate(self, *, session: Session) -> bool | None:
        username, password = session.username, session.password
        if not username or password is None:
            log.warning("broker.auth_refused", username=username, client_id=session.client_id)
            return False
        hashed = await asyncio.to_thread(_registry_hash, Path(self.config.db_path), username)
        ok = bool(hashed and verify_password(hashed, password))
        if not ok:
            log.warning("broker.auth_refused", username=username, client_id=session.client_id)
        return ok


def _registry_hash(db_path: Path, username: str) -> str | None:
    db = open_db(db_path, migrate_schema=False)
    try:
        return {**device_hashes(db), **service_account_hashes(db)}.get(username)
    finally:
        db.conn.close()


class AclFilePlugin(BaseTopicPlugin):
    """Publish, subscribe and delivery checked against the Mosquitto ACL file."""

    @dataclass
    class Config:
        acl_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._file = _ReloadingFile(Path(self.config.acl_file), lambda t: Acl(parse_acl(t)))

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        if session is None or topic is None:
            return False
        acl: Acl = self._file.get()
        access = Access.WRITE if action == Action.PUBLISH else Access.READ
        allowed = acl.allows(
            session.username, session.client_id, topic, access, is_filter=action == Action.SUBSCRIBE
        )
        if not allowed and action != Action.RECEIVE:
            log.warning(
                "broker.acl_refused", username=session.username, topic=topic, action=str(action)
            )
        return allowed


@dataclass
class EmbeddedBroker:
    """amqtt on ``host:port`` enforcing ``acl_file`` and the password hashes in ingest's
    registry (``registry_db``): never anonymous."""

    host: str
    port: int
    acl_file: Path
    registry_db: Path
    _broker: Broker | None = field(default=None, init=False)

    def config(self) -> dict[str, Any]:
        module = __name__
        return {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 0}
            },
            "plugins": {
                f"{module}.RegistryAuthPlugin": {"db_path": str(self.registry_db)},
                f"{module}.AclFilePlugin": {"acl_file": str(self.acl_file)},
            },
        }

    async def start(self) -> None:
        """Listen, or raise PortInUseError with a message that says what to do."""
        ensure_port_free(self.host, self.port, what="MQTT broker", flag="--mqtt-port")
        # amqtt logs every packet at INFO; its useful refusals come through our plugins.
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        self._broker = Broker(self.config())
        await self._broker.start()
        log.info("broker.started", url=f"mqtt://{self.host}:{self.port}")

    async def stop(self) -> None:
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
