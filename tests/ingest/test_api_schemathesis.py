"""ingest's REST API against its own OpenAPI document: schemathesis over real HTTP finds nothing.

Real parts: Mosquitto, ``edgeorder ordercore`` and ``edgeorder ingest`` as processes; a device
presses (so events, orders and a buffered order exist for the answers to be checked against
their schemas), then schemathesis runs every check with a fixed seed and 20 examples per
operation, authenticated with an API token. Operations that create something link to the
operations that use it (a new device's id), so those run on real rows too.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.web.auth import create_api_token
from tests.ingest.support import add_device, press
from tests.support.mosquitto import MosquittoServer, mosquitto_binary
from tests.support.mqtt import MqttProbe
from tests.support.net import free_port
from tests.support.schemathesis import Service, run_schemathesis, schemathesis_config

pytestmark = pytest.mark.integration

CORE_ADMIN = "st-core-admin"
CORE_APP = "st-core-ingest"


class Stack:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.services: list[Service] = []
        self.broker: MosquittoServer | None = None
        self.core_port = free_port()
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.token = ""
        self.ingest: Service | None = None
        self.core: Service | None = None

    def start(self) -> Stack:
        """Start everything, or stop what did start and raise."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Stack:
        self.broker = MosquittoServer(self.base / "mosquitto").start()
        self.core = self._core()
        data = self.base / "ingest"
        add_device(data, "st-01", allow_parallel=True)
        db = open_db(data / "ingest.db")
        try:
            self.token = create_api_token(db, "schemathesis")
        finally:
            db.conn.close()
        self.ingest = Service(
            (
                "ingest",
                "--data-dir",
                str(data),
                "--mqtt-url",
                self.broker.url,
                "--mqtt-username",
                "",
                "--http-port",
                str(self.http_port),
                "--ordercore-url",
                f"http://127.0.0.1:{self.core_port}",
                "--ordercore-token",
                CORE_APP,
                "--retry-base-s",
                "30",
                "--retry-max-s",
                "60",
            ),
        ).start("mqtt.subscribed")
        self.services.append(self.ingest)
        return self

    def _core(self) -> Service:
        core = Service(
            (
                "ordercore",
                "--port",
                str(self.core_port),
                "--data-dir",
                str(self.base / "ordercore"),
                "--seed-catalog",
            ),
            env={
                "EDGEORDER_ORDERCORE_TOKEN": f"ops={CORE_ADMIN}:role=admin,"
                f"ingest={CORE_APP}:role=app"
            },
        ).start("ordercore_listening")
        self.services.append(core)
        return core

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        if self.broker is not None:
            self.broker.stop()


def _press_and_wait(probe: MqttProbe, state: str) -> None:
    event = press("st-01")
    status = p.device_topic("st-01", p.Channel.STATUS)
    probe.publish(p.device_topic("st-01", p.Channel.EVENTS), p.encode(event))
    found = probe.wait_for(
        lambda m: (
            m.topic == status
            and json.loads(m.payload).get("event_id") == event.event_id
            and json.loads(m.payload)["state"] == state
        ),
        timeout=30,
    )
    assert found, f"no {state} for {event.event_id}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto binary not installed (apt-get install mosquitto)")
    running = Stack(tmp_path_factory.mktemp("ingest-api")).start()
    try:
        assert running.broker is not None
        probe = MqttProbe(running.broker.port)
        try:
            assert probe.wait_connected()
            probe.subscribe(p.device_topic("st-01", p.Channel.STATUS))
            for _ in range(2):
                _press_and_wait(probe, "ordered")
            assert running.core is not None
            running.core.stop()  # the next press waits in the buffer: a pending row to list
            _press_and_wait(probe, "queued")
        finally:
            probe.close()
        yield running
    finally:
        running.stop()


def document(stack: Stack) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{stack.url}/api/openapi.json", headers={"Authorization": f"Bearer {stack.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        doc: dict[str, Any] = json.load(resp)
    return doc


# Answers to schema-valid bodies that depend on what no schema can say, each documented in the
# operation's responses: a SKU outside the platform's catalog (400 unknown_sku), a catalog
# that cannot be read (424: the stack's order core is stopped to keep a buffered order), a
# bulk request whose action lacks its env/tag (400) or names unknown devices (409).
REFUSING_VALID_DATA = [
    {"operation_id": "post_api_devices", "statuses": ["201", "400", "409", "424"]},
    {"operation_id": "patch_api_devices__device_id", "statuses": ["200", "400", "404", "424"]},
    {"operation_id": "post_api_bulk_devices", "statuses": ["200", "400", "409"]},
]


def test_schemathesis_finds_nothing(stack: Stack, tmp_path: Path) -> None:
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(document(stack)))
    config = schemathesis_config(tmp_path / "schemathesis.toml", REFUSING_VALID_DATA)
    result = run_schemathesis(
        str(schema), {"Authorization": f"Bearer {stack.token}"}, config, "--url", stack.url
    )
    report = result.stdout + result.stderr
    print(report[-2500:])  # the summary, for -s
    assert result.returncode == 0, report[-8000:]
    assert stack.ingest is not None
    log = stack.ingest.log_text()
    assert "api_unhandled_error" not in log, log[-5000:]
    assert "Traceback" not in log, log[-5000:]


def test_every_route_under_api_is_documented(stack: Stack) -> None:
    from edgeorder.ingest.app import create_app
    from edgeorder.ingest.settings import Settings

    app = create_app(Settings(data_dir=stack.base / "unused"))
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/")
        and route.method != "HEAD"
    }
    doc = document(stack)
    documented = {(m, path) for path, ops in doc["paths"].items() for m in ops}
    assert routes == documented


def raw_request(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "header", [b"Authorization: Bearer x\x00", b"Authorization: Bearer x\x7f", b"X-Any: \x00"]
)
def test_a_nul_or_del_byte_in_a_header_is_400_without_an_error_log(
    stack: Stack, header: bytes
) -> None:
    assert stack.ingest is not None
    before = len(stack.ingest.lines)
    answer = raw_request(
        stack.url,
        b"GET /api/devices HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.0 400")), answer
    new = "".join(stack.ingest.wait_for("bad_http_request", since=before))
    assert "Traceback" not in new
    assert "ERROR" not in new
