"""One measured phase of the chain: publish a batch, wait for its statuses, sum it up."""

from __future__ import annotations

import gc
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from edgeorder.bench.events import PlannedEvent
from edgeorder.bench.load import LoadGenerator, PublishRun
from edgeorder.bench.procs import ResourceUsage
from edgeorder.bench.progress import Progress
from edgeorder.bench.stats import percentile, rate, summarize_ms
from edgeorder.bench.tracker import PhaseCounts, StatusTracker
from edgeorder.protocol import State

__all__ = ["PhaseResult", "Runner", "settled"]

_GIVE_UP = (State.REJECTED, State.FAILED, State.THROTTLED, State.CANCELLED)


def settled(counts: PhaseCounts, target: State) -> bool:
    """Every event of the phase reached ``target`` or a state after which it never will."""
    ended = counts.reached(target) + sum(counts.reached(s) for s in _GIVE_UP)
    return counts.published >= counts.expected and ended >= counts.expected


def sustained_rate(times: list[float], low: float = 10, high: float = 90) -> float:
    """Rate between the ``low``-th and ``high``-th percentile of completion times, without
    the ramp-up and the tail: in a flood, the rate at which the backlog drains."""
    if len(times) < 10:
        return 0.0
    ordered = sorted(times)
    t0, t1 = percentile(ordered, low), percentile(ordered, high)
    return rate(int(len(ordered) * (high - low) / 100), t1 - t0)


@dataclass
class PhaseResult:
    """What one phase measured (times are monotonic seconds)."""

    name: str
    events: int
    publish: PublishRun
    complete: bool
    counts: PhaseCounts
    figures: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "events": self.events,
            "complete": self.complete,
            "states": dict(sorted(self.counts.states.items())),
            **self.figures,
        }


class Runner:
    """Publishes phases through one generator and tracks them through one status watcher."""

    def __init__(
        self,
        generator: LoadGenerator,
        tracker: StatusTracker,
        progress: Progress,
        *,
        timeout: float,
    ) -> None:
        self.generator = generator
        self.tracker = tracker
        self.progress = progress
        self.timeout = timeout
        self.sent: dict[str, str] = {}
        """event_id -> device_id of every event published to the chain."""

    def start(
        self, name: str, events: list[PlannedEvent], *, rate_per_s: float | None = None
    ) -> Future[PublishRun]:
        """Register the phase and start publishing it on a worker thread."""
        self.tracker.begin_phase(name, (e.event_id for e in events))
        self.sent.update((e.event_id, e.device_id) for e in events)
        self.progress.begin(name)
        gc.freeze()  # the planned events and the records so far: no full collection walks them
        pool = ThreadPoolExecutor(1, thread_name_prefix=f"publish-{name}")
        future = pool.submit(
            self.generator.publish,
            events,
            rate=rate_per_s,
            on_published=self.tracker.mark_published,
        )
        pool.shutdown(wait=False)
        return future

    def wait(
        self, name: str, target: State, publishing: Future[PublishRun], timeout: float | None = None
    ) -> bool:
        """Block until every event of ``name`` settled at ``target`` (or publishing failed)."""

        def done(counts: PhaseCounts) -> bool:
            failed = publishing.done() and publishing.exception() is not None
            return failed or settled(counts, target)

        ok = self.tracker.wait(
            name,
            done,
            timeout=timeout or self.timeout,
            on_tick=lambda c: self.progress.update(c, target),
        )
        self.progress.update(self.tracker.counts(name), target)
        self.progress.finish()
        return ok and publishing.exception() is None

    def summarize(
        self,
        name: str,
        run: PublishRun,
        complete: bool,
        usage_before: dict[str, ResourceUsage],
        usage_after: dict[str, ResourceUsage],
    ) -> PhaseResult:
        """Rates from first publish to last status, latency percentiles, CPU per service."""
        counts = self.tracker.counts(name)
        accepted_at = self.tracker.times(name, State.ACCEPTED)
        ordered_at = self.tracker.times(name, State.ORDERED)
        figures: dict[str, Any] = {
            "publish_s": round(run.last_ack - run.first_publish, 3),
            "publish_per_s": round(rate(run.count, run.last_ack - run.first_publish), 1),
            "accepted_per_s": round(rate(len(accepted_at), _span(run, accepted_at)), 1),
            "ordered_per_s": round(rate(len(ordered_at), _span(run, ordered_at)), 1),
            "sustained_ordered_per_s": round(sustained_rate(ordered_at), 1),
            "seconds_to_last_ordered": round(_span(run, ordered_at), 3),
        }
        for state in (State.ACCEPTED, State.ORDERED):
            summary = summarize_ms(self.tracker.latencies(name, state))
            figures[f"publish_to_{state.value}"] = summary.as_dict() if summary else None
        figures["cpu_s"] = {
            svc: round(usage_after[svc].cpu_s - usage_before.get(svc, ResourceUsage(0, 0)).cpu_s, 2)
            for svc in usage_after
        }
        figures["cpu_ms_per_event"] = {
            svc: round(1000 * cpu / counts.expected, 3) for svc, cpu in figures["cpu_s"].items()
        }
        return PhaseResult(name, counts.expected, run, complete, counts, figures)


def _span(run: PublishRun, times: list[float]) -> float:
    return (max(times) - run.first_publish) if times else 0.0
