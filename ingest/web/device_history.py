"""The device page's history parts: paging links under the timeline (keyset cursors of
``ingest.store.history``), the CSV export links, and the telemetry chart section."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from edgeorder.ingest.domain.telemetry_series import series
from edgeorder.ingest.store.history import EventsPage
from edgeorder.ingest.store.telemetry_history import WINDOWS, ChartWindow
from edgeorder.ingest.web.chart import series_chart
from edgeorder.ingest.web.markup import Markup, attrs, esc, join

__all__ = [
    "PAGE_DEFAULT",
    "PAGE_MAX",
    "PageQuery",
    "chart_window",
    "fleet_exports",
    "history_nav",
    "page_query",
    "telemetry_section",
]

PAGE_DEFAULT = 50
PAGE_MAX = 200


class PageQuery:
    """``?before=ID`` / ``?after=ID`` / ``?limit=N`` of the device page (bad values: ignored)."""

    def __init__(self, before: int | None, after: int | None, limit: int) -> None:
        self.before, self.after, self.limit = before, after, limit


def _positive(text: str | None) -> int | None:
    if text is None or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if value >= 1 else None


def page_query(query: Mapping[str, str]) -> PageQuery:
    limit = _positive(query.get("limit"))
    return PageQuery(
        _positive(query.get("before")),
        _positive(query.get("after")),
        PAGE_DEFAULT if limit is None else min(limit, PAGE_MAX),
    )


def chart_window(query: Mapping[str, str]) -> ChartWindow:
    return WINDOWS.get(query.get("window", ""), WINDOWS["24h"])


def _link(base: str, params: dict[str, Any], label: str, rel: str) -> Markup:
    href = base + ("?" + urlencode(params) if params else "")
    return Markup(f'<a href="{esc(href)}" rel="{rel}" class="page-link {rel}">{esc(label)}</a>')


def history_nav(device_id: str, page: EventsPage, q: PageQuery, window: ChartWindow) -> Markup:
    """ "Newer" / "Older" links (keeping the page size and the chart window), and the CSV
    exports of this device's events and orders."""
    base = "/devices/" + quote(device_id, safe="")
    keep: dict[str, Any] = {}
    if q.limit != PAGE_DEFAULT:
        keep["limit"] = q.limit
    if window.key != "24h":
        keep["window"] = window.key
    links = []
    if q.before is not None or q.after is not None:
        links.append(_link(base, keep, "Newest", "first"))
    if page.newer is not None:
        links.append(_link(base, {"after": page.newer, **keep}, "← Newer", "prev"))
    if page.older is not None:
        links.append(_link(base, {"before": page.older, **keep}, "Older →", "next"))
    device = quote(device_id, safe="")
    exports = Markup(
        f'<a href="/api/events.csv?device={device}" download>events (CSV)</a> · '
        f'<a href="/api/orders.csv?device={device}" download>orders (CSV)</a>'
    )
    return Markup(
        f'<nav class="pager" id="pager" data-region aria-label="Timeline pages">'
        f'{join(links, " ")}<span class="exports">Download all: {exports}</span></nav>'
    )


def fleet_exports() -> Markup:
    """The fleet page's links to every device's events and orders as CSV."""
    return Markup(
        '<p class="exports" id="exports">Download: <a href="/api/events.csv" download>'
        'all events (CSV)</a> · <a href="/api/orders.csv" download>all orders (CSV)</a> '
        "<small>(<code>?device=ID&amp;from=DATE&amp;to=DATE</code> narrows them)</small></p>"
    )


def _window_links(device_id: str, current: ChartWindow) -> Markup:
    base = "/devices/" + quote(device_id, safe="")
    return join(
        (
            Markup(
                f'<a href="{esc(base)}?window={w.key}#telemetry"'
                f"{attrs(aria_current='true' if w.key == current.key else None)}>{w.key}</a>"
            )
            for w in WINDOWS.values()
        ),
        " · ",
    )


def telemetry_section(
    device_id: str, rows: list[dict[str, Any]], window: ChartWindow, now: datetime
) -> Markup:
    """A chart per series of the device's heartbeats in ``window`` (its readings first)."""
    end = now.timestamp()
    start = end - window.seconds
    period = window.label.split(",")[0]
    drawn = series(rows)
    varying = {k: v for k, v in drawn.items() if len({value for _, value in v}) > 1}
    steady = [(k, v[0][1]) for k, v in drawn.items() if k not in varying]
    charts = join(
        series_chart(name, points, start, end, window.label) for name, points in varying.items()
    )
    if steady:  # a line says it better than a flat chart (and keeps the page short)
        values = join((Markup(f"<b>{esc(k)}</b> {esc(f'{v:.6g}')}") for k, v in steady), ", ")
        charts = Markup(
            f'{charts}<p class="steady" id="steady-series">{values} throughout the '
            f"{esc(period)} ({len(rows)} heartbeat{'s' if len(rows) != 1 else ''}).</p>"
        )
    body = charts or Markup(f'<p class="muted">No heartbeat in the {esc(period)}.</p>')
    return Markup(
        f'<section class="card" id="telemetry"><h2>Telemetry</h2>'
        f'<p class="windows">Window: {_window_links(device_id, window)}</p>'
        f'<div id="telemetry-charts" data-region>{body}</div></section>'
    )
