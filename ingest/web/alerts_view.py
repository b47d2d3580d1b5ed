"""The alert banner of every dashboard page and the Alerts page (``GET /alerts``,
``POST /alerts/{id}/acknowledge``). Bodies are pure functions of alert rows."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import structlog
from aiohttp import web

from edgeorder.ingest.domain.alerts import severity
from edgeorder.ingest.keys import ALERTS_KEY
from edgeorder.ingest.store import alerts as store
from edgeorder.ingest.web.access import identity_of, see_other
from edgeorder.ingest.web.markup import Markup, csrf_field, esc, join
from edgeorder.ingest.web.state import STORE_KEY

__all__ = ["alerts_body", "banner", "banner_of", "install"]

log = structlog.get_logger("edgeorder.ingest.web.alerts")
BANNER_SHOWN = 3
"""Alerts named in the banner; the rest are counted."""
Alert = dict[str, Any]


def _what(alert: Alert) -> Markup:
    device = f" {alert['device_id']}" if alert.get("device_id") else ""
    return Markup(
        f'<b class="alert-kind">{esc(alert["kind"])}{esc(device)}</b> '
        f'<span class="alert-detail">{esc(alert["detail"])}</span>'
    )


def banner(open_alerts: Sequence[Alert]) -> Markup:
    """The banner region: the active (unacknowledged) alerts, worst first; empty without
    any, but present, so the live refresh can fill it."""
    active = sorted(
        (a for a in open_alerts if a["state"] == "active"),
        key=lambda a: (severity(a["kind"]), a["opened_at"]),
    )
    if not active:
        return Markup('<div id="alert-banner" data-region></div>')
    shown = join(Markup(f"<li>{_what(a)}</li>") for a in active[:BANNER_SHOWN])
    more = len(active) - BANNER_SHOWN
    rest = Markup(f"<li>… and {more} more</li>") if more > 0 else Markup("")
    return Markup(
        f'<div id="alert-banner" data-region class="alert-banner" role="alert" '
        f'data-count="{len(active)}"><strong>{len(active)} active alert'
        f"{'s' if len(active) != 1 else ''}</strong><ul>{shown}{rest}</ul>"
        '<a href="/alerts">Open the Alerts page</a></div>'
    )


def banner_of(request: web.Request) -> Markup:
    """The banner for this app's open alerts (kept by the evaluator: no read per page)."""
    service = request.app.get(ALERTS_KEY)
    return banner(service.open if service is not None else [])


def _row(alert: Alert, csrf: str) -> Markup:
    action = Markup("")
    if alert["state"] == "active":
        action = Markup(
            f'<form method="post" action="/alerts/{int(alert["id"])}/acknowledge">'
            f'{csrf_field(csrf)}<button type="submit">Acknowledge</button></form>'
        )
    elif alert["state"] == "acknowledged":
        action = Markup(
            f"<small>by {esc(alert['acknowledged_by'])} "
            f'<time datetime="{esc(alert["acknowledged_at"])}">'
            f"{esc(alert['acknowledged_at'])}</time></small>"
        )
    cleared = (
        Markup(f'<time datetime="{esc(alert["cleared_at"])}">{esc(alert["cleared_at"])}</time>')
        if alert.get("cleared_at")
        else Markup("")
    )
    return Markup(
        f'<tr data-alert="{int(alert["id"])}" data-kind="{esc(alert["kind"])}" '
        f'data-state="{esc(alert["state"])}"><td>{esc(alert["kind"])}</td>'
        f"<td>{esc(alert.get('device_id') or '—')}</td><td>{esc(alert['detail'])}</td>"
        f'<td><time datetime="{esc(alert["since"])}">{esc(alert["since"])}</time></td>'
        f"<td>{esc(alert['state'])} {cleared}</td><td>{action}</td></tr>"
    )


def _table(title: str, key: str, rows: Sequence[Alert], csrf: str) -> Markup:
    if not rows:
        return Markup(f'<h2>{esc(title)}</h2><p class="muted" data-empty="{key}">None.</p>')
    body = join(_row(a, csrf) for a in rows)
    return Markup(
        f'<h2>{esc(title)}</h2><table class="alerts" data-list="{key}"><thead><tr>'
        "<th>Kind</th><th>Device</th><th>Detail</th><th>Since</th><th>State</th><th></th>"
        f"</tr></thead><tbody>{body}</tbody></table>"
    )


def alerts_body(rows: Sequence[Alert], csrf: str, notice: str | None = None) -> Markup:
    flash = Markup(f'<p class="flash" role="status">{esc(notice)}</p>') if notice else Markup("")
    by_state = {
        s: [a for a in rows if a["state"] == s] for s in ("active", "acknowledged", "cleared")
    }
    return Markup(
        f'{flash}<section id="alerts" data-region>'
        f"{_table('Active', 'active', by_state['active'], csrf)}"
        f"{_table('Acknowledged', 'acknowledged', by_state['acknowledged'], csrf)}"
        f"{_table('Recently cleared', 'cleared', by_state['cleared'], csrf)}</section>"
    )


async def alerts_get(request: web.Request) -> web.Response:
    from edgeorder.ingest.web.pages import page  # pages installs this module's routes

    rows = await request.app[STORE_KEY].read(partial(store.list_alerts, limit=200))
    csrf = identity_of(request).csrf_token or ""
    notice = None
    if request.query.get("acknowledged", "").isdigit():
        notice = f"Alert {request.query['acknowledged']} acknowledged."
    return page(request, "Alerts", alerts_body(rows, csrf, notice), active="alerts")


async def acknowledge_post(request: web.Request) -> web.Response:
    alert_id = int(request.match_info["alert_id"])
    service = request.app.get(ALERTS_KEY)
    if service is None or alert_id > 2**63 - 1:
        raise web.HTTPNotFound(text=f"no alert {alert_id}\n")
    try:
        await service.acknowledge(alert_id, identity_of(request).actor)
    except store.AlertNotFoundError as exc:
        raise web.HTTPNotFound(text=f"{exc}\n") from exc
    except store.AlertNotActiveError as exc:
        log.info("alert_ack_refused", alert_id=alert_id, reason=str(exc))
        raise web.HTTPConflict(text=f"{exc}\n") from exc
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response({"ok": True, "id": alert_id})
    return see_other(f"/alerts?acknowledged={alert_id}")


def install(app: web.Application) -> None:
    app.router.add_get("/alerts", alerts_get, name="alerts")
    app.router.add_post(r"/alerts/{alert_id:\d{1,19}}/acknowledge", acknowledge_post)
