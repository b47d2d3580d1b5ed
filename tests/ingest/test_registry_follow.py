"""A registry change made by another process (``edgeorder device ...`` on the same SQLite file)
reaches a running ingest without a restart: a device disabled from the CLI is refused, one
re-enabled orders again; ingest's own changes do not make it reload twice."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.bus import Notice
from edgeorder.ingest.store import registry
from tests.ingest.support import Ingest, OrderCore, add_device, press, status_is, wait_for
from tests.support.mqtt import MqttProbe

pytestmark = pytest.mark.integration


def cli(data_dir: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "edgeorder", "device", *args, "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        timeout=60,
    )


async def registry_reload(notices: asyncio.Queue[Notice]) -> Notice:
    async with asyncio.timeout(15):
        while True:
            notice = await notices.get()
            if notice.kind == "device" and notice.data.get("source") == "registry":
                return notice


async def test_a_device_disabled_by_the_cli_is_refused_without_a_restart(
    ingest: Ingest, ingest_dir: Path, ordercore: OrderCore, probe: MqttProbe
) -> None:
    add_device(ingest_dir, "cli-01", allow_parallel=True)
    await ingest.service.devices.reload()
    topic = p.device_topic("cli-01", p.Channel.EVENTS)
    first = press("cli-01", seq=1)
    probe.publish(topic, p.encode(first))
    await wait_for(probe, status_is("cli-01", first.event_id, "ordered"))

    async with ingest.service.bus.subscribe(frozenset({"device"})) as notices:
        await asyncio.to_thread(cli, ingest_dir, "disable", "cli-01")
        await registry_reload(notices)
    disabled = press("cli-01", seq=2)
    probe.publish(topic, p.encode(disabled))
    (msg,) = await wait_for(probe, status_is("cli-01", disabled.event_id, "rejected"))
    assert json.loads(msg.payload)["reason"] == "device disabled"

    async with ingest.service.bus.subscribe(frozenset({"device"})) as notices:
        await asyncio.to_thread(cli, ingest_dir, "enable", "cli-01")
        await registry_reload(notices)
    again = press("cli-01", seq=3)
    probe.publish(topic, p.encode(again))
    await wait_for(probe, status_is("cli-01", again.event_id, "ordered"))


async def test_ingest_does_not_reload_again_for_its_own_changes(
    ingest: Ingest, ingest_dir: Path
) -> None:
    """Its own change already reloaded the cache (and recorded the registry's mark): the
    follower, reading the same mark, finds nothing to do; another process's change it finds."""
    add_device(ingest_dir, "own-01")
    devices = ingest.service.devices
    await devices.reload()
    assert not await devices.reload_if_changed()
    await ingest.service.writer.run(lambda db: registry.set_env(db, "own-01", "dev"))
    await devices.reload()  # as the API and the dashboard do before they answer
    assert not await devices.reload_if_changed()
    add_device(ingest_dir, "other-01")  # another process's change
    assert devices.get("other-01") is None
    assert await devices.reload_if_changed()
    assert devices.get("other-01") is not None
    assert not await devices.reload_if_changed()
