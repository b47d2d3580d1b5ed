"""Three ingest workers on one PostgreSQL ledger, as real processes on a real Mosquitto shared
subscription, the real order core: a stream of presses from many devices while workers are
SIGKILLed and restarted at random. At the end every press is exactly one order in the order
core, and each device's presses end in the right state -- ``ordered``, and for the one device
that keeps the order-in-flight throttle, exactly one ``ordered`` and the rest ``throttled``
(its presses land on all three workers).

``test_workers_killed_short`` runs in the default suite. ``pytest -m cluster`` runs
``test_workers_killed_long``, sized by environment variables: ``EDGEORDER_CLUSTER_PRESSES``
(default 3000), ``EDGEORDER_CLUSTER_DEVICES`` (200), ``EDGEORDER_CLUSTER_KILLS`` (30),
``EDGEORDER_CLUSTER_RATE`` (presses/s, 60), ``EDGEORDER_CLUSTER_SEED`` (random; printed).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from edgeorder.bench.events import PlannedEvent, device_ids, plan_events
from edgeorder.bench.ordercore_api import fetch_orders
from edgeorder.bench.reconcile import reconcile
from edgeorder.bench.services import Services
from edgeorder.protocol import State
from tests.cluster.fleet import Fleet
from tests.support.mosquitto import mosquitto_binary
from tests.support.postgres import require_postgres

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto not installed")

WORKERS = 3
THROTTLED = "throttled-01"
WORKER_ARGS = [
    "--outbox-lease-s=4",  # a killed worker's orders are taken over after 4 s
    "--retry-base-s=0.05",
    "--retry-max-s=0.5",
    "--platform-timeout-s=2",
    "--poll-interval-s=3600",
]


@dataclass(frozen=True)
class Size:
    presses: int
    devices: int
    kills: int
    rate: float
    seed: int

    @classmethod
    def from_env(cls, default: Size) -> Size:
        env = os.environ.get
        return cls(
            presses=int(env("EDGEORDER_CLUSTER_PRESSES", default.presses)),
            devices=int(env("EDGEORDER_CLUSTER_DEVICES", default.devices)),
            kills=int(env("EDGEORDER_CLUSTER_KILLS", default.kills)),
            rate=float(env("EDGEORDER_CLUSTER_RATE", default.rate)),
            seed=int(env("EDGEORDER_CLUSTER_SEED", default.seed)),
        )


SHORT = Size(presses=300, devices=24, kills=4, rate=30, seed=random.randrange(1 << 32))
LONG = Size.from_env(replace(SHORT, presses=3000, devices=200, kills=30, rate=60))


def test_workers_killed_short(tmp_path: Path, pg_url: str) -> None:
    run(tmp_path, pg_url, SHORT)


@pytest.mark.cluster
def test_workers_killed_long(tmp_path: Path, pg_url: str) -> None:
    run(tmp_path, pg_url, LONG)


class Killer(threading.Thread):
    """SIGKILLs a random worker at random moments while the presses go out, and starts it
    again at once (its MQTT session, and what the broker queued for it, is waiting)."""

    def __init__(self, services: Services, size: Size, rng: random.Random, span_s: float) -> None:
        super().__init__(name="killer", daemon=True)
        self.services, self.size, self.rng = services, size, rng
        self.span_s = span_s
        self.kills: Counter[str] = Counter()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            gap = self.span_s / (self.size.kills + 1)
            for _ in range(self.size.kills):
                time.sleep(self.rng.uniform(0.5 * gap, 1.5 * gap))  # chaos pacing, not a wait
                worker = self.rng.choice(self.services.ingests)
                worker.stop(kill=True)
                self.kills[worker.name] += 1
                worker.start(timeout=60)
        except BaseException as exc:  # the test thread reports it
            self.error = exc


def run(tmp_path: Path, pg_url: str, size: Size) -> None:
    require_postgres()
    rng = random.Random(size.seed)
    services = Services(tmp_path, ingest_args=WORKER_ARGS, workers=WORKERS, db_url=pg_url)
    devices = [*device_ids(size.devices, "kill"), THROTTLED]
    seqs = [1] * len(devices)
    # The throttled device's first presses all at once: they land on all three workers
    # while none of them is ordered yet -- only the device lock keeps them to one order.
    burst = plan_events([THROTTLED], 2 * WORKERS, seqs[-1:])
    plan = [*burst, *plan_events(devices, size.presses, seqs)]
    started = time.monotonic()
    try:
        broker = services.start_broker()
        services.start_ordercore()
        services.start_ingest(devices, throttled=(THROTTLED,))
        fleet = Fleet("127.0.0.1", broker.port)
        try:
            killer = Killer(services, size, rng, span_s=size.presses / size.rate)
            killer.start()
            for planned in burst:
                fleet.press(planned)
            for i, planned in enumerate(plan[len(burst) :]):  # a stream, re-sends in between
                delay = started + i / size.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # pacing the stream
                fleet.press(planned)
                if i % 20 == 0:
                    fleet.resend_due()
            killer.join(timeout=600)
            assert killer.error is None, killer.error
            converged = fleet.wait_final(len(plan), timeout=180)
            check(services, fleet, plan, converged, size, killer.kills, started)
        finally:
            fleet.close()
    finally:
        services.stop()


def check(
    services: Services,
    fleet: Fleet,
    plan: list[PlannedEvent],
    converged: bool,
    size: Size,
    kills: Counter[str],
    started: float,
) -> None:
    states = fleet.states()
    print(
        f"cluster seed={size.seed}: {len(plan)} presses on {size.devices + 1} devices, "
        f"{WORKERS} workers, kills {dict(kills)}; final states {dict(states)}; "
        f"{fleet.resent} re-sends, {fleet.stale} stale statuses ignored, "
        f"{time.monotonic() - started:.1f}s"
    )
    assert converged, [(p.planned.event_id, p.seen) for p in fleet.unfinished()][:20]
    throttled = [p for p in fleet.presses.values() if p.planned.device_id == THROTTLED]
    others = [p for p in fleet.presses.values() if p.planned.device_id != THROTTLED]
    assert {p.state for p in others} == {State.ORDERED}
    throttled_states = Counter(p.state for p in throttled)
    assert throttled_states[State.ORDERED] == 1, throttled_states
    assert throttled_states[State.THROTTLED] == len(throttled) - 1, throttled_states
    core = fetch_orders(services.ordercore_url, services.token)
    ordered = {p.planned.event_id: p.order_id for p in fleet.presses.values() if p.order_id}
    expected = {
        p.planned.event_id: p.planned.device_id
        for p in fleet.presses.values()
        if p.state is State.ORDERED
    }
    result = reconcile(expected, {k: v for k, v in ordered.items() if v is not None}, core)
    assert (result.lost, result.duplicates, result.unclaimed_orders) == (0, 0, 0), result
    assert len(core) == len(expected)
    with services.database.open(migrate=False) as conn:
        rows = conn.execute("SELECT event_id, state FROM inbox").fetchall()
    assert len(rows) == len(plan)  # every press recorded once, whoever got it
    recorded = dict(rows)
    assert all(
        p.state is not None and recorded[p.planned.event_id] == p.state.value
        for p in fleet.presses.values()
    )
