"""Where webhooks may not go (``ordercore.targets``): a link-local, unspecified or multicast
address in any spelling a resolver reads, at subscription and at delivery (a host name that
resolves to one)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from edgeorder.ordercore.delivery import Dispatcher
from edgeorder.ordercore.settings import Settings
from edgeorder.ordercore.store import webhooks as wh
from edgeorder.ordercore.targets import GuardedResolver, refused_target

METADATA = [
    "http://169.254.169.254/latest/meta-data",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://169.254.43518/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[0:0:0:0:0:ffff:169.254.169.254]/",
    "http://[64:ff9b::169.254.169.254]/",
    "http://[fe80::1]/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://[::ffff:0.0.0.0]/",
    "http://224.0.0.1/",
    "http://[::ffff:224.0.0.1]/",
]


@pytest.mark.parametrize("url", METADATA)
def test_every_spelling_of_a_refused_address_is_refused(url: str) -> None:
    assert refused_target(url) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/webhooks/ordercore",  # ingest on the same host
        "http://10.0.0.5/hook",
        "https://[::1]:8443/x",
        "https://hooks.example.com/edgeorder",  # a name: checked at delivery
    ],
)
def test_loopback_private_and_names_are_allowed(url: str) -> None:
    assert refused_target(url) is None


class _Answers(AbstractResolver):
    """What a DNS server answers for every name (the filter's input; no network)."""

    def __init__(self, *hosts: str) -> None:
        self.hosts = hosts

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=h, port=port, family=family, proto=0, flags=0)
            for h in self.hosts
        ]

    async def close(self) -> None:
        return None


async def test_a_name_resolving_to_metadata_gets_no_connection() -> None:
    with pytest.raises(OSError, match="resolves only to addresses webhooks may not reach"):
        await GuardedResolver(_Answers("169.254.169.254")).resolve("evil.example", 80)
    mixed = await GuardedResolver(_Answers("169.254.169.254", "192.0.2.7")).resolve("x", 80)
    assert [r["host"] for r in mixed] == ["192.0.2.7"]


async def test_the_real_resolver_still_finds_loopback() -> None:
    resolver = GuardedResolver()
    try:
        found = await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
    assert found
    assert all(r["host"] in ("127.0.0.1", "::1") for r in found)


class _RecordingWriter:
    """Records the writer jobs a delivery asks for (the give-up mark), in place of SQLite."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []

    async def run(self, job: Any) -> bool:
        self.jobs.append(dict(job.keywords))
        return True


async def test_a_subscription_to_a_refused_address_is_given_up_at_once(tmp_path: Path) -> None:
    """A subscription stored before the check existed: its delivery is never POSTed and is
    failed on the first look, not retried until ``webhook_max_attempts`` (nothing could
    succeed later)."""
    settings = Settings(data_dir=tmp_path, tokens=["t"], webhook_max_attempts=5)
    writer = _RecordingWriter()
    dispatcher = Dispatcher(settings, None, writer, clock=lambda: 1000.0)  # type: ignore[arg-type]
    sub = wh.Subscriber(1, "http://169.254.169.254/latest", "s")
    delivery = wh.Delivery(7, 1, "order/created", "{}", attempts=0, next_attempt_ts=0.0)
    assert await dispatcher._deliver_until_done(sub, delivery) is False  # no session: no POST
    (job,) = writer.jobs
    assert (job["delivery_id"], job["next_ts"]) == (7, None)  # given up, no retry scheduled
    assert "link-local" in job["error"]
