"""``python -m edgeorder.bench.agent_bench``: figures of one device agent (printed, never asserted).

1. Memory: ``edgeorder agent --simulate`` as its own process against a fresh Mosquitto, with a
   responder that answers every event ``accepted`` then ``ordered`` (as ingest does). Resident
   memory (VmRSS, and its anonymous/file-backed split) once connected and idle, then after
   ``--presses`` presses typed on its stdin (in batches of ``--batch``, each sent once the
   previous one reached the responder), all answered (the agent's telemetry reports
   ``queue_depth`` 0), plus the peak (VmHWM) and the agent's threads.
2. Press-to-LED: an ``Agent`` on gpiozero's MockFactory in a process of its own, connected to
   the same broker. A bench thread drives the button pin low (the real gpiozero callback path)
   and times until ``on_led("press_ack", ...)``; median and p99 over ``--samples`` presses.

Both phases run the agent code of ``--checkout`` (default: this checkout) on ``--python``
(default: this interpreter), so two commits compare on one machine in one run: ``--compare
OTHER_CHECKOUT --rounds 3`` interleaves them (this, other, this, other, ...) and prints the
median of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgeorder import protocol as p
from edgeorder.logs import configure_logging
from tests.support.mosquitto import MosquittoServer

__all__ = ["main"]

HERE = Path(__file__).resolve()
THIS_CHECKOUT = HERE.parents[1]


def _proc_status(pid: int) -> dict[str, float]:
    """``VmRSS``, ``VmHWM``, ``RssAnon``, ``RssFile`` (MiB) and ``Threads`` of ``pid``."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024
        elif key == "Threads":
            out[key] = int(value)
    return out


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


