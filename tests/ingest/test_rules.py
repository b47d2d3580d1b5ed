"""The business rules, pure: no broker, no database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.domain import rules
from edgeorder.ingest.domain.devices import Device
from tests.ingest.support import press

NOW = p.utcnow()
MAPPING = p.ButtonMapping(
    single=p.ReorderAction(sku="COFFEE-1KG", quantity=2),
    double=p.ReorderAction(sku="TEA-250G"),
    sensors={"level": p.ReorderAction(sku="WATER-5L")},
)


def device(**kw: object) -> Device:
    values: dict[str, object] = {
        "device_id": "k-01",
        "enabled": True,
        "env": "prod",
        "mapping": MAPPING,
        "allow_parallel": False,
        "cancel_window_s": 300,
        "profile": {},
        "config_version": 1,
    }
    values.update(kw)
    return Device(**values)  # type: ignore[arg-type]


def decide(
    event: p.Event,
    dev: Device | None,
    *,
    in_flight: bool = False,
    last: rules.CancelTarget | None = None,
) -> rules.Decision:
    return rules.evaluate(
        event,
        dev,
        now=NOW,
        stale_after_s=3600,
        sku_in_flight=lambda sku: in_flight,
        last_order=lambda: last,
    )


def test_a_mapped_click_reorders_its_sku() -> None:
    d = decide(press("k-01", ts=NOW), device())
    assert (d.state, d.op, d.action) == (p.State.ACCEPTED, "create", MAPPING.single)
    assert decide(press("k-01", click=p.Click.DOUBLE, ts=NOW), device()).action == MAPPING.double


def test_a_sensor_crossing_uses_its_named_action() -> None:
    event = p.Event(
        event_id=press("k-01").event_id,
        device_id="k-01",
        seq=1,
        kind="sensor",
        sensor=p.SensorReading(name="level", value=0.1),
        ts=NOW,
    )
    assert decide(event, device()).action == p.ReorderAction(sku="WATER-5L")


def test_an_unmapped_click_is_accepted_and_does_nothing() -> None:
    d = decide(press("k-01", ts=NOW), device(mapping=p.ButtonMapping()))
    assert (d.state, d.op, d.reason) == (p.State.ACCEPTED, None, rules.REASON_NO_ACTION)


def test_dev_devices_place_test_orders() -> None:
    assert decide(press("k-01", ts=NOW), device(env="dev")).test is True
    assert decide(press("k-01", ts=NOW), device()).test is False


def test_in_flight_throttles_unless_the_device_allows_parallel_orders() -> None:
    d = decide(press("k-01", ts=NOW), device(), in_flight=True)
    assert (d.state, d.op) == (p.State.THROTTLED, None)
    d = decide(press("k-01", ts=NOW), device(allow_parallel=True), in_flight=True)
    assert (d.state, d.op) == (p.State.ACCEPTED, "create")


@pytest.mark.parametrize(
    ("dev", "reason"),
    [
        (None, rules.REASON_UNKNOWN_DEVICE),
        (device(enabled=False), rules.REASON_DISABLED),
    ],
)
def test_unknown_and_disabled_devices_are_rejected(dev: Device | None, reason: str) -> None:
    d = decide(press("k-01", ts=NOW), dev)
    assert (d.state, d.reason, d.op) == (p.State.REJECTED, reason, None)


def test_stale_events_are_rejected_and_the_limit_is_exact() -> None:
    old = press("k-01", ts=NOW - timedelta(seconds=3601))
    assert decide(old, device()).reason == rules.REASON_STALE
    edge = press("k-01", ts=NOW - timedelta(seconds=3600))
    assert decide(edge, device()).state is p.State.ACCEPTED


def test_a_long_press_cancels_the_last_order_only_within_the_window() -> None:
    recent = rules.CancelTarget("100", "E1", NOW - timedelta(seconds=299))
    d = decide(press("k-01", click=p.Click.LONG, ts=NOW), device(), last=recent)
    assert (d.state, d.op, d.cancel) == (p.State.ACCEPTED, "cancel", recent)
    old = rules.CancelTarget("100", "E1", NOW - timedelta(seconds=301))
    d = decide(press("k-01", click=p.Click.LONG, ts=NOW), device(), last=old)
    assert (d.state, d.reason) == (p.State.REJECTED, rules.REASON_NOTHING_TO_CANCEL)
    d = decide(press("k-01", click=p.Click.LONG, ts=NOW), device(), last=None)
    assert d.reason == rules.REASON_NOTHING_TO_CANCEL


def test_a_long_press_never_cancels_an_older_order_in_place_of_the_last() -> None:
    """The last press's order not placed yet: nothing is cancelled, the device is told to
    press again; the last order already cancelled (or being cancelled): nothing to cancel."""
    long_press = press("k-01", click=p.Click.LONG, ts=NOW)
    placing = rules.CancelTarget(None, "E2", NOW - timedelta(seconds=1), cancellable=False)
    d = decide(long_press, device(), last=placing)
    assert (d.state, d.op, d.reason) == (p.State.REJECTED, None, rules.REASON_CANCEL_TOO_EARLY)
    assert rules.CODES[rules.REASON_CANCEL_TOO_EARLY] == "cancel_too_early"
    done = rules.CancelTarget("100", "E1", NOW - timedelta(seconds=1), cancellable=False)
    d = decide(long_press, device(), last=done)
    assert (d.state, d.op, d.reason) == (p.State.REJECTED, None, rules.REASON_NOTHING_TO_CANCEL)
    stale = rules.CancelTarget(None, "E2", NOW - timedelta(seconds=301), cancellable=False)
    assert decide(long_press, device(), last=stale).reason == rules.REASON_NOTHING_TO_CANCEL


S = p.State


@pytest.mark.parametrize(
    ("current", "new", "ok"),
    [
        (S.ORDERED, S.PAID, True),
        (S.PAID, S.SHIPPED, True),
        (S.SHIPPED, S.DELIVERED, True),
        (S.ORDERED, S.SHIPPED, True),
        (S.SHIPPED, S.PAID, False),
        (S.PAID, S.ORDERED, False),
        (S.PAID, S.PAID, False),
        (S.DELIVERED, S.CANCELLED, False),
        (S.CANCELLED, S.PAID, False),
        (S.SHIPPED, S.CANCELLED, True),
        (S.ORDERED, S.FAILED, True),
        (S.FAILED, S.PAID, False),
    ],
)
def test_orders_only_move_forward(current: p.State, new: p.State, ok: bool) -> None:
    assert rules.advances(current, new) is ok


def test_the_future_is_bounded_as_the_past_is() -> None:
    ahead = timedelta(seconds=rules.DEFAULT_FUTURE_S)
    assert decide(press("k-01", ts=NOW + ahead), device()).state is p.State.ACCEPTED
    late = decide(press("k-01", ts=NOW + ahead + timedelta(seconds=1)), device())
    assert (late.state, late.reason) == (p.State.REJECTED, rules.REASON_FUTURE)
    assert rules.CODES[rules.REASON_FUTURE] == "future"
    year_9999 = press("k-01", ts=p.utcnow().replace(year=9999))
    assert decide(year_9999, device()).reason == rules.REASON_FUTURE
    year_1 = press("k-01", ts=p.utcnow().replace(year=1))
    assert decide(year_1, device()).reason == rules.REASON_STALE


@pytest.mark.parametrize("window", [10**15, 10**30])
def test_a_huge_cancel_window_is_a_long_window_not_a_crash(window: int) -> None:
    """Rows written before the registry bounded it (``timedelta(seconds=1e15)`` overflows)."""
    old = rules.CancelTarget("7", "E", NOW - timedelta(days=3000))
    d = decide(press("k-01", click=p.Click.LONG, ts=NOW), device(cancel_window_s=window), last=old)
    assert (d.state, d.op) == (p.State.ACCEPTED, "cancel")
