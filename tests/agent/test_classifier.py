"""Click classifier with a fake clock: times are plain seconds passed in."""

from __future__ import annotations

from edgeorder.agent.classifier import ClickClassifier, ClickTimings
from edgeorder.protocol.models import Click

T = ClickTimings(bounce_s=0.02, double_window_s=0.4, long_press_s=1.5)


def run(edges: list[tuple[str, float]], end: float) -> list[Click]:
    """Feed (``down``/``up``, time) edges, ticking at every deadline up to ``end``."""
    c = ClickClassifier(T)
    out: list[Click] = []
    for kind, at in edges:
        while (due := c.deadline()) is not None and due <= at:
            out += c.tick(due)
        out += c.pressed(at) if kind == "down" else c.released(at)
    while (due := c.deadline()) is not None and due <= end:
        out += c.tick(due)
    assert not c.busy or end < 10, "gesture left undecided"
    return out


def test_single_is_decided_after_the_double_window() -> None:
    c = ClickClassifier(T)
    assert c.pressed(0.0) == []
    assert c.released(0.1) == []
    assert c.tick(0.49) == []
    assert c.deadline() == 0.5
    assert c.tick(0.5) == [Click.SINGLE]
    assert not c.busy


def test_double_within_window() -> None:
    assert run([("down", 0), ("up", 0.1), ("down", 0.3), ("up", 0.4)], 10) == [Click.DOUBLE]


def test_two_presses_outside_window_are_two_singles() -> None:
    edges = [("down", 0), ("up", 0.1), ("down", 0.6), ("up", 0.7)]
    assert run(edges, 10) == [Click.SINGLE, Click.SINGLE]


def test_long_fires_while_held_and_never_also_single() -> None:
    c = ClickClassifier(T)
    c.pressed(0.0)
    assert c.tick(1.49) == []
    assert c.tick(1.5) == [Click.LONG]
    assert c.released(3.0) == []
    assert c.tick(10.0) == []
    assert not c.busy


def test_long_with_release_bounce_stays_one_long() -> None:
    edges = [("down", 0), ("up", 2.0), ("down", 2.005), ("up", 2.01)]
    assert run(edges, 10) == [Click.LONG]


def test_bounce_never_makes_a_double() -> None:
    # contacts chatter on press and on release: still one single
    edges = [
        ("down", 0),
        ("up", 0.003),
        ("down", 0.008),
        ("up", 0.12),
        ("down", 0.125),
        ("up", 0.13),
    ]
    assert run(edges, 10) == [Click.SINGLE]


def test_bounce_on_a_double_is_still_one_double() -> None:
    edges = [
        ("down", 0),
        ("up", 0.1),
        ("down", 0.105),
        ("up", 0.11),
        ("down", 0.3),
        ("up", 0.4),
        ("down", 0.41),
        ("up", 0.415),
    ]
    assert run(edges, 10) == [Click.DOUBLE]


def test_short_hold_is_not_long() -> None:
    assert run([("down", 0), ("up", 1.49)], 10) == [Click.SINGLE]


def test_timings_can_change_between_gestures() -> None:
    c = ClickClassifier(T)
    c.timings = ClickTimings(0.02, 0.2, 0.5)
    c.pressed(0.0)
    assert c.tick(0.5) == [Click.LONG]
