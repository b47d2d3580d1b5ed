"""The order core against its own OpenAPI document: schemathesis over real HTTP finds nothing.

The service runs as ``edgeorder ordercore`` (a real process and port). schemathesis generates
valid and invalid requests for every operation (bounded examples, a fixed seed), follows the
document's links from a checkout to the order's operations, and checks every answer: no 5xx,
only documented statuses, headers and content types, bodies that match their schemas, invalid
data refused, valid data accepted, auth enforced. The only widening: an operation that
documents a 422 may answer it to schema-valid data (an unknown SKU, a key used with another
body: the catalog and the order state are not in the schema). Every schema violation is 400
and stays a finding.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.net import free_port
from tests.support.schemathesis import Service, run_schemathesis, schemathesis_config

pytestmark = pytest.mark.integration

TOKEN = "st-admin"
DEFAULT_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    port = free_port()
    data = tmp_path_factory.mktemp("ordercore")
    service = Service(
        ("ordercore", "--port", str(port), "--data-dir", str(data), "--seed-catalog"),
        env={"EDGEORDER_ORDERCORE_TOKEN": f"ops={TOKEN}:role=admin"},
    ).start("ordercore_listening")
    yield service, f"http://127.0.0.1:{port}"
    service.stop()


def document(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/api/openapi.json", timeout=10) as resp:
        doc: dict[str, Any] = json.load(resp)
    return doc


def operations_refusing_valid_data(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"operation_id": op["operationId"], "statuses": [*DEFAULT_ACCEPTED, "422"]}
        for ops in doc["paths"].values()
        for op in ops.values()
        if "422" in op["responses"]
    ]


def test_schemathesis_finds_nothing(core: tuple[Service, str], tmp_path: Path) -> None:
    service, url = core
    config = schemathesis_config(
        tmp_path / "schemathesis.toml", operations_refusing_valid_data(document(url))
    )
    result = run_schemathesis(
        f"{url}/api/openapi.json", {"Authorization": f"Bearer {TOKEN}"}, config
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-8000:]
    assert "No issues found" in report or " passed" in report, report[-3000:]
    log = service.log_text()
    assert "Traceback" not in log, log[-5000:]
    assert '"level": "error"' not in log


def raw_request(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "header",
    [
        b"Authorization: Bearer " + TOKEN.encode() + b"\x00",
        b"Authorization: Bearer " + TOKEN.encode() + b"\x7f",
        b"Idempotency-Key: a\x00b",
        b"Idempotency-Key: a\x7fb",
        b"X-Anything: \x00",
    ],
)
def test_a_nul_or_del_byte_in_a_header_is_400_without_an_error_log(
    core: tuple[Service, str], header: bytes
) -> None:
    service, url = core
    before = len(service.lines)
    answer = raw_request(
        url,
        b"POST /api/checkout HTTP/1.1\r\nHost: x\r\n"
        + header
        + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.0 400")), answer
    # logged once, at info, with the reason (aiohttp alone logs an ERROR with a traceback)
    new = "".join(service.wait_for("bad_http_request", since=before))
    assert "Invalid header value char" in new
    assert "Traceback" not in new
    assert "ERROR" not in new
