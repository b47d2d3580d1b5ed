"""Fault injection on the whole chain, as real processes: a stream of presses on several
``edgeorder agent`` processes while Mosquitto (persistence on), ``edgeorder ingest``, the
order core and the agents are SIGKILLed and restarted at random. At the end every press is
exactly one order in the order core (or none, when ingest throttled or rejected it) and every
device shows each press's final state: the state in its outbox equals ingest's.

``test_short_chaos_run`` runs in the default suite (a few kills, a few hundred presses, a new
seed each time; ``EDGEORDER_CHAOS_SEED`` repeats one).
``pytest -m chaos`` runs ``test_chaos_run``, sized by environment variables:

- ``EDGEORDER_CHAOS_PRESSES`` (default 3000), ``EDGEORDER_CHAOS_DEVICES`` (8),
  ``EDGEORDER_CHAOS_FAULTS`` (40), ``EDGEORDER_CHAOS_RATE`` (presses per second, 40),
- ``EDGEORDER_CHAOS_SEED`` (random; printed, so a failing run can be repeated),
- ``EDGEORDER_CHAOS_DIR`` (keep the run's files, logs included, there instead of tmp).

Each run prints one line: presses, faults by kind, lost, duplicated, stuck.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pytest

from tests.chaos.cluster import Cluster, Proc, read_rows
from tests.chaos.support import ingest_truth
from tests.support.mosquitto import mosquitto_binary

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto not installed")


@dataclass(frozen=True)
class Size:
    presses: int
    devices: int
    faults: int
    rate: float  # presses per second, across all devices
    seed: int

    @classmethod
    def from_env(cls, default: Size) -> Size:
        env = os.environ.get
        return cls(
            presses=int(env("EDGEORDER_CHAOS_PRESSES", default.presses)),
            devices=int(env("EDGEORDER_CHAOS_DEVICES", default.devices)),
            faults=int(env("EDGEORDER_CHAOS_FAULTS", default.faults)),
            rate=float(env("EDGEORDER_CHAOS_RATE", default.rate)),
            seed=int(env("EDGEORDER_CHAOS_SEED", default.seed)),
        )

    @property
    def converge_timeout_s(self) -> float:
        """After the last fault, how long every press may take to settle (asks are every
        0.5-2 s in the run's configs, so this is ample; past it, what is open is stuck)."""
        return 60 + self.presses / self.rate / 4

    @property
    def timeout_s(self) -> float:
        return 120 + self.presses / self.rate * 2 + self.faults * 10 + self.converge_timeout_s


SHORT = Size(
    presses=240,
    devices=4,
    faults=5,
    rate=30,
    seed=int(os.environ.get("EDGEORDER_CHAOS_SEED", random.randrange(1 << 32))),
)
LONG = Size.from_env(replace(SHORT, presses=3000, devices=8, faults=40, rate=40))


@dataclass
class Report:
    size: Size
    sent: int = 0  # press commands written to an agent's stdin
    presses: int = 0  # events the agents stored (a command an agent died before storing is none)
    faults: Counter[str] = field(default_factory=Counter)  # processes killed, by kind
    rounds: int = 0  # fault rounds (one kills one, two, or every part)
    lost: list[str] = field(default_factory=list)  # made on a device, never recorded by ingest
    duplicated: list[str] = field(default_factory=list)  # orders no press of ingest's accounts for
    missing_orders: list[str] = field(default_factory=list)  # ordered in ingest, not in the core
    stuck: list[str] = field(default_factory=list)  # the device shows another state than ingest
    phantom: list[str] = field(default_factory=list)  # in ingest, on no device
    states: Counter[str] = field(default_factory=Counter)
    asks: int = 0
    stale_ignored: int = 0
    converged: bool = False  # every press settled before ``converge_timeout_s``
    converge_s: float = 0.0
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, object]:
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return {
            **fields,
            "size": asdict(self.size),
            "faults": dict(self.faults),
            "states": dict(self.states),
        }

    def line(self) -> str:
        faults = ", ".join(f"{kind} {n}" for kind, n in sorted(self.faults.items()))
        return (
            f"chaos seed={self.size.seed}: {self.presses} presses ({self.sent} sent) on "
            f"{self.size.devices} devices, {sum(self.faults.values())} kills in {self.rounds} "
            f"fault rounds ({faults}); "
            f"lost {len(self.lost)}, duplicated {len(self.duplicated)}, "
            f"missing orders {len(self.missing_orders)}, stuck {len(self.stuck)}, "
            f"phantom {len(self.phantom)}; final states {dict(self.states)}; "
            f"{self.asks} asks, {self.stale_ignored} stale statuses ignored; "
            + (
                f"converged {self.converge_s:.1f}s after the last fault"
                if self.converged
                else f"NOT converged {self.converge_s:.1f}s after the last fault"
            )
            + f", {self.elapsed_s:.1f}s in all"
        )