def _env(checkout: Path) -> dict[str, str]:
    """The agent runs ``checkout``'s code, logs JSON lines (as under systemd)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(checkout)
    env["EDGEORDER_LOG_FORMAT"] = "json"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def memory(
    *,
    python: str,
    checkout: Path,
    port: int,
    folder: Path,
    presses: int,
    batch: int,
    answering: _Answering,
    device_id: str,
) -> dict[str, float]:
    """One agent process: RSS idle, then after ``presses`` presses, all answered."""
    config = _write_config(folder, device_id, port)
    proc = subprocess.Popen(
        [python, "-m", "edgeorder", "agent", "--simulate", "--config", str(config)],
        env=_env(checkout),
        cwd=folder,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdin is not None
    connected = threading.Event()

    def drain() -> None:  # keep reading its output so it never blocks on a full pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("led off idle"):
                connected.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not connected.wait(60):
            raise RuntimeError("agent did not connect")
        tele = answering.telemetry
        answering.wait(lambda: len(tele.get(device_id, ())) >= 2, 30, "telemetry")
        idle = _proc_status(proc.pid)
        started = time.perf_counter()
        seen_before = len(answering.ids)
        for sent in range(0, presses, batch):
            n = min(batch, presses - sent)
            proc.stdin.write("press\n" * n)
            proc.stdin.flush()
            target = seen_before + sent + n

            def arrived(target: int = target) -> bool:
                return len(answering.ids) >= target

            answering.wait(arrived, 120, f"{target} events")
        seen = len(tele[device_id])
        answering.wait(
            lambda: len(tele[device_id]) > seen + 1 and tele[device_id][-1]["queue_depth"] == 0,
            300,
            "an empty outbox",
        )
        elapsed = time.perf_counter() - started
        after = _proc_status(proc.pid)
        return {
            "rss_idle_mb": idle["VmRSS"],
            "anon_idle_mb": idle["RssAnon"],
            "file_idle_mb": idle["RssFile"],
            "rss_after_mb": after["VmRSS"],
            "anon_after_mb": after["RssAnon"],
            "peak_rss_mb": after["VmHWM"],
            "threads": after["Threads"],
            "open_presses": float(str(tele[device_id][-1].get("open_presses", -1))),
            "presses_per_s": presses / elapsed,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _led_child(port: int, folder: Path, samples: int) -> None:
    """In the child process (``checkout``'s code): press-to-LED latencies, as JSON on stdout."""
    from gpiozero.pins.mock import MockFactory

    from edgeorder.agent.config import parse_config
    from edgeorder.agent.runtime import Agent

    configure_logging("warning")

    async def run() -> list[float]:
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

    print(json.dumps(asyncio.run(run())))


def press_to_led(
    *, python: str, checkout: Path, port: int, folder: Path, samples: int
) -> list[float]:
    """Run ``_led_child`` of this file on ``python`` with ``checkout``'s agent code."""
    out = subprocess.run(
        [python, "-c", _CHILD, str(HERE), "--led-child", str(port), str(folder), str(samples)],
        env=_env(checkout),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"press-to-LED child failed:\n{out.stdout}\n{out.stderr}")
    return sorted(json.loads(out.stdout.strip().splitlines()[-1]))


_CHILD = (
    "import runpy, sys\n"
    "path = sys.argv[1]\n"
    "sys.argv = [path] + sys.argv[2:]\n"
    "runpy.run_path(path, run_name='__main__')\n"
)
"""Run this file by path with ``-c``: ``python FILE`` would put bench/ first on sys.path,
where ``profile.py`` and ``stats.py`` shadow the standard library's."""


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def one_run(
    *, python: str, checkout: Path, presses: int, batch: int, samples: int, label: str
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = MosquittoServer(folder / "mosquitto").start()
        answering = _Answering(broker.port)
        try:
            mem = memory(
                python=python,
                checkout=checkout,
                port=broker.port,
                folder=folder,
                presses=presses,
                batch=batch,
                answering=answering,
                device_id="bench-mem",
            )
            lat = press_to_led(
                python=python, checkout=checkout, port=broker.port, folder=folder, samples=samples
            )
        finally:
            answering.close()
            broker.stop()
    result = {
        **mem,
        "led_median_ms": statistics.median(lat) * 1000,
        "led_p99_ms": _p99(lat) * 1000,
        "led_max_ms": lat[-1] * 1000,
    }
    print(f"[{label}] " + json.dumps({k: round(v, 2) for k, v in result.items()}), flush=True)
    return result


ROWS = (
    ("RSS idle (MiB)", "rss_idle_mb"),
    ("  of which anonymous / file-backed", ("anon_idle_mb", "file_idle_mb")),
    ("RSS after the presses, all answered (MiB)", "rss_after_mb"),
    ("  of which anonymous", "anon_after_mb"),
    ("peak RSS, VmHWM (MiB)", "peak_rss_mb"),
    ("threads", "threads"),
    ("presses/s stored, sent and answered", "presses_per_s"),
    ("press-to-LED median (ms)", "led_median_ms"),
    ("press-to-LED p99 (ms)", "led_p99_ms"),
)


def _cell(runs: list[dict[str, float]], key: str | tuple[str, str]) -> str:
    if isinstance(key, tuple):
        return " / ".join(_cell(runs, k) for k in key)
    values = sorted(r[key] for r in runs)
    med = statistics.median(values)
    spread = f" ({values[0]:.1f}-{values[-1]:.1f})" if len(values) > 1 else ""
    return f"{med:.1f}{spread}"


def table(columns: dict[str, list[dict[str, float]]]) -> str:
    """A Markdown table: one row per figure, one column per checkout (median, range)."""
    names = list(columns)
    lines = ["| figure | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for title, key in ROWS:
        lines.append(f"| {title} | " + " | ".join(_cell(columns[n], key) for n in names) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["--led-child"]:
        _led_child(int(args_in[1]), Path(args_in[2]), int(args_in[3]))
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m edgeorder.bench.agent_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--presses", type=int, default=10_000, help="default 10,000")
    parser.add_argument(
        "--batch", type=int, default=200, help="presses typed at once (default 200)"
    )
    parser.add_argument(
        "--samples", type=int, default=1_000, help="press-to-LED samples (default 1,000)"
    )
    parser.add_argument(
        "--checkout",
        type=Path,
        default=THIS_CHECKOUT,
        help="the checkout whose agent code runs (default: this one)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter the agent runs on, e.g. a venv with only the base install "
        "(default: this one)",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="OTHER_CHECKOUT",
        help="also run OTHER_CHECKOUT's agent, interleaved with --checkout's",
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each checkout (default 1)")
    args = parser.parse_args(args_in)
    for name in ("presses", "batch", "samples", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    configure_logging("warning")
    checkouts = {str(args.checkout): args.checkout.resolve()}
    if args.compare is not None:
        checkouts[str(args.compare)] = args.compare.resolve()
    columns: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
    for round_no in range(1, args.rounds + 1):
        for name, checkout in checkouts.items():
            columns[name].append(
                one_run(
                    python=args.python,
                    checkout=checkout,
                    presses=args.presses,
                    batch=args.batch,
                    samples=args.samples,
                    label=f"{name} round {round_no}",
                )
            )
    print(
        f"\n{args.presses:,} presses, {args.samples:,} press-to-LED samples, "
        f"{args.rounds} round(s) each, agent on {args.python}; median (range)\n"
    )
    print(table(columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
