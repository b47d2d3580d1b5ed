"""``edgeorder ingest`` as a real process, SIGKILLed mid-stream and restarted."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from edgeorder import protocol as p
from tests.ingest.support import CORE_TOKEN, OrderCore, press, wait_for
from tests.support.mosquitto import MosquittoServer
from tests.support.mqtt import MqttProbe
from tests.support.net import free_port
from tests.support.proc import run_cli, spawn_cli

pytestmark = pytest.mark.integration


class IngestProcess:
    """A subprocess whose merged output is drained by a thread (so it never blocks on a full
    pipe); ``wait_line`` blocks on a condition until a log line contains the text."""

    def __init__(self, *args: str) -> None:
        self.proc = spawn_cli("ingest", *args)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<exit>")
            self._cond.notify_all()

    def wait_line(self, text: str, timeout: float = 30) -> None:
        with self._cond:
            if not self._cond.wait_for(
                lambda: any(text in ln or ln == "<exit>" for ln in self.lines), timeout
            ):
                raise TimeoutError(f"no {text!r} in:\n" + "".join(self.lines[-30:]))
            if not any(text in ln for ln in self.lines):
                raise AssertionError("ingest exited:\n" + "".join(self.lines[-30:]))

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self) -> int:
        self.proc.terminate()
        return self.proc.wait(30)


async def test_sigkill_mid_stream_loses_nothing_and_orders_nothing_twice(
    tmp_path: Path, mosquitto: MosquittoServer, ordercore: OrderCore
) -> None:
    data = tmp_path / "ingest"
    added = await asyncio.to_thread(  # the order core answers the SKU check on this loop
        run_cli,
        "device",
        "add",
        "crash-01",
        "--sku",
        "TEA-250G",
        "--allow-parallel",
        "--data-dir",
        str(data),
        "--config-out",
        str(tmp_path / "crash-01.toml"),
        EDGEORDER_INGEST_ORDERCORE_URL=ordercore.url,  # TEA-250G is checked in its catalog
        EDGEORDER_INGEST_ORDERCORE_TOKEN=CORE_TOKEN,
    )
    assert added.returncode == 0, added.stderr
    args = (
        "--data-dir",
        str(data),
        "--mqtt-url",
        mosquitto.url,
        "--mqtt-username",
        "",
        "--mqtt-client-id",
        "ingest-crash-test",
        "--http-port",
        str(free_port()),
        "--ordercore-url",
        ordercore.url,
        "--ordercore-token",
        CORE_TOKEN,
        "--retry-base-s",
        "0.05",
        "--retry-max-s",
        "0.5",
    )
    first = IngestProcess(*args)
    first.wait_line("mqtt.subscribed")

    probe = MqttProbe(mosquitto.port)
    assert probe.wait_connected()
    probe.subscribe(p.device_topic("crash-01", p.Channel.STATUS))
    events = [press("crash-01", seq=i) for i in range(300)]
    topic = p.device_topic("crash-01", p.Channel.EVENTS)
    try:
        for event in events:
            probe.client.publish(topic, p.encode(event), qos=1)
        # kill it while it is busy: some accepted, most not yet ordered
        await wait_for(probe, lambda m: json.loads(m.payload)["state"] == "accepted", count=20)
        first.kill()
        assert first.proc.returncode == -9
        before = {
            json.loads(m.payload)["event_id"]
            for m in list(probe.messages)
            if json.loads(m.payload)["state"] == "ordered"
        }
        assert len(before) < len(events)  # the kill really was mid-stream

        second = IngestProcess(*args)
        try:
            ordered = await wait_for(
                probe,
                lambda m: json.loads(m.payload)["state"] == "ordered",
                count=300,
                within_s=120,
                distinct_events=True,
            )
        finally:
            assert second.terminate() == 0
    finally:
        probe.close()
    ordered_ids = {json.loads(m.payload)["event_id"] for m in ordered}
    assert ordered_ids == {e.event_id for e in events}  # none lost
    orders = await ordercore.orders("crash-01")
    assert len(orders) == 300  # none twice (the order core keys by event_id)
    assert {o["OrderItems"][0]["Sku"] for o in orders} == {"TEA-250G"}
    assert any("ingest.stopped" in ln for ln in second.lines)  # SIGTERM: graceful
