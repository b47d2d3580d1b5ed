"""ingest's MQTT link over TLS (``mqtts://``), as production runs it (deploy/mosquitto: 8883):
the blocking handshake happens off the loop, then reads and writes go through the event loop
and the link's read buffer. Large payloads make the broker's bursts span many TLS records."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.mqtt.link import MqttLink, MqttOptions
from tests.support.mosquitto import MosquittoServer, mosquitto_binary

pytestmark = pytest.mark.integration

MESSAGES = 300
PAYLOAD = b"x" * 3500  # ~1 MB in all: many 16 KiB TLS records per burst


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed (apt-get install openssl)")
    d = tmp_path / "tls"
    d.mkdir()

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=edgeorder test CA",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    )
    return {"ca": d / "ca.crt", "cert": d / "server.crt", "key": d / "server.key"}


@pytest.fixture
def tls_broker(tmp_path: Path, tls_files: dict[str, Path]) -> Iterator[MosquittoServer]:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto binary not installed (apt-get install mosquitto)")
    server = MosquittoServer(tmp_path / "mosquitto")
    with server.conf_path.open("a") as conf:  # TLS settings of the (only) listener
        conf.write(
            f"\ncafile {tls_files['ca']}\ncertfile {tls_files['cert']}\n"
            f"keyfile {tls_files['key']}\ntls_version tlsv1.2\n"
        )
    server.start()
    yield server
    server.stop()


async def test_events_and_acknowledgements_flow_over_tls(
    tls_broker: MosquittoServer, tls_files: dict[str, Path]
) -> None:
    link = MqttLink(
        MqttOptions(
            url=f"mqtts://127.0.0.1:{tls_broker.port}",
            username=None,
            password=None,
            client_id="tls-ingest",
            ca_file=str(tls_files["ca"]),
        )
    )
    acknowledged: set[int] = set()
    all_acknowledged = asyncio.Event()

    def published(mid: int) -> None:
        acknowledged.add(mid)
        if len(acknowledged) == MESSAGES:
            all_acknowledged.set()

    link.on_published = published
    link.start()
    try:
        await asyncio.wait_for(link.subscribed.wait(), 15)
        topic = p.device_topic("tls-01", p.Channel.EVENTS)
        mids = {link.publish(topic, PAYLOAD + str(i).encode()) for i in range(MESSAGES)}
        received: list[bytes] = []
        async with asyncio.timeout(30):
            while len(received) < MESSAGES:  # the link is subscribed to every device's events
                message = await link.inbound.get()
                received.append(message.payload)
                link.ack(message)
            await all_acknowledged.wait()
    finally:
        await link.stop()
    assert sorted(received) == sorted(PAYLOAD + str(i).encode() for i in range(MESSAGES))
    assert acknowledged == mids  # every publish got its PUBACK through the TLS socket
    assert link.dropped == 0
