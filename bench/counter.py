"""The raw ceiling's subscriber: a separate process that only counts ``events`` messages.

It uses the same client library and subscription as ingest (paho, QoS 1, every device's
``events``), so ``ingest/raw`` compares ingest with the cheapest possible consumer. Runs as
``python -m edgeorder.bench.counter --port P --expect N``; talks to the bench in JSON lines
on stdout:
``{"ready": true}`` once subscribed, then ``{"count", "first", "last"}`` (monotonic seconds,
comparable across processes on Linux) once N messages arrived or ``--timeout`` passed.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgeorder.protocol import Channel, subscription

__all__ = ["Counter", "connect_client", "main"]


def connect_client(
    host: str, port: int, client_id: str, *, inflight: int = 20, timeout: float = 10.0
) -> mqtt.Client:
    """A connected paho client with its network loop running; raises ConnectionError."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)
    connected = threading.Event()
    result: list[object] = []

    def on_connect(c: mqtt.Client, u: object, flags: object, rc: object, props: object) -> None:
        result.append(rc)
        connected.set()

    client.on_connect = on_connect
    client.connect(host, port, keepalive=60)
    client.loop_start()
    if not connected.wait(timeout) or getattr(result[0], "is_failure", False):
        client.loop_stop()
        raise ConnectionError(f"MQTT connect to {host}:{port} failed: {result or 'timeout'}")
    return client


class Counter:
    """Counts messages on paho's thread; ``wait(n)`` blocks on a condition until n arrived."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.count = 0
        self.first = 0.0
        self.last = 0.0

    def on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        with self._cond:
            if self.count == 0:
                self.first = now
            self.count += 1
            self.last = now
            self._cond.notify_all()

    def wait(self, expect: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= expect, timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edgeorder.bench.counter",
        description="Subscribe to every device's events (QoS 1) and count them.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--expect", type=int, required=True, help="stop after this many")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after (s)")
    args = parser.parse_args(argv)
    counter = Counter()
    subscribed = threading.Event()
    client = connect_client(args.host, args.port, f"bench-counter-{uuid.uuid4().hex[:6]}")
    client.on_message = counter.on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.subscribe(subscription(Channel.EVENTS), qos=1)
    if not subscribed.wait(10):
        print(json.dumps({"error": "no SUBACK"}), flush=True)
        return 1
    print(json.dumps({"ready": True}), flush=True)
    complete = counter.wait(args.expect, args.timeout)
    with counter._cond:
        report = {
            "count": counter.count,
            "first": counter.first,
            "last": counter.last,
            "complete": complete,
        }
    print(json.dumps(report), flush=True)
    client.disconnect()
    client.loop_stop()
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
