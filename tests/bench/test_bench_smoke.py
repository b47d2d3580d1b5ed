"""``edgeorder bench``: the help works, and a tiny run goes through the whole chain exactly once.

Correctness only: timing figures are the benchmark's output, never asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeorder.bench.reconcile import reconcile
from tests.support.mosquitto import mosquitto_binary
from tests.support.proc import run_cli


def test_help_names_every_phase_and_option() -> None:
    done = run_cli("bench", "--help")
    assert done.returncode == 0, done.stderr
    for word in ("--quick", "--devices", "--events", "--burst", "raw", "latency", "burst"):
        assert word in done.stdout


def test_bad_option_is_refused_with_a_reason() -> None:
    done = run_cli("bench", "--devices", "0")
    assert done.returncode == 2
    assert "must be at least 1" in done.stderr


def test_reconcile_finds_lost_duplicated_and_misrouted_orders() -> None:
    # The smoke run's lost == 0 means something only if reconcile can say otherwise.
    sent = {"E1": "dev-a", "E2": "dev-a", "E3": "dev-b", "E4": "dev-b", "E5": "dev-c"}
    ordered = {"E1": "1", "E2": "2", "E3": "3", "E4": "3", "E5": "9"}
    core = {"1": "dev-a", "2": "dev-a", "3": "dev-b", "4": "dev-b", "5": "dev-b", "9": "dev-a"}
    check = reconcile(sent, ordered, core)
    assert check.shared_order_id == 1  # E3 and E4 share order 3
    assert check.wrong_device == 1  # E5's order belongs to dev-a
    assert check.duplicates == 2  # dev-a has 3 orders for 2 events, dev-b 3 for 2
    assert check.unclaimed_orders == 2
    assert check.lost == 2
    assert reconcile(sent, {}, {}).lost == 5


@pytest.mark.integration
@pytest.mark.timeout(170)
def test_tiny_run_orders_every_event_exactly_once(tmp_path: Path) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto binary not installed (apt-get install mosquitto)")
    done = run_cli(
        "bench",
        "--devices",
        "5",
        "--events",
        "50",
        "--sustain-events",
        "20",
        "--latency-events",
        "20",
        "--burst",
        "50",
        "--timeout",
        "60",
        "--no-progress",
        "--out",
        str(tmp_path),
        timeout=160,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    [path] = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    check = result["verification"]
    assert check["events"] == 5 + 50 + 20 + 20 + 50  # warm-up, flood, sustain, latency, burst
    assert check["orders_in_core"] == check["events"]
    assert check["lost"] == 0
    assert check["duplicates"] == 0
    assert result["raw"]["received"] == 50
    assert result["burst"]["complete"]
    assert result["burst"]["states"]["ordered"] == 50
    assert "lost" in done.stdout  # the table


def test_tracker_wakes_its_waiter_when_every_event_reached_the_state() -> None:
    from edgeorder.bench.tracker import PhaseCounts, StatusTracker
    from edgeorder.protocol import State

    tracker = StatusTracker()
    ids = [f"01JDZ8Q7M3N4P5R6S7T8V9W0{i:02d}" for i in range(50)]
    tracker.begin_phase("p", ids)
    for event_id in ids:
        tracker.mark_published(event_id, 0.0)

    def deliver() -> None:
        for n, event_id in enumerate(ids):
            tracker.on_status(event_id, State.ACCEPTED.value, None, None, float(n))

    import threading
    import time

    thread = threading.Thread(target=deliver)

    def done(counts: PhaseCounts) -> bool:
        if not thread.is_alive() and counts.reached(State.ACCEPTED) == 0:
            # first look, under the tracker's lock: the statuses can only arrive once the
            # waiter sleeps (and releases it)
            thread.start()
        return counts.reached(State.ACCEPTED) == len(ids)

    started = time.monotonic()
    # No tick and a long timeout: without the tracker's own wake-up the wait would only end
    # at the timeout (then find the phase done), 30 s from now.
    assert tracker.wait("p", done, timeout=30, tick=3600)
    assert time.monotonic() - started < 15
    thread.join()
    assert tracker.counts("p").reached(State.ACCEPTED) == len(ids)


def test_several_workers_need_a_shared_database() -> None:
    done = run_cli("bench", "--workers", "2")
    assert done.returncode == 2
    assert "--db-url" in done.stderr


@pytest.mark.integration
@pytest.mark.timeout(170)
def test_tiny_scaling_run_prints_the_table(tmp_path: Path, pg_url: str) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto binary not installed (apt-get install mosquitto)")
    done = run_cli(
        "bench",
        "--scaling",
        "--workers",
        "2",
        "--db-url",
        pg_url,
        "--devices",
        "4",
        "--events",
        "40",
        "--telemetry",
        "30",
        "--timeout",
        "60",
        "--no-progress",
        "--out",
        str(tmp_path),
        timeout=160,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    [path] = tmp_path.glob("*.json")
    runs = json.loads(path.read_text())["runs"]
    assert all(r["telemetry"]["recorded"] == 30 for r in runs)
    assert [(r["backend"], r["workers"]) for r in runs] == [
        ("sqlite", 1),
        ("postgres", 1),
        ("postgres", 2),
    ]
    assert all(r["lost"] == 0 and r["duplicates"] == 0 and r["complete"] for r in runs)
    assert "postgres" in runs[2]["cpu_ms_per_event"]
    assert {"ingest-0", "ingest-1"} <= set(runs[2]["cpu_ms_per_event"])
    assert "x sqlite" in done.stdout  # the table
