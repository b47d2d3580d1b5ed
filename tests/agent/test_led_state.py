"""The LED's pure state: which statuses concern it, and the chosen pattern over time."""

from __future__ import annotations

from edgeorder.agent.led_state import RECENT_EVENTS, LedState
from edgeorder.protocol.led import ORDERED_S, PRESS_ACK_S, Pattern
from edgeorder.protocol.models import State


def test_a_press_then_its_event_then_its_status() -> None:
    led = LedState()
    led.link(connected=True)
    assert led.choose(0.0).pattern is Pattern.OFF
    led.pressed(1.0)
    assert led.choose(1.0).pattern is Pattern.PRESS_ACK
    led.made("E1")
    assert led.choose(1.0 + PRESS_ACK_S).pattern is Pattern.WAITING
    assert led.status_for("E1", State.ORDERED, 2.0)
    choice = led.choose(2.0)
    assert (choice.pattern, choice.state, led.until) == (
        Pattern.ORDERED,
        "ordered",
        2.0 + ORDERED_S,
    )
    assert led.choose(2.0 + ORDERED_S).pattern is Pattern.OFF  # timed out


def test_a_status_for_an_older_event_does_not_end_the_wait_for_the_newest() -> None:
    led = LedState()
    led.link(connected=True)
    led.made("E1")
    led.made("E2")
    assert led.status_for("E1", State.THROTTLED, 5.0)
    assert led.awaiting_id == "E2"
    assert led.choose(5.0).pattern is Pattern.WAITING


def test_statuses_of_events_past_the_recent_window_leave_the_led_alone() -> None:
    led = LedState()
    led.link(connected=True)
    for n in range(RECENT_EVENTS + 1):
        led.made(f"E{n}")
    assert not led.is_recent("E0")
    assert not led.status_for("E0", State.FAILED, 1.0)
    assert led.status is None
    assert led.status_for(f"E{RECENT_EVENTS}", State.ACCEPTED, 1.0)


def test_offline_wins_over_a_status() -> None:
    led = LedState()
    led.made("E1")
    led.status_for("E1", State.ORDERED, 0.0)
    assert led.choose(0.0).pattern is Pattern.OFFLINE
    led.link(connected=True)
    assert led.choose(0.0).pattern is Pattern.ORDERED
