"""The telemetry phase: what a fleet's heartbeats cost ingest, per message.

A device sends a heartbeat every ``[telemetry] heartbeat_s`` (default 60 s): 100,000 devices
are 1,667 messages a second before anyone presses a button, each one an upsert of the
device's latest report. The phase publishes ``count`` telemetry messages (QoS 1, so the
generator can pace on PUBACKs; devices send QoS 0) and waits until every worker's
``edgeorder_ingest_messages_total{channel="telemetry",outcome="recorded"}`` adds up to them
(read from ``/metrics`` every 0.2 s: telemetry gets no status to wait for).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

from edgeorder.bench.events import PlannedEvent
from edgeorder.bench.load import LoadGenerator
from edgeorder.bench.procs import ResourceUsage
from edgeorder.bench.stats import rate
from edgeorder.protocol import Channel, device_topic

__all__ = ["plan_telemetry", "recorded", "run_telemetry"]

_METRIC = 'edgeorder_ingest_messages_total{channel="telemetry",outcome="recorded"}'


def plan_telemetry(devices: Sequence[str], count: int) -> list[PlannedEvent]:
    """``count`` heartbeats spread round-robin over ``devices``."""
    topics = [device_topic(d, Channel.TELEMETRY) for d in devices]
    out = []
    for i in range(count):
        idx = i % len(devices)
        body = {"v": 1, "uptime_s": 1000 + i, "queue_depth": 0, "fw": "bench", "rssi": -60}
        payload = json.dumps(body, separators=(",", ":")).encode()
        out.append(PlannedEvent(idx, devices[idx], topics[idx], f"telemetry-{i}", payload))
    return out


def recorded(ports: Sequence[int]) -> int:
    """Telemetry messages recorded so far, over every worker's /metrics."""
    total = 0.0
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith(_METRIC + " "):
                    total += float(line.rsplit(" ", 1)[1])
    return int(total)


def run_telemetry(
    generator: LoadGenerator,
    ports: Sequence[int],
    devices: Sequence[str],
    count: int,
    usage: Any,
    timeout: float,
) -> dict[str, Any]:
    """Publish ``count`` heartbeats; rate and CPU per message of every process."""
    start_count = recorded(ports)
    before: dict[str, ResourceUsage] = usage()
    started = time.monotonic()
    generator.publish(plan_telemetry(devices, count))
    deadline = started + timeout
    done = recorded(ports) - start_count
    while done < count and time.monotonic() < deadline:
        time.sleep(0.2)  # a bench reading a counter, not a test waiting
        done = recorded(ports) - start_count
    took = time.monotonic() - started
    after: dict[str, ResourceUsage] = usage()
    cpu = {s: after[s].cpu_s - before.get(s, ResourceUsage(0, 0)).cpu_s for s in after}
    return {
        "messages": count,
        "recorded": done,
        "complete": done >= count,
        "recorded_per_s": round(rate(done, took), 1),
        "cpu_ms_per_message": {s: round(1000 * c / max(done, 1), 3) for s, c in cpu.items()},
    }
