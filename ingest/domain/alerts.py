"""Which alerts should be open right now: a pure function of the facts the service gathered.

``evaluate(facts, limits)`` answers the *desired* set -- one ``Condition`` per (kind, device)
that is wrong at ``facts.now`` -- and ``reconcile(open_alerts, desired, now, hold_s)`` turns it
into the changes to make (open, refresh the detail, start or stop the clear hold, clear). The
store applies them with conditional SQL (``ingest.store.alerts``); nothing here reads a clock.

Lifecycle (as ThingsBoard's alarms): ``active`` -> ``acknowledged`` (an operator) -> ``cleared``
(the condition has been gone for ``hold_s``); a cleared alert stays cleared: the condition
coming back opens a new alert. The hold is the flapping guard: a condition that comes and goes
faster than it keeps one alert open, and one message per transition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "AlertKind",
    "AlertState",
    "Change",
    "Condition",
    "DeviceFacts",
    "Facts",
    "Key",
    "Limits",
    "OpenAlert",
    "evaluate",
    "reconcile",
    "severity",
]


class AlertKind(StrEnum):
    DEVICE_OFFLINE = "device_offline"
    PLATFORM_UNREACHABLE = "platform_unreachable"
    BUFFER_AGE = "buffer_age"
    ORDERS_FAILING = "orders_failing"
    QUEUE_DEPTH = "queue_depth"
    PRESSES_DROPPED = "presses_dropped"
    CONFIG_NOT_REPORTED = "config_not_reported"


class AlertState(StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


_SEVERITY = {
    AlertKind.PLATFORM_UNREACHABLE: 0,
    AlertKind.BUFFER_AGE: 1,
    AlertKind.ORDERS_FAILING: 2,
    AlertKind.DEVICE_OFFLINE: 3,
    AlertKind.PRESSES_DROPPED: 4,
    AlertKind.QUEUE_DEPTH: 5,
    AlertKind.CONFIG_NOT_REPORTED: 6,
}


def severity(kind: str) -> int:
    """Lower is worse: the banner shows the worst alerts first (orders lost or stuck first)."""
    return _SEVERITY.get(kind, 9)  # type: ignore[call-overload]


Key = tuple[str, str]
"""(kind, subject): the subject is the device id, or '' for a fleet-wide alert."""


@dataclass(frozen=True)
class Limits:
    """The thresholds (ingest settings ``alert_*``)."""

    offline_s: float = 300.0
    buffer_age_s: float = 300.0
    failure_window_s: float = 600.0
    failure_count: int = 3
    failure_ratio: float = 0.5
    queue_depth: int = 100
    dropped: int = 1
    config_grace_s: float = 600.0


@dataclass(frozen=True)
class DeviceFacts:
    """What the store knows of one enabled device."""

    device_id: str
    added_at: datetime
    online: bool | None = None
    """None: the device never reported its presence."""
    presence_at: datetime | None = None
    """When ingest received the last presence report (an offline one: offline since then)."""
    first_seen_at: datetime | None = None
    queue_depth: int | None = None
    dropped: int | None = None
    telemetry_at: datetime | None = None
    config_reported: bool = False
    events: int = 0
    """Events received within the failure window."""
    failures: int = 0
    """Of those, the ones that ended ``failed`` or ``rejected``."""
    last_failure: str | None = None
    first_failure_at: datetime | None = None


@dataclass(frozen=True)
class Facts:
    now: datetime
    platform_reachable: bool
    platform_detail: str
    platform_down_since: datetime | None
    oldest_pending: datetime | None
    pending: int
    devices: tuple[DeviceFacts, ...] = ()


@dataclass(frozen=True)
class Condition:
    kind: AlertKind
    device_id: str | None
    since: datetime
    detail: str

    @property
    def key(self) -> Key:
        return (self.kind.value, self.device_id or "")


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def evaluate(facts: Facts, limits: Limits) -> dict[Key, Condition]:
    """The alerts that should be open at ``facts.now``, by key."""
    found: list[Condition] = []
    if not facts.platform_reachable:
        since = facts.platform_down_since or facts.now
        found.append(Condition(AlertKind.PLATFORM_UNREACHABLE, None, since, facts.platform_detail))
    if facts.oldest_pending is not None:
        age = (facts.now - facts.oldest_pending).total_seconds()
        if age > limits.buffer_age_s:
            detail = (
                f"oldest of {facts.pending} buffered order(s) waits for {age:.0f} s "
                f"(limit {limits.buffer_age_s:g} s), buffered at {_ts(facts.oldest_pending)}"
            )
            found.append(Condition(AlertKind.BUFFER_AGE, None, facts.oldest_pending, detail))
    for device in facts.devices:
        found.extend(_device(device, facts.now, limits))
    return {c.key: c for c in found}


def _device(d: DeviceFacts, now: datetime, limits: Limits) -> Iterable[Condition]:
    offline_at = d.presence_at if d.online is False else None
    if offline_at is not None and (now - offline_at).total_seconds() > limits.offline_s:
        yield Condition(
            AlertKind.DEVICE_OFFLINE,
            d.device_id,
            offline_at,
            f"offline since {_ts(offline_at)} (limit {limits.offline_s:g} s)",
        )
    failing = _failing(d, now, limits)
    if failing is not None:
        yield failing
    if d.queue_depth is not None and d.queue_depth >= limits.queue_depth:
        yield Condition(
            AlertKind.QUEUE_DEPTH,
            d.device_id,
            d.telemetry_at or now,
            f"{d.queue_depth} event(s) waiting in the device's outbox (limit {limits.queue_depth})",
        )
    if d.dropped is not None and d.dropped >= limits.dropped:
        yield Condition(
            AlertKind.PRESSES_DROPPED,
            d.device_id,
            d.telemetry_at or now,
            f"the device dropped {d.dropped} press(es) from its full outbox "
            f"(limit {limits.dropped})",
        )
    if not d.config_reported:
        start = d.first_seen_at or d.added_at
        if (now - start).total_seconds() > limits.config_grace_s:
            seen = "first seen" if d.first_seen_at else "added"
            yield Condition(
                AlertKind.CONFIG_NOT_REPORTED,
                d.device_id,
                start,
                f"no config version reported since it was {seen} at {_ts(start)} "
                f"(grace {limits.config_grace_s:g} s)",
            )


def _failing(d: DeviceFacts, now: datetime, limits: Limits) -> Condition | None:
    if d.failures < limits.failure_count or d.events <= 0:
        return None
    ratio = d.failures / max(d.events, d.failures)
    if ratio < limits.failure_ratio:
        return None
    window = limits.failure_window_s
    reason = f"; last: {d.last_failure}" if d.last_failure else ""
    return Condition(
        AlertKind.ORDERS_FAILING,
        d.device_id,
        d.first_failure_at or now,
        f"{d.failures} of {max(d.events, d.failures)} event(s) failed or were rejected in the "
        f"last {window:g} s{reason}",
    )


# --- reconciling the desired set with the open alerts ---------------------------------------


@dataclass(frozen=True)
class OpenAlert:
    """An alert that is not cleared, as stored."""

    id: int
    kind: str
    subject: str
    detail: str
    ok_since: datetime | None

    @property
    def key(self) -> Key:
        return (self.kind, self.subject)


@dataclass(frozen=True)
class Change:
    """One thing to do: ``open`` (``condition``), ``detail`` (``alert_id``, ``condition``),
    ``hold`` (the condition is gone: start the clear hold), ``resume`` (it is back: stop the
    hold), ``clear`` (``alert_id``)."""

    op: str
    alert_id: int | None = None
    condition: Condition | None = None


def reconcile(
    open_alerts: Iterable[OpenAlert],
    desired: Mapping[Key, Condition],
    now: datetime,
    hold_s: float,
) -> list[Change]:
    """The changes that make the open alerts match ``desired``, in a fixed order (by key)."""
    current = {a.key: a for a in open_alerts}
    changes: list[Change] = []
    for key in sorted(set(current) | set(desired)):
        alert, want = current.get(key), desired.get(key)
        if alert is None and want is not None:
            changes.append(Change("open", condition=want))
        elif alert is not None and want is not None:
            if alert.ok_since is not None:
                changes.append(Change("resume", alert.id))
            if alert.detail != want.detail:
                changes.append(Change("detail", alert.id, want))
        elif alert is not None:
            if alert.ok_since is None:
                changes.append(Change("hold", alert.id))
            if hold_s <= 0 or (
                alert.ok_since is not None and now - alert.ok_since >= timedelta(seconds=hold_s)
            ):
                changes.append(Change("clear", alert.id))
    return changes
