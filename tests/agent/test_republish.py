"""The republish schedule: what is due when, with backoff per event, without a broker."""

from __future__ import annotations

from edgeorder.agent.backoff import Backoff
from edgeorder.agent.republish import BUSY_RETRY_S, RepublishSchedule


class Sent(list[bytes]):
    """A ``send`` that records each payload and reports it queued."""

    def __call__(self, payload: bytes) -> bool:
        self.append(payload)
        return True


def schedule() -> RepublishSchedule:
    # rand() = 1.0: no jitter, so delays are exactly 2, 4, 8 (capped at 8)
    return RepublishSchedule(lambda: Backoff(2.0, 8.0, rand=lambda: 1.0))


def test_each_event_is_sent_when_due_then_again_with_growing_backoff() -> None:
    plan, sent = schedule(), Sent()
    plan.track("A", b"a", 0.0)
    plan.track("B", b"b", 1.0)
    assert plan.run_due(0.0, sent) == 1
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
    assert plan.forget("A")
    assert not plan.forget("A")
    assert plan.run_due(100.0, sent) == 0
    assert sent == []
    assert len(plan) == 0


def test_a_refused_publish_is_retried_soon_without_growing_the_backoff() -> None:
    plan = schedule()
    plan.track("A", b"a", 0.0)
    assert plan.run_due(0.0, lambda p: False) == 0
    assert plan.next_at() == BUSY_RETRY_S
    assert plan.run_due(BUSY_RETRY_S, lambda p: True) == 1
    assert plan.next_at() == BUSY_RETRY_S + 2.0  # the first backoff step, not the second


def test_after_a_connect_everything_is_due_at_once() -> None:
    plan, sent = schedule(), Sent()
    plan.track("A", b"a", 0.0)
    plan.track("B", b"b", 0.0)
    plan.run_due(0.0, lambda p: True)
    assert plan.run_due(1.0, sent) == 0
    plan.all_due(1.0)
    assert plan.run_due(1.0, sent) == 2
    assert sorted(sent) == [b"a", b"b"]
    assert set(plan) == {"A", "B"}
