"""Logins never stall orders (issue 11 §3), on the real ingest app with a real Mosquitto and
the real order core.

Before: the login verified the argon2 hash inside its own ``BEGIN IMMEDIATE`` on ``ingest.db``;
4 concurrent failed logins took press latency from 0.1 s to ~5 s and 16 made the event writer
fail with "database is locked". Here every login is held *inside* its password check while
presses are sent: were any SQLite write lock held during the check, not one press could be
recorded until the gate opens.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from edgeorder import protocol as p
from edgeorder.ingest.web.auth import Passwords
from edgeorder.ingest.web.state import PASSWORDS_KEY
from tests.ingest.support import Ingest, OrderCore, add_device, ingest_settings, press, wait_for
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe, Received
from tests.web.support import ADMIN_PASSWORD

pytestmark = pytest.mark.integration

LOGINS = 16
PRESSES = 20


class Gate:
    """Holds every password check until opened; says when ``expected`` checks are waiting."""

    def __init__(self, passwords: Passwords, expected: int) -> None:
        self._verify = passwords.verify
        self.inside = 0
        self.all_inside = asyncio.Event()
        self.open = asyncio.Event()
        self._expected = expected

    async def verify(self, hashed: str, password: str) -> bool:
        self.inside += 1
        if self.inside >= self._expected:
            self.all_inside.set()
        await self.open.wait()
        return await self._verify(hashed, password)  # the real argon2id check


@pytest.fixture
async def ingest_app(tmp_path: Path, mosquitto: MosquittoServer) -> AsyncIterator[Ingest]:
    core = await OrderCore(tmp_path / "ordercore").start()
    settings = ingest_settings(
        tmp_path / "ingest", mosquitto.url, core.url, admin_password=SecretStr(ADMIN_PASSWORD)
    )
    add_device(settings.data_dir, "busy-01", allow_parallel=True)
    running = await Ingest(settings).start()
    try:
        yield running
    finally:
        await running.stop()
        await core.stop()


async def _failed_login(http: aiohttp.ClientSession, url: str, n: int) -> tuple[int, str]:
    # Half guess at a real account, half at accounts that do not exist.
    username = "admin" if n % 2 else f"ghost-{n}"
    async with http.post(
        url + "/login", data={"username": username, "password": f"guess-{n}"}
    ) as resp:
        page = await resp.text()
        return resp.status, page.replace(f'value="{username}"', "")


def _accepted(event_ids: set[str]) -> Callable[[Received], bool]:
    topic = p.device_topic("busy-01", p.Channel.STATUS)

    def match(m: Received) -> bool:
        body = json.loads(m.payload)
        return m.topic == topic and body["state"] == "accepted" and body["event_id"] in event_ids

    return match


async def _press_all(probe: MqttProbe, count: int) -> None:
    events = [press("busy-01", seq=i + 1) for i in range(count)]
    for event in events:
        probe.publish(p.device_topic("busy-01", p.Channel.EVENTS), p.encode(event))
    ids = {e.event_id for e in events}
    await wait_for(probe, _accepted(ids), count=count, distinct_events=True)


async def test_presses_are_accepted_while_logins_are_checking_passwords(
    ingest_app: Ingest, probe: MqttProbe, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ingest_app._runner is not None
    passwords = ingest_app._runner.app[PASSWORDS_KEY]
    gate = Gate(passwords, LOGINS)
    monkeypatch.setattr(passwords, "verify", gate.verify)
    service = ingest_app.service
    async with aiohttp.ClientSession() as http:
        logins = [
            asyncio.create_task(_failed_login(http, ingest_app.url, n)) for n in range(LOGINS)
        ]
        await gate.all_inside.wait()  # every login is inside its password check now
        await _press_all(probe, PRESSES)  # ... and every press is recorded meanwhile
        assert not any(t.done() for t in logins)
        gate.open.set()  # the real argon2 checks run now, while more presses flow
        more = asyncio.create_task(_press_all(probe, PRESSES))
        answers = await asyncio.gather(*logins)
        await more
    assert gate.inside == LOGINS
    # Unknown users and a known user's wrong password get the very same answer.
    assert {status for status, _ in answers} == {401}
    assert len({page for _, page in answers}) == 1
    # The event path never failed a write: nothing was retried, nothing is failing.
    assert service.router.retried == 0
    assert service.router.failing() == 0
    _, metrics = await ingest_app.get("/metrics")
    assert f"edgeorder_ingest_events_accepted_total {2 * PRESSES}.0" in metrics
