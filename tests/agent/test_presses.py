"""The press book: the rank rule (never backwards), what settles a press, bounded memory."""

from __future__ import annotations

import itertools

import pytest

from edgeorder import protocol as p
from edgeorder.agent.presses import PressBook, Verdict, settles
from edgeorder.ingest.domain import rules
from edgeorder.protocol.device import DeviceStatus

E1 = "01JDZ8Q7M3N4P5R6S7T8V9W0XY"
E2 = "01JDZ8Q7M3N4P5R6S7T8V9W0XZ"


def status(state: p.State, event_id: str = E1, reason: str | None = None) -> DeviceStatus:
    return DeviceStatus(event_id, state, p.utcnow(), reason=reason)


def test_ingest_only_ever_moves_an_order_to_a_higher_rank() -> None:
    # The agent's "never backwards" rests on this: every move ingest's rules allow goes up.
    for current, new in itertools.product(p.State, repeat=2):
        if rules.advances(current, new):
            assert new.rank > current.rank, (current, new)


def test_the_lifecycle_goes_up_in_rank() -> None:
    life = [p.State.ACCEPTED, p.State.QUEUED, p.State.ORDERED, p.State.PAID, p.State.SHIPPED]
    ranks = [s.rank for s in [*life, p.State.DELIVERED]]
    assert ranks == sorted(set(ranks))
    for final in (p.State.CANCELLED, p.State.FAILED, p.State.THROTTLED, p.State.REJECTED):
        assert final.rank > p.State.DELIVERED.rank


@pytest.mark.parametrize(
    ("state", "reason", "settled"),
    [
        (p.State.ACCEPTED, None, False),
        (p.State.QUEUED, None, False),
        (p.State.ACCEPTED, "no action mapped", True),
        (p.State.ORDERED, None, True),
        (p.State.PAID, None, True),
        (p.State.DELIVERED, None, True),
        (p.State.CANCELLED, None, True),
        (p.State.THROTTLED, None, True),
        (p.State.REJECTED, "stale event", True),
        (p.State.FAILED, "out of stock", True),
    ],
)
def test_what_settles_a_press(state: p.State, reason: str | None, settled: bool) -> None:
    assert settles(status(state, reason=reason)) is settled


def test_a_status_never_moves_a_press_backwards() -> None:
    book = PressBook(keep_settled=10)
    book.made(E1)
    assert book.judge(status(p.State.ACCEPTED)) is Verdict.ADVANCE
    book.record(E1, p.State.ACCEPTED, settled=False)
    assert book.judge(status(p.State.ACCEPTED)) is Verdict.REPEAT  # asked again, answered again
    assert book.judge(status(p.State.ORDERED)) is Verdict.ADVANCE
    book.record(E1, p.State.ORDERED, settled=True)
    assert book.judge(status(p.State.ACCEPTED)) is Verdict.STALE  # a broker's old queue
    assert book.judge(status(p.State.QUEUED)) is Verdict.STALE
    assert book.judge(status(p.State.CANCELLED)) is Verdict.ADVANCE  # later pushes still count
    book.record(E1, p.State.CANCELLED, settled=True)
    assert book.judge(status(p.State.FAILED)) is Verdict.STALE  # one final state only
    assert book.state(E1) is p.State.CANCELLED


def test_statuses_of_presses_it_does_not_know_are_unknown() -> None:
    book = PressBook(keep_settled=10)
    assert book.judge(status(p.State.ORDERED, E2)) is Verdict.UNKNOWN
    unreadable = DeviceStatus(None, p.State.REJECTED, p.utcnow())
    assert book.judge(unreadable) is Verdict.UNKNOWN


def test_only_the_last_settled_presses_are_remembered() -> None:
    book = PressBook(keep_settled=2)
    ids = [f"E{i}" for i in range(4)]
    book.load([(ids[0], None, False), (ids[1], p.State.QUEUED, False)])
    for event_id in ids[2:]:
        book.made(event_id)
        book.record(event_id, p.State.ORDERED, settled=True)
    book.record(ids[0], p.State.THROTTLED, settled=True)  # the third settled: E2 goes
    assert ids[2] not in book
    assert {e for e in ids if e in book} == {ids[0], ids[1], ids[3]}
    assert not book.is_settled(ids[1])
    assert len(book) == 3
    book.forget(ids[1])
    assert ids[1] not in book