class Chaos:
    """One run: the press stream and the fault injector, each on its own thread."""

    def __init__(self, cluster: Cluster, size: Size) -> None:
        self.cluster, self.size = cluster, size
        self.report = Report(size)
        self.done = threading.Event()
        self._errors: list[BaseException] = []

    def run(self) -> Report:
        started = time.monotonic()
        threads = [
            threading.Thread(target=self._guard, args=(self._press,), name="presses"),
            threading.Thread(target=self._guard, args=(self._inject,), name="faults"),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self._errors:
            raise self._errors[0]
        last_fault = time.monotonic()
        converged = self.cluster.wait(self._settled, timeout=self.size.converge_timeout_s)
        self.report.converge_s = time.monotonic() - last_fault
        self._check()
        self.report.elapsed_s = time.monotonic() - started
        self.report.converged = converged
        return self.report

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:
            self._errors.append(exc)
            self.done.set()

    # --- the two threads --------------------------------------------------------------------

    def _press(self) -> None:
        rng = random.Random(self.size.seed)
        agents = list(self.cluster.agents.values())
        pause = 1 / self.size.rate
        for _ in range(self.size.presses):
            alive = [a for a in agents if a.alive] or agents
            if rng.choice(alive).send("press"):
                self.report.sent += 1
            if self.done.wait(pause):  # the pace of the stream (and an early stop on error)
                return

    def _inject(self) -> None:
        rng = random.Random(self.size.seed + 1)
        spread = self.size.presses / self.size.rate / max(1, self.size.faults)
        for _ in range(self.size.faults):
            if self.done.wait(rng.uniform(0.2, 1.2) * spread * 0.6):
                return
            victims = self._victims(rng)
            clean = "broker" in victims and rng.random() < 0.2
            self.report.rounds += 1
            for name in victims:
                self._kill(name, clean=clean)
            self.done.wait(rng.uniform(0.0, 1.5))  # down for a while; presses keep coming
            for name in victims:
                self._start(name)

    def _victims(self, rng: random.Random) -> list[str]:
        kinds = ["broker", "ingest", "ordercore", *self.cluster.agents]
        weights = [3, 3, 2, *(4 / len(self.cluster.agents),) * len(self.cluster.agents)]
        roll = rng.random()
        if roll < 0.05:  # a power cut: everything at once
            return kinds
        first = rng.choices(kinds, weights)[0]
        if roll < 0.3:  # sometimes two parts at once
            second = rng.choices(kinds, weights)[0]
            return sorted({first, second})
        return [first]

    def _proc(self, name: str) -> Proc | None:
        if name == "ingest":
            return self.cluster.ingest
        if name == "ordercore":
            return self.cluster.ordercore
        return self.cluster.agents.get(name)

    def _kill(self, name: str, *, clean: bool) -> None:
        if name == "broker":
            # Mostly SIGKILL; sometimes a clean exit, which saves a snapshot that a later
            # SIGKILL goes back to (old queued statuses come back: the LED must not follow).
            self.cluster.broker.stop(kill=not clean)
            self.report.faults["broker restart" if clean else "broker"] += 1
            return
        proc = self._proc(name)
        assert proc is not None
        proc.kill()
        self.report.faults["agent" if name in self.cluster.agents else name] += 1

    def _start(self, name: str) -> None:
        if name == "broker":
            self.cluster.broker.start()
            return
        proc = self._proc(name)
        assert proc is not None
        proc.start()

    # --- the verdict ------------------------------------------------------------------------

    def _settled(self) -> bool:
        """No press open or unacknowledged on any device, nothing pending at ingest."""
        for device in self.cluster.devices:
            if not device.outbox.exists():
                return False
            if read_rows(device.outbox, "SELECT count(*) FROM events WHERE settled = 0")[0][0]:
                return False
        return ingest_truth(self.cluster.ingest_dir / "ingest.db").pending_outbox == 0

    def _check(self) -> None:
        report, cluster = self.report, self.cluster
        truth = ingest_truth(cluster.ingest_dir / "ingest.db")
        core_orders: dict[str, set[str]] = {}
        for order_id, device_id in read_rows(
            cluster.core_dir / "ordercore.sqlite3", "SELECT id, device_id FROM orders"
        ):
            core_orders.setdefault(device_id, set()).add(str(order_id))
        for device in cluster.devices:
            agent = cluster.agents[device.device_id]
            shown = dict(read_rows(device.outbox, "SELECT event_id, state FROM events"))
            logged = {r["event_id"] for r in agent.json_lines("agent.event")}
            recorded = truth.states.get(device.device_id, {})
            report.presses += len(shown)
            report.lost += sorted((set(shown) | logged) - set(recorded))
            report.phantom += sorted(set(recorded) - set(shown))
            report.stuck += sorted(e for e in shown if e in recorded and shown[e] != recorded[e])
            report.states.update(recorded.values())
            ours = set(truth.order_ids.get(device.device_id, []))
            report.duplicated += sorted(core_orders.get(device.device_id, set()) - ours)
            report.missing_orders += sorted(ours - core_orders.get(device.device_id, set()))
            report.asks += sum(r.get("presses", 0) for r in agent.json_lines("agent.asked"))
            report.stale_ignored += sum(
                r.get("verdict") == "stale" for r in agent.json_lines("agent.status")
            )
        report.duplicated += [e for e, n in truth.orders_per_event.items() if n > 1]


def run_chaos(root: Path, size: Size) -> Report:
    cluster = Cluster(root, size.devices)
    try:
        cluster.start()
        report = Chaos(cluster, size).run()
    finally:
        cluster.close()
    print("\n" + report.line())
    (root / "report.json").write_text(json.dumps(report.as_dict(), indent=2))
    return report


def assert_converged(report: Report) -> None:
    assert report.presses > 0
    problems = {
        "lost": report.lost,
        "duplicated": report.duplicated,
        "missing orders": report.missing_orders,
        "stuck": report.stuck,
        "phantom": report.phantom,
    }
    assert report.converged, f"{report.line()}\n{problems}"
    assert not any(problems.values()), f"{report.line()}\n{problems}"


def run_dir(tmp_path: Path) -> Path:
    kept = os.environ.get("EDGEORDER_CHAOS_DIR")
    return Path(kept) / time.strftime("%Y%m%d-%H%M%S") if kept else tmp_path


@pytest.mark.integration
def test_short_chaos_run(tmp_path: Path) -> None:
    assert_converged(run_chaos(run_dir(tmp_path), SHORT))


@pytest.mark.chaos
@pytest.mark.timeout(LONG.timeout_s)
def test_chaos_run(tmp_path: Path) -> None:
    assert_converged(run_chaos(run_dir(tmp_path), LONG))
