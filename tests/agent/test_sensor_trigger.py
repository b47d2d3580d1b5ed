"""Sensor trigger with a fake clock: one event per crossing, hysteresis, minimum dwell."""

from __future__ import annotations

from collections.abc import Sequence

from edgeorder.agent.sensor_trigger import SensorTrigger, TriggerSettings


def feed(trigger: SensorTrigger, readings: Sequence[tuple[float, float]]) -> list[float]:
    """Times at which the trigger fired."""
    return [t for t, v in readings if trigger.reading(v, t)]


def test_one_event_per_downward_crossing() -> None:
    trig = SensorTrigger(TriggerSettings(threshold=10, hysteresis=2))
    readings = [(0, 20.0), (1, 15.0), (2, 9.0), (3, 8.0), (4, 5.0), (5, 3.0)]
    assert feed(trig, readings) == [2]


def test_noise_around_threshold_gives_no_extra_events() -> None:
    trig = SensorTrigger(TriggerSettings(threshold=10, hysteresis=2))
    noisy = [9.9, 10.1, 9.8, 10.5, 11.9, 9.5, 11.0, 10.0, 9.0]
    assert feed(trig, [(float(i), v) for i, v in enumerate(noisy)]) == [0.0]


def test_refill_rearms() -> None:
    trig = SensorTrigger(TriggerSettings(threshold=10, hysteresis=2))
    readings = [(0, 9.0), (1, 15.0), (2, 9.0)]  # low, refilled past 12, low again
    assert feed(trig, readings) == [0, 2]


def test_refill_below_hysteresis_does_not_rearm() -> None:
    trig = SensorTrigger(TriggerSettings(threshold=10, hysteresis=2))
    assert feed(trig, [(0, 9.0), (1, 11.9), (2, 9.0)]) == [0]


def test_min_dwell_ignores_short_dips() -> None:
    trig = SensorTrigger(TriggerSettings(threshold=10, min_dwell_s=5))
    readings = [(0, 9.0), (3, 9.0), (4, 11.0), (5, 9.0), (9, 9.0), (10, 9.0), (11, 8.0)]
    assert feed(trig, readings) == [10]


def test_min_dwell_applies_to_rearming() -> None:
    trig = SensorTrigger(TriggerSettings(threshold=10, hysteresis=1, min_dwell_s=2))
    readings = [(0, 9.0), (2, 9.0), (3, 12.0), (4, 9.0), (5, 9.0), (7, 9.0)]
    # fired at 2; the refill at 3 lasted under 2 s, so 4..7 is not a new crossing
    assert feed(trig, readings) == [2]


def test_above_direction_mirrors() -> None:
    trig = SensorTrigger(TriggerSettings(threshold=0.3, hysteresis=0.05, direction="above"))
    readings = [(0, 0.1), (1, 0.31), (2, 0.29), (3, 0.33), (4, 0.2), (5, 0.4)]
    assert feed(trig, readings) == [1, 5]
