"""What the deployment tests share: Debian's stock ``mosquitto.conf`` with the project's
``conf.d`` file, started as systemd would (``Type=notify``: ready when it says ``READY=1``),
and an MQTT client that speaks TLS."""

from __future__ import annotations

import os
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[2]
STOCK_CONF = Path(__file__).with_name("stock") / "mosquitto.conf"
"""A verbatim copy of /etc/mosquitto/mosquitto.conf from Debian 12's mosquitto 2.0.11 package
(Raspberry Pi OS ships the same file): the file the project's conf.d file must load under."""
PROJECT_CONF = ROOT / "deploy" / "mosquitto" / "edgeorder.conf"
MOSQUITTO_PATHS = ("/etc/mosquitto", "/run/mosquitto", "/var/lib/mosquitto", "/var/log/mosquitto")


def notify_socket(path: Path) -> socket.socket:
    """A datagram socket a ``Type=notify`` service reports to through ``NOTIFY_SOCKET``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    path.chmod(0o777)  # the service sends after dropping root
    return sock


def wait_ready(sock: socket.socket, proc: subprocess.Popen[Any], timeout: float) -> None:
    """Block until the service sends READY=1 or exits (pidfd), as systemd waits for it."""
    pidfd = os.pidfd_open(proc.pid)
    try:
        while True:
            readable, _, _ = select.select([sock.fileno(), pidfd], [], [], timeout)
            if not readable:
                raise TimeoutError(f"no READY=1 within {timeout}s")
            if pidfd in readable:
                raise RuntimeError(f"exited with {proc.wait()} before READY=1")
            if b"READY=1" in sock.recv(4096).split(b"\n"):
                return
    finally:
        os.close(pidfd)


class StockMosquitto:
    """Mosquitto from Debian's stock config plus ``deploy/mosquitto/edgeorder.conf`` in
    ``conf.d``, under ``root`` (absolute paths of both files moved there, listener ports moved
    to free ones), started as root so that it drops to user ``mosquitto`` as on a server."""

    def __init__(self, root: Path, *, tls_port: int, local_port: int) -> None:
        self.root, self.tls_port, self.local_port = root, tls_port, local_port
        self.etc = root / "etc" / "mosquitto"
        self.proc: subprocess.Popen[bytes] | None = None

    def here(self, text: str) -> str:
        for path in MOSQUITTO_PATHS:
            text = text.replace(path, f"{self.root}{path}")
        text = text.replace("listener 8883", f"listener {self.tls_port}")
        return text.replace("listener 1883 127.0.0.1", f"listener {self.local_port} 127.0.0.1")

    def install(self, conf_d: Path = PROJECT_CONF) -> StockMosquitto:
        (self.etc / "conf.d").mkdir(parents=True, exist_ok=True)
        (self.etc / "mosquitto.conf").write_text(self.here(STOCK_CONF.read_text()))
        (self.etc / "conf.d" / "edgeorder.conf").write_text(self.here(conf_d.read_text()))
        for name in ("run", "var/lib", "var/log"):
            directory = self.root / name / "mosquitto"
            directory.mkdir(parents=True, exist_ok=True)
            shutil.chown(directory, "mosquitto", "mosquitto")  # as Debian's unit and package do
        return self

    @property
    def log(self) -> str:
        path = self.root / "var/log/mosquitto/mosquitto.log"
        return path.read_text() if path.exists() else ""

    def start(self, timeout: float = 15) -> StockMosquitto:
        notify = self.root / "notify.sock"
        notify.unlink(missing_ok=True)
        sock = notify_socket(notify)
        try:
            self.proc = subprocess.Popen(
                ["mosquitto", "-c", str(self.etc / "mosquitto.conf")],
                env={**os.environ, "NOTIFY_SOCKET": str(notify)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                wait_ready(sock, self.proc, timeout)
            except RuntimeError as exc:
                assert self.proc.stderr is not None
                raise RuntimeError(f"{exc}: {self.proc.stderr.read().decode()}{self.log}") from None
        finally:
            sock.close()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def shared_tmpdir(prefix: str) -> Path:
    """A directory outside pytest's 0700 tmp tree: services that drop root must reach in."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


class TlsClient:
    """A paho client (TLS when ``ca`` is given) that records what it receives and whether it
    was disconnected; waits block on a condition, never sleep."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str,
        password: str,
        ca: Path | None = None,
        client_id: str | None = None,
        clean_session: bool = True,
    ) -> None:
        self.messages: list[Message] = []
        self.disconnects = 0
        self.refused: object = None
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self._answered = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"probe-{uuid.uuid4().hex[:8]}",
            clean_session=clean_session,
        )
        self.client.username_pw_set(username, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        if getattr(rc, "is_failure", False):
            self.refused = rc
        else:
            self._connected.set()
        self._answered.set()

    def _on_disconnect(self, *_args: object) -> None:
        with self._cond:
            self.disconnects += 1
            self._cond.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def connected(self, timeout: float = 10) -> bool:
        """True if the broker accepted the CONNECT, False if it refused it."""
        if not self._answered.wait(timeout):
            raise TimeoutError("no CONNACK")
        return self._connected.is_set()

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe(topic, 1)
        if not done.wait(10):
            raise TimeoutError(f"no SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def wait_for(self, predicate: Callable[[Message], bool], count: int = 1) -> list[Message]:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: len([m for m in self.messages if predicate(m)]) >= count, 15
            )
            found = [m for m in self.messages if predicate(m)]
        if not ok:
            raise TimeoutError(f"{len(found)} of {count} messages; got {self.messages[-5:]}")
        return found

    def wait_disconnected(self, timeout: float = 15) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.disconnects > 0, timeout):
                raise TimeoutError("still connected")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
