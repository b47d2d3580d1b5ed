"""The alert rules and the reconciliation, pure: facts in, desired alerts and changes out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from edgeorder.ingest.alerting.notifier import plan, retry_delay
from edgeorder.ingest.domain.alerts import (
    AlertKind,
    Condition,
    DeviceFacts,
    Facts,
    Limits,
    OpenAlert,
    evaluate,
    reconcile,
    severity,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits(offline_s=60, buffer_age_s=120, failure_count=2, failure_ratio=0.5)


def facts(*devices: DeviceFacts, **kw: object) -> Facts:
    values: dict[str, object] = {
        "now": NOW,
        "platform_reachable": True,
        "platform_detail": "the platform answers",
        "platform_down_since": None,
        "oldest_pending": None,
        "pending": 0,
        "devices": devices,
    }
    values.update(kw)
    return Facts(**values)  # type: ignore[arg-type]


def device(device_id: str = "k-01", **kw: object) -> DeviceFacts:
    values: dict[str, object] = {
        "device_id": device_id,
        "added_at": NOW - timedelta(hours=1),
        "online": True,
        "presence_at": NOW - timedelta(hours=1),
        "config_reported": True,
    }
    values.update(kw)
    return DeviceFacts(**values)  # type: ignore[arg-type]


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_a_healthy_fleet_raises_nothing() -> None:
    assert evaluate(facts(device(), device("k-02")), LIMITS) == {}


def test_offline_longer_than_the_threshold_says_since_when() -> None:
    found = evaluate(facts(device(online=False, presence_at=ago(61))), LIMITS)
    alert = found[("device_offline", "k-01")]
    assert alert.since == ago(61)
    assert alert.detail.startswith("offline since 2026-12-01T11:58:59Z")
    assert evaluate(facts(device(online=False, presence_at=ago(59))), LIMITS) == {}


def test_platform_unreachable_is_fleet_wide_and_keeps_its_start() -> None:
    found = evaluate(
        facts(platform_reachable=False, platform_detail="refused", platform_down_since=ago(5)),
        LIMITS,
    )
    alert = found[("platform_unreachable", "")]
    assert (alert.device_id, alert.since, alert.detail) == (None, ago(5), "refused")


def test_buffer_age_over_the_threshold() -> None:
    assert evaluate(facts(oldest_pending=ago(100), pending=3), LIMITS) == {}
    found = evaluate(facts(oldest_pending=ago(121), pending=3), LIMITS)
    assert "oldest of 3 buffered order(s) waits for 121 s" in found[("buffer_age", "")].detail


def test_failing_needs_both_the_count_and_the_ratio() -> None:
    one = device(events=1, failures=1, last_failure="failed: unknown sku")
    assert evaluate(facts(one), LIMITS) == {}
    diluted = device(events=5, failures=2)
    assert evaluate(facts(diluted), LIMITS) == {}
    failing = device(events=3, failures=2, last_failure="failed: unknown sku NOPE")
    alert = evaluate(facts(failing), LIMITS)[("orders_failing", "k-01")]
    assert alert.detail.endswith("last: failed: unknown sku NOPE")


def test_queue_depth_dropped_and_config_never_reported() -> None:
    d = device(queue_depth=100, dropped=1, telemetry_at=ago(3), config_reported=False)
    found = evaluate(facts(d), LIMITS)
    assert set(found) == {
        ("queue_depth", "k-01"),
        ("presses_dropped", "k-01"),
        ("config_not_reported", "k-01"),
    }
    assert found[("queue_depth", "k-01")].since == ago(3)
    fresh = device(added_at=ago(10), config_reported=False)
    assert evaluate(facts(fresh), LIMITS) == {}


def test_severity_orders_platform_first() -> None:
    kinds = sorted(AlertKind, key=severity)
    assert kinds[0] is AlertKind.PLATFORM_UNREACHABLE
    assert severity("not-a-kind") == 9


def cond(kind: AlertKind = AlertKind.DEVICE_OFFLINE, detail: str = "x") -> Condition:
    return Condition(kind, "k-01", ago(100), detail)


def test_reconcile_opens_refreshes_holds_and_clears_after_the_hold() -> None:
    want = {cond().key: cond()}
    assert [c.op for c in reconcile([], want, NOW, 30)] == ["open"]
    current = OpenAlert(1, "device_offline", "k-01", "old", None)
    assert [c.op for c in reconcile([current], want, NOW, 30)] == ["detail"]
    assert [c.op for c in reconcile([current], {}, NOW, 30)] == ["hold"]
    held = OpenAlert(1, "device_offline", "k-01", "x", ago(29))
    assert reconcile([held], {}, NOW, 30) == []
    assert [c.op for c in reconcile([held], want, NOW, 30)] == ["resume"]
    old = OpenAlert(1, "device_offline", "k-01", "x", ago(30))
    assert [(c.op, c.alert_id) for c in reconcile([old], {}, NOW, 30)] == [("clear", 1)]
    assert [c.op for c in reconcile([current], {}, NOW, 0)] == ["hold", "clear"]


@given(
    st.sets(st.sampled_from(list(AlertKind)), max_size=7),
    st.sets(st.sampled_from(list(AlertKind)), max_size=7),
)
def test_reconcile_opens_exactly_the_missing_and_never_twice(
    open_kinds: set[AlertKind], wanted: set[AlertKind]
) -> None:
    current = [OpenAlert(i, k.value, "k-01", "x", None) for i, k in enumerate(sorted(open_kinds))]
    desired = {cond(k).key: cond(k) for k in wanted}
    changes = reconcile(current, desired, NOW, 0)
    opened = {c.condition.kind for c in changes if c.op == "open" and c.condition}
    cleared = {c.alert_id for c in changes if c.op == "clear"}
    assert opened == wanted - open_kinds
    assert cleared == {a.id for a in current if AlertKind(a.kind) not in wanted}
    assert not [c for c in changes if c.op == "detail"]


@given(st.integers(0, 200), st.integers(-5, 50))
def test_the_cap_sends_at_most_the_budget_and_summarises_the_rest(due: int, budget: int) -> None:
    single, summary = plan(due, budget)
    messages = single + (1 if summary else 0)
    assert messages <= max(budget, 0)
    if budget > 0:
        assert single + (due - single if summary else 0) == due  # nothing dropped
    else:
        assert (single, summary) == (0, False)


def test_retry_delay_doubles_up_to_ten_minutes() -> None:
    assert [retry_delay(n, 5) for n in (1, 2, 3)] == [5, 10, 20]
    assert retry_delay(30, 5) == 600
