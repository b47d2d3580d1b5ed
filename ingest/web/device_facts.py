"""The device facts of the fleet list and the device page: the LED as the device shows it,
"offline since", uptime and dropped presses (``ingest.store.device_facts`` rows, through the
pure ``ingest.domain.device_view``). Small ``Markup`` pieces the page bodies place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edgeorder.ingest.domain.device_view import (
    LedView,
    duration_text,
    led_view,
    parse_stored_ts,
)
from edgeorder.ingest.web.markup import Markup, esc

__all__ = ["Facts", "facts_of", "fleet_figures", "fleet_presence", "summary_rows"]

Row = dict[str, Any]


@dataclass(frozen=True)
class Facts:
    """What is shown of one device at ``now``."""

    online: bool | None  # None: never reported its presence
    changed_at: str | None  # when ingest received the latest presence
    for_s: float | None  # how long it has been in that presence state
    led: LedView
    uptime_s: int | None
    dropped: int | None
    heartbeat_at: str | None


def facts_of(row: Row | None, now: datetime) -> Facts:
    """``row``: the device's ``device_facts`` row (None: nothing known)."""
    row = row or {}
    online = None if row.get("online") is None else bool(row["online"])
    changed = row.get("presence_changed_at")
    for_s = None if changed is None else (now - parse_stored_ts(changed)).total_seconds()
    answered = row.get("last_event_answered", 1)
    led = led_view(
        online=bool(online),
        status=row.get("led_status"),
        confirmed_at=row.get("led_status_at"),
        awaiting_since=None if answered else row.get("last_event_at"),
        now=now,
        reason=row.get("led_reason"),
    )
    return Facts(
        online,
        changed,
        for_s,
        led,
        row.get("uptime_s"),
        row.get("dropped"),
        row.get("telemetry_at"),
    )


def _stamp(ts: str) -> Markup:
    """An absolute UTC time (not turned into "ago": the duration beside it says that)."""
    return Markup(f'<span class="ts" title="{esc(ts)}">{esc(ts[:19].replace("T", " "))} UTC</span>')


def _ago(ts: str) -> Markup:
    return Markup(f'<time datetime="{esc(ts)}">{esc(ts[:19].replace("T", " "))}</time>')


def offline_since(f: Facts) -> Markup:
    """``Offline since 2026-12-01 16:12:03 UTC (for 3 h 2 min)``, or nothing when online."""
    if f.online is not False or f.changed_at is None:
        return Markup("")
    return Markup(
        f'<span class="offline-since" data-offline-since="{esc(f.changed_at)}">Offline since '
        f"{_stamp(f.changed_at)} (for {esc(duration_text(f.for_s or 0))})</span>"
    )


def led_text(f: Facts) -> Markup:
    """``green solid (single LED: on) (ordered, 2 s ago)``, or why it is unknown."""
    led = f.led
    if led.pattern is None:
        if f.online is None:
            return Markup('<span class="muted">unknown: the device never reported</span>')
        since = _stamp(f.changed_at) if f.changed_at else Markup("")
        return Markup(f'<span class="muted">unknown since the device went offline {since}</span>')
    single = (
        Markup(f" <small>(single LED: {esc(led.single)})</small>")
        if led.single != led.rgb
        else Markup("")
    )
    when = Markup(f", {_ago(led.since)}") if led.since else Markup("")
    return Markup(
        f'<span class="led-dot {esc(led.pattern.value)}" aria-hidden="true"></span>'
        f"{esc(led.rgb)}{single} ({esc(led.cause)}{when})"
    )


def fleet_presence(f: Facts) -> Markup:
    """Beside the fleet row's presence: the LED indicator and "offline since"."""
    if f.led.pattern is None:
        dot = Markup('<span class="led-dot unknown" title="LED: unknown" data-led=""></span>')
    else:
        title = f"LED: {f.led.rgb} ({f.led.cause})"
        dot = Markup(
            f'<span class="led-dot {esc(f.led.pattern.value)}" title="{esc(title)}" '
            f'data-led="{esc(f.led.pattern.value)}"></span>'
        )
    since = offline_since(f)
    return Markup(f" {dot}" + (f"<br><small>{since}</small>" if since else ""))


def fleet_figures(f: Facts) -> Markup:
    """Beside the fleet row's firmware: uptime and dropped presses of the latest heartbeat."""
    parts = []
    if f.uptime_s is not None:
        parts.append(f'<span class="uptime">up {esc(duration_text(f.uptime_s))}</span>')
    if f.dropped:
        parts.append(f'<span class="dropped bad-text">{esc(f.dropped)} dropped</span>')
    return Markup("<br><small>" + " · ".join(parts) + "</small>") if parts else Markup("")


def summary_rows(f: Facts) -> Markup:
    """``<dt>/<dd>`` pairs for the device page's summary."""
    presence = (
        offline_since(f)
        if f.online is False
        else Markup(f"online since {_stamp(f.changed_at)} (for {esc(duration_text(f.for_s or 0))})")
        if f.online and f.changed_at
        else Markup('<span class="muted">never reported</span>')
    )
    uptime = (
        Markup(
            f'<span class="uptime">{esc(duration_text(f.uptime_s))}</span> '
            f"<small>(heartbeat {_ago(f.heartbeat_at or '')})</small>"
        )
        if f.uptime_s is not None
        else Markup('<span class="muted">no heartbeat yet</span>')
    )
    dropped = "—" if f.dropped is None else f.dropped
    return Markup(
        f'<dt>Since</dt><dd id="presence-since">{presence}</dd>'
        f'<dt>LED</dt><dd id="led" data-led="{esc(f.led.pattern or "")}">{led_text(f)}</dd>'
        f"<dt>Uptime</dt><dd>{uptime}</dd>"
        f'<dt>Dropped presses</dt><dd id="dropped">{esc(dropped)}</dd>'
    )
