"""Phase "raw": the broker ceiling, measured with the counting subscriber in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from edgeorder.bench.events import PlannedEvent
from edgeorder.bench.load import LoadGenerator
from edgeorder.bench.procs import self_usage
from edgeorder.bench.stats import rate
from tests.support.proc import ROOT, cli_env

__all__ = ["RawResult", "run_raw"]


@dataclass(frozen=True)
class RawResult:
    """Events delivered to a subscriber that only counts, and how fast."""

    published: int
    received: int
    seconds: float
    events_per_s: float
    publish_per_s: float
    generator_cpu_s: float = 0.0
    """CPU of the bench process while it published (the load generator alone, nearly)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "published": self.published,
            "received": self.received,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.events_per_s, 1),
            "publish_per_s": round(self.publish_per_s, 1),
            "generator_cpu_ms_per_event": round(1000 * self.generator_cpu_s / self.published, 3)
            if self.published
            else None,
        }


def _read_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"bench.counter exited early (code {proc.wait()})")
    data: dict[str, Any] = json.loads(line)
    return data


def run_raw(
    port: int, generator: LoadGenerator, events: list[PlannedEvent], *, timeout: float = 120.0
) -> RawResult:
    """Publish ``events`` through the broker on ``port`` to ``bench.counter``; return the rate."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgeorder.bench.counter",
            "--port",
            str(port),
            "--expect",
            str(len(events)),
            "--timeout",
            str(timeout),
        ],
        env=cli_env(),
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
    )
    try:
        if not _read_line(proc).get("ready"):
            raise RuntimeError("bench.counter did not subscribe")
        before = self_usage().cpu_s
        run = generator.publish(events)
        generator_cpu = self_usage().cpu_s - before
        report = _read_line(proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)
    seconds = max(report["last"], run.last_ack) - run.first_publish
    return RawResult(
        published=run.count,
        received=int(report["count"]),
        seconds=seconds,
        events_per_s=rate(int(report["count"]), seconds),
        publish_per_s=rate(run.count, run.last_ack - run.first_publish),
        generator_cpu_s=generator_cpu,
    )
