"""The press tracker: what is published when, from a new event to a settled press, and the
bounds on asking; pure, with an injected wall clock and no jitter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ulid import ULID

from edgeorder import protocol as p
from edgeorder.agent.config import OutboxConfig
from edgeorder.agent.presses import Verdict
from edgeorder.agent.tracker import PressTracker
from edgeorder.protocol.device import DeviceStatus

WALL = 1_800_000_000.0  # the wall clock the presses were made at


def tracker(**settings: Any) -> PressTracker:
    values: dict[str, Any] = {
        "path": Path("unused.db"),
        "retry_min_s": 1.0,
        "retry_max_s": 1.0,
        "ask_min_s": 10.0,
        "ask_max_s": 10.0,
        **settings,
    }
    return PressTracker(OutboxConfig(**values), wall=lambda: WALL, rand=lambda: 1.0)


def event_id(made_at: float = WALL) -> str:
    return str(ULID.from_timestamp(made_at))


class Sent(list[bytes]):
    def __call__(self, payload: bytes) -> bool:
        self.append(payload)
        return True


def status(event: str, state: p.State) -> DeviceStatus:
    return DeviceStatus(event, state, p.utcnow())


def test_a_press_is_published_until_answered_then_asked_about_until_settled() -> None:
    presses, sent, e = tracker(), Sent(), event_id()
    presses.made(e, b"E", 0.0)
    assert presses.run_due(0.0, sent).published == 1
    assert presses.run_due(1.0, sent).published == 1  # no answer yet: again after retry_min_s
    assert presses.judge(status(e, p.State.ACCEPTED)) is Verdict.ADVANCE
    presses.advance(e, p.State.ACCEPTED, settled=False, now=1.5)
    assert (presses.unacknowledged, presses.open) == (0, 1)
    assert presses.run_due(11.0, sent).asked == 0  # first ask one backoff step later
    assert presses.run_due(11.5, sent).asked == 1
    presses.advance(e, p.State.ORDERED, settled=True, now=12.0)
    assert presses.next_at() is None  # settled: nothing more to publish
    assert presses.is_settled(e)
    assert presses.judge(status(e, p.State.ACCEPTED)) is Verdict.STALE
    assert sent == [b"E"] * 3


def test_a_press_settled_by_its_first_status_is_never_asked_about() -> None:
    presses, e = tracker(), event_id()
    presses.made(e, b"E", 0.0)
    presses.advance(e, p.State.THROTTLED, settled=True, now=0.1)
    assert (presses.unacknowledged, presses.open, presses.next_at()) == (0, 0, None)


def test_presses_loaded_from_the_outbox_resume_where_they_were() -> None:
    presses, sent = tracker(), Sent()
    new, open_, done = event_id(WALL - 3), event_id(WALL - 2), event_id(WALL - 1)
    presses.load([(new, b"N", None), (open_, b"O", p.State.QUEUED)], [(done, p.State.ORDERED)], 0)
    assert presses.run_due(0.0, sent).published == 1  # the unacknowledged one at once
    assert presses.run_due(9.9, sent).asked == 0
    assert presses.run_due(10.0, sent).asked == 1  # the open one after a backoff step
    assert sent[0] == b"N"
    assert sent.count(b"O") == 1
    assert presses.state(open_) is p.State.QUEUED
    assert presses.judge(status(done, p.State.QUEUED)) is Verdict.STALE


def test_asking_stops_ask_for_s_after_the_press_was_made() -> None:
    presses, sent = tracker(ask_for_s=25.0), Sent()
    e = event_id(WALL - 5)  # made 5 s before now: 20 s of asking left
    presses.made(e, b"E", 0.0)
    presses.advance(e, p.State.ACCEPTED, settled=False, now=0.0)
    assert presses.run_due(10.0, sent).asked == 1
    due = presses.run_due(20.0, sent)
    assert (due.asked, due.expired) == (0, [e])
    assert presses.is_settled(e)
    assert presses.state(e) is p.State.ACCEPTED  # given up at the last state heard


def test_a_wild_press_timestamp_is_clamped() -> None:
    # A Pi without a real-time clock: a press stamped in the future is asked about for
    # ask_for_s, not for days; one stamped long ago is not asked about (ingest rejects such
    # an event as stale anyway).
    future, past = tracker(ask_for_s=25.0), tracker(ask_for_s=25.0)
    later, earlier = event_id(WALL + 10 * 86400), event_id(WALL - 10 * 86400)
    for presses, e in ((future, later), (past, earlier)):
        presses.made(e, b"E", 0.0)
        presses.advance(e, p.State.ACCEPTED, settled=False, now=0.0)
    assert future.run_due(10.0, Sent()).asked == 1
    assert future.run_due(30.0, Sent()).expired == [later]
    assert past.run_due(10.0, Sent()).expired == [earlier]


def test_past_ask_max_open_the_oldest_open_press_gives_way() -> None:
    presses = tracker(ask_max_open=2)
    ids = [event_id(WALL - 3 + n) for n in range(3)]
    for n, e in enumerate(ids):
        presses.made(e, b"x", float(n))
    for e in ids[:2]:
        assert presses.to_give_up_for(e) is None
        presses.advance(e, p.State.ACCEPTED, settled=False, now=3.0)
    assert presses.to_give_up_for(ids[2]) == ids[0]
    presses.give_up(ids[0])
    presses.advance(ids[2], p.State.ACCEPTED, settled=False, now=3.0)
    assert presses.open == 2
    assert presses.is_settled(ids[0])
    assert presses.to_give_up_for(ids[1]) is None  # already open: a newer state, no room needed


def test_a_connect_makes_everything_due_again() -> None:
    presses, sent = tracker(), Sent()
    a, b = event_id(WALL - 1), event_id()
    presses.made(a, b"A", 0.0)
    presses.made(b, b"B", 0.0)
    presses.run_due(0.0, sent)
    presses.advance(a, p.State.ACCEPTED, settled=False, now=0.0)
    presses.connected(0.5)
    assert presses.run_due(0.5, sent).published == 1  # B at once
    assert presses.run_due(10.5, sent).asked == 1  # A within ask_min_s (rand() = 1.0)
    c = event_id(WALL + 1)
    presses.made(c, b"C", 11.0)
    presses.dropped(c)  # the outbox overflowed: forgotten
    presses.run_due(11.0, sent)
    assert b"C" not in sent
    assert presses.state(c) is None
    assert presses.judge(status(c, p.State.ORDERED)) is Verdict.UNKNOWN
