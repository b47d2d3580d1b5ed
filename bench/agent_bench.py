"""``python -m edgeorder.bench.agent_bench``: figures of one device agent (printed, never asserted).

1. Memory: ``edgeorder agent --simulate`` as its own process against a fresh Mosquitto, with a
   responder that answers every event ``accepted`` (as ingest does). Resident memory (VmRSS)
   once connected and idle, then after ``--presses`` presses typed on its stdin, all answered
   (the agent's telemetry reports ``queue_depth`` 0), plus the peak (VmHWM).
2. Press-to-LED: an in-process ``Agent`` on gpiozero's MockFactory, connected to the same
   broker. A bench thread drives the button pin low (the real gpiozero callback path) and
   times until ``on_led("press_ack", ...)``; median and p99 over ``--samples`` presses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion

from edgeorder import protocol as p
from edgeorder.agent.config import parse_config
from edgeorder.agent.runtime import Agent
from edgeorder.logs import configure_logging
from tests.support.mosquitto import MosquittoServer
from tests.support.proc import spawn_cli

__all__ = ["main"]


def _vm(pid: int, key: str) -> float:
    """``VmRSS``/``VmHWM`` of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


class _Answering:
    """Plays ingest with a working platform: answers every event with retained ``accepted``
    then ``ordered`` statuses (the agent keeps a press until its outcome is known); counts
    unique event ids and keeps each device's latest telemetry."""

    def __init__(self, port: int) -> None:
        self.ids: set[str] = set()
        self.telemetry: dict[str, list[dict[str, object]]] = {}
        self.cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-ingest")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(
            [(p.subscription(p.Channel.EVENTS), 1), (p.subscription(p.Channel.TELEMETRY), 0)]
        )
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        device_id, channel = p.parse_device_topic(msg.topic)
        if channel is p.Channel.EVENTS:
            event = p.decode(p.Event, bytes(msg.payload))
            for state, order_id in ((p.State.ACCEPTED, None), (p.State.ORDERED, event.event_id)):
                status = p.Status(
                    event_id=event.event_id, state=state, order_id=order_id, ts=p.utcnow()
                )
                client.publish(
                    p.device_topic(device_id, p.Channel.STATUS),
                    p.encode(status),
                    qos=1,
                    retain=True,
                )
        with self.cond:
            if channel is p.Channel.EVENTS:
                self.ids.add(event.event_id)
            else:
                self.telemetry.setdefault(device_id, []).append(json.loads(msg.payload))
            self.cond.notify_all()

    def wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        with self.cond:
            if not self.cond.wait_for(pred, timeout):
                raise TimeoutError(f"waited {timeout:.0f} s for {what}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _write_config(folder: Path, device_id: str, port: int) -> Path:
    path = folder / f"{device_id}.toml"
    path.write_text(
        f'device_id = "{device_id}"\n[mqtt]\nurl = "mqtt://127.0.0.1:{port}"\n'
        f'[outbox]\npath = "{device_id}.db"\n[telemetry]\nheartbeat_s = 1\n'
    )
    return path


def memory(port: int, folder: Path, presses: int, answering: _Answering) -> dict[str, float]:
    proc = spawn_cli(
        "agent", "--config", str(_write_config(folder, "bench-mem", port)), "--simulate"
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    connected = threading.Event()

    def drain() -> None:  # keep reading its output so it never blocks on a full pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("led off idle"):
                connected.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not connected.wait(30):
            raise RuntimeError("agent did not connect")
        tele = answering.telemetry
        answering.wait(lambda: bool(tele.get("bench-mem")), 10, "telemetry")
        steady = _vm(proc.pid, "VmRSS")
        started = time.perf_counter()
        for _ in range(presses):
            proc.stdin.write("press\n")
        proc.stdin.flush()
        answering.wait(
            lambda: len(answering.ids) >= presses, max(120.0, presses / 20), f"{presses} events"
        )
        seen = len(tele["bench-mem"])
        answering.wait(
            lambda: len(tele["bench-mem"]) > seen and tele["bench-mem"][-1]["queue_depth"] == 0,
            120,
            "an empty outbox",
        )
        elapsed = time.perf_counter() - started
        return {
            "rss_steady_mb": steady,
            "rss_after_mb": _vm(proc.pid, "VmRSS"),
            "peak_rss_mb": _vm(proc.pid, "VmHWM"),
            "presses_per_s": presses / elapsed,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def press_to_led(port: int, folder: Path, samples: int) -> list[float]:
    path = _write_config(folder, "bench-led", port)
    config = parse_config(
        {
            "device_id": "bench-led",
            "mqtt": {"url": f"mqtt://127.0.0.1:{port}"},
            "outbox": {"path": str(folder / "bench-led.db")},
        },
        source=str(path),
        base_dir=folder,
    )
    factory = MockFactory()
    acked = threading.Event()
    ack_at: list[float] = []

    def on_led(pattern: str, state: str) -> None:
        if pattern == "press_ack":
            ack_at.append(time.perf_counter())
            acked.set()

    agent = Agent(config, pin_factory=factory, on_led=on_led)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await agent.ready.wait()

    def drive() -> list[float]:
        button, out = factory.pin(17), []
        for _ in range(samples):
            acked.clear()
            start = time.perf_counter()
            button.drive_low()
            if not acked.wait(5):
                raise TimeoutError("no press_ack")
            out.append(ack_at[-1] - start)
            button.drive_high()
        return out

    try:
        return await asyncio.to_thread(drive)
    finally:
        stop.set()
        await task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edgeorder.bench.agent_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--presses", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=1_000)
    args = parser.parse_args(argv)
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = MosquittoServer(folder / "mosquitto").start()
        answering = _Answering(broker.port)
        try:
            mem = memory(broker.port, folder, args.presses, answering)
            lat = sorted(asyncio.run(press_to_led(broker.port, folder, args.samples)))
        finally:
            answering.close()
            broker.stop()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"agent RSS, connected and idle:         {mem['rss_steady_mb']:.1f} MiB")
    print(
        f"agent RSS after {args.presses:,} presses:      {mem['rss_after_mb']:.1f} MiB "
        f"(peak {mem['peak_rss_mb']:.1f} MiB; {mem['presses_per_s']:.0f} presses/s "
        "stored, sent and answered)"
    )
    print(
        f"press-to-LED (pin edge -> press_ack), {len(lat)} presses: "
        f"median {statistics.median(lat) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
        f"max {lat[-1] * 1000:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
