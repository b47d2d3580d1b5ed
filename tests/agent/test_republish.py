"""The republish schedule: what is due when, with backoff per event, without a broker."""

from __future__ import annotations

from edgeorder.agent.republish import BUSY_RETRY_S, RepublishSchedule
from edgeorder.kit.backoff import Backoff


class Sent(list[bytes]):
    """A ``send`` that records each payload and reports it queued."""

    def __call__(self, payload: bytes) -> bool:
        self.append(payload)
        return True


def schedule(rand: float = 1.0) -> RepublishSchedule:
    # Backoff rand() = 1.0: no jitter, so delays are exactly 2, 4, 8 (capped at 8)
    return RepublishSchedule(lambda: Backoff(2.0, 8.0, rand=lambda: 1.0), rand=lambda: rand)


def test_each_event_is_sent_when_due_then_again_with_growing_backoff() -> None:
    plan, sent = schedule(), Sent()
    plan.track("A", b"a", 0.0)
    plan.track("B", b"b", 1.0)
    assert plan.run_due(0.0, sent).sent == 1
    assert sent == [b"a"]
    assert plan.next_at() == 1.0
    times = []
    for now in (1.0, 2.0, 3.0, 5.0, 6.0, 10.0, 14.0):
        before = len(sent)
        plan.run_due(now, sent)
        times += [(now, p) for p in sent[before:]]
    # A: 0, 2, 6, 14; B: 1, 3, 7 -> seen at the first run at or after each
    assert times == [(1.0, b"b"), (2.0, b"a"), (3.0, b"b"), (6.0, b"a"), (10.0, b"b"), (14.0, b"a")]


def test_a_forgotten_event_is_never_sent_again() -> None:
    plan, sent = schedule(), Sent()
    plan.track("A", b"a", 0.0)
    assert plan.forget("A") == b"a"
    assert plan.forget("A") is None
    assert plan.run_due(100.0, sent).sent == 0
    assert sent == []
    assert len(plan) == 0


def test_a_refused_publish_is_retried_soon_without_growing_the_backoff() -> None:
    plan = schedule()
    plan.track("A", b"a", 0.0)
    assert plan.run_due(0.0, lambda p: False).sent == 0
    assert plan.next_at() == BUSY_RETRY_S
    assert plan.run_due(BUSY_RETRY_S, lambda p: True).sent == 1
    assert plan.next_at() == BUSY_RETRY_S + 2.0  # the first backoff step, not the second


def test_after_a_connect_everything_is_due_again_with_a_fresh_backoff() -> None:
    plan, sent = schedule(), Sent()
    plan.track("A", b"a", 0.0)
    plan.track("B", b"b", 0.0)
    for now in (0.0, 2.0, 6.0):
        plan.run_due(now, sent)
    assert plan.run_due(7.0, sent).sent == 0  # next at 14
    plan.all_due(7.0)
    assert plan.run_due(7.0, sent).sent == 2
    assert plan.next_at() == 9.0  # 7 + the first step again, not 7 + 8
    assert set(plan) == {"A", "B"}


def test_a_reconnect_spreads_the_asks() -> None:
    plan = schedule(rand=0.5)
    plan.track("A", b"a", 0.0, wait=True)
    assert plan.next_at() == 2.0  # wait: after one backoff step, not at once
    plan.all_due(10.0, spread_s=30.0)
    assert plan.run_due(24.9, lambda p: True).sent == 0
    assert plan.run_due(25.0, lambda p: True).sent == 1


def test_an_entry_past_its_deadline_is_dropped_and_reported() -> None:
    plan, sent = schedule(), Sent()
    plan.track("A", b"a", 0.0, until=5.0)
    plan.track("B", b"b", 0.0)
    assert plan.run_due(0.0, sent).sent == 2
    assert plan.run_due(2.0, sent).expired == []
    run = plan.run_due(6.0, sent)  # A is due again at 6, past its deadline
    assert (run.sent, run.expired) == (1, ["A"])
    assert set(plan) == {"B"}
    assert sent == [b"a", b"b", b"a", b"b", b"b"]


def test_oldest_is_the_first_tracked() -> None:
    plan = schedule()
    assert plan.oldest() is None
    for name in ("C", "A", "B"):
        plan.track(name, b"", 0.0)
    assert plan.oldest() == "C"
    plan.forget("C")
    assert plan.oldest() == "A"
