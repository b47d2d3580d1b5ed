"""The pure LED chooser: vocabulary of ARCHITECTURE.md, timed patterns, priorities."""

from __future__ import annotations

import pytest

from edgeorder.protocol.led import PATTERNS, LedInputs, Pattern, choose_pattern
from edgeorder.protocol.models import State
from edgeorder.protocol.reasons import NO_ACTION, NOTHING_TO_CANCEL

_NEW = {Pattern.NOTHING, Pattern.CANCELLED}


def test_press_ack_first_even_offline() -> None:
    for connected in (True, False):
        choice = choose_pattern(LedInputs(connected=connected, press_at=10.0), 10.05)
        assert choice.pattern is Pattern.PRESS_ACK
        assert choice.until is not None
        assert choice.until <= 10.0 + 0.2


def test_after_the_ack_waiting_when_online_offline_when_not() -> None:
    inputs = LedInputs(connected=True, press_at=10.0, awaiting=True)
    assert choose_pattern(inputs, 10.5).pattern is Pattern.WAITING
    offline = LedInputs(connected=False, press_at=10.0, awaiting=True)
    assert choose_pattern(offline, 10.5).pattern is Pattern.OFFLINE
    assert choose_pattern(offline, 10.5).state == "offline"


@pytest.mark.parametrize(
    ("state", "pattern", "lasts"),
    [
        (State.ACCEPTED, Pattern.ACCEPTED, 120.0),
        (State.QUEUED, Pattern.ACCEPTED, 120.0),
        (State.ORDERED, Pattern.ORDERED, 3.0),
        (State.PAID, Pattern.ORDERED, 3.0),
        (State.CANCELLED, Pattern.CANCELLED, 1.8),
        (State.THROTTLED, Pattern.THROTTLED, 0.8),
        (State.REJECTED, Pattern.ERROR, 1.2),
        (State.FAILED, Pattern.ERROR, 1.2),
    ],
)
def test_status_patterns_are_timed(state: State, pattern: Pattern, lasts: float) -> None:
    inputs = LedInputs(connected=True, status=state, status_at=100.0)
    choice = choose_pattern(inputs, 100.0)
    assert (choice.pattern, choice.state, choice.until) == (pattern, state.value, 100.0 + lasts)
    later = choose_pattern(inputs, 100.0 + lasts)
    assert (later.pattern, later.until) == (Pattern.OFF, None)


def test_shipped_and_delivered_turn_it_off() -> None:
    for state in (State.SHIPPED, State.DELIVERED):
        choice = choose_pattern(LedInputs(connected=True, status=state, status_at=1.0), 1.0)
        assert (choice.pattern, choice.state) == (Pattern.OFF, state.value)


def test_idle_and_offline() -> None:
    assert choose_pattern(LedInputs(connected=True), 0).pattern is Pattern.OFF
    assert choose_pattern(LedInputs(connected=False), 0).pattern is Pattern.OFFLINE


def test_blink_counts_match_the_vocabulary() -> None:
    assert PATTERNS[Pattern.PRESS_ACK].n == 1
    assert PATTERNS[Pattern.THROTTLED].n == 2
    assert PATTERNS[Pattern.ERROR].n == 3
    assert PATTERNS[Pattern.ORDERED].off_s == 0  # steady on
    offline = PATTERNS[Pattern.OFFLINE]
    assert offline.on_s + offline.off_s == pytest.approx(5.0)  # heartbeat every 5 s
    assert PATTERNS[Pattern.WAITING].on_s > PATTERNS[Pattern.ACCEPTED].on_s  # slow vs fast


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (State.ACCEPTED, NO_ACTION),
        (State.ACCEPTED, "recorded"),
        (State.REJECTED, NOTHING_TO_CANCEL),
    ],
)
def test_a_press_that_leads_to_nothing_shows_nothing_to_do(state: State, reason: str) -> None:
    inputs = LedInputs(connected=True, status=state, status_at=50.0, reason=reason)
    choice = choose_pattern(inputs, 50.0)
    assert (choice.pattern, choice.state, choice.until) == (Pattern.NOTHING, state.value, 51.2)
    assert choose_pattern(inputs, 51.2).pattern is Pattern.OFF


@pytest.mark.parametrize(
    ("state", "reason", "pattern"),
    [
        (State.ACCEPTED, None, Pattern.ACCEPTED),  # an order on its way: fast blink
        (State.REJECTED, "device disabled", Pattern.ERROR),  # a real refusal stays red
        (State.FAILED, NOTHING_TO_CANCEL, Pattern.ERROR),  # the reason counts only for rejected
    ],
)
def test_other_reasons_keep_their_state_pattern(
    state: State, reason: str | None, pattern: Pattern
) -> None:
    inputs = LedInputs(connected=True, status=state, status_at=0.0, reason=reason)
    assert choose_pattern(inputs, 0.0).pattern is pattern


def test_nothing_and_cancelled_look_unlike_every_other_pattern() -> None:
    looks = {(b.on_s, b.off_s, b.n) for k, b in PATTERNS.items() if k not in _NEW}
    single = {(b.on_s, b.off_s, b.n) for k, b in PATTERNS.items() if k in _NEW}
    assert not looks & single
    assert len(single) == 2
    colors = {b.color for k, b in PATTERNS.items() if k not in _NEW | {Pattern.OFF}}
    assert all(PATTERNS[k].color not in colors for k in _NEW)


def test_every_pattern_has_words_for_both_leds() -> None:
    from edgeorder.protocol.led import DESCRIPTIONS

    assert set(DESCRIPTIONS) == set(Pattern)
    assert DESCRIPTIONS[Pattern.ORDERED] == ("on", "green solid")
    assert all(single and rgb for single, rgb in DESCRIPTIONS.values())
