"""Page bodies as pure functions of query rows (``ingest.store.dashboard``) -> ``Markup``.

Regions that the live script refreshes carry ``data-region`` and a stable ``id``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from edgeorder.ingest.domain.devices import NAME_MAX_CHARS, QUANTITY_MAX
from edgeorder.ingest.store.dashboard import FleetFilter, Row, Totals
from edgeorder.ingest.web import device_facts, fleet_actions
from edgeorder.ingest.web.fleet_actions import FleetGroups
from edgeorder.ingest.web.markup import Markup, attrs, csrf_field, esc, join

__all__ = ["ago", "badge", "buffer_body", "device_body", "fleet_body", "provision_body"]

_GOOD = {"accepted", "ordered", "paid", "shipped", "delivered", "done"}
_BAD = {"rejected", "failed", "cancelled", "discarded"}


def badge(state: str | None) -> Markup:
    if not state:
        return Markup('<span class="muted">—</span>')
    cls = "good" if state in _GOOD else "bad" if state in _BAD else "warn"
    return Markup(f'<span class="badge {cls}" data-state="{esc(state)}">{esc(state)}</span>')


def ago(ts: str | None) -> Markup:
    """A timestamp as ``<time>``; the live script turns it into "12 s ago"."""
    if not ts:
        return Markup('<span class="muted">never</span>')
    return Markup(f'<time datetime="{esc(ts)}">{esc(ts[:19].replace("T", " "))}</time>')


def device_url(device_id: str) -> str:
    return "/devices/" + quote(device_id, safe="")


def _online(row: Row) -> Markup:
    if row["online"]:
        return Markup('<span class="dot on" data-online="1">online</span>')
    return Markup('<span class="dot off" data-online="0">offline</span>')


def totals_region(t: Totals) -> Markup:
    cards = (
        ("Online", f"{t.online}/{t.total}", "online"),
        ("Orders today", t.orders_today, "orders-today"),
        ("Rejected today", t.rejected_today, "rejected-today"),
        ("Buffered at ingest", t.buffered, "buffered"),
    )
    return Markup(
        '<section id="totals" data-region class="totals">'
        + join(
            Markup(
                f'<div class="card" data-total="{key}"><span class="label">{label}</span>'
                f'<span class="value">{esc(value)}</span></div>'
            )
            for label, value, key in cards
        )
        + "</section>"
    )


def _filter_form(flt: FleetFilter, groups: FleetGroups | None = None) -> Markup:
    def opt(value: str, label: str, current: str) -> Markup:
        return Markup(f'<option value="{value}"{attrs(selected=value == current)}>{label}</option>')

    online = "" if flt.online is None else ("1" if flt.online else "0")
    return Markup(
        '<form method="get" action="/" class="filters" role="search">'
        f'<input type="search" name="q" placeholder="Search id or name" value="{esc(flt.q)}">'
        f'<select name="online" aria-label="Presence">{opt("", "any presence", online)}'
        f"{opt('1', 'online', online)}{opt('0', 'offline', online)}</select>"
        f'<select name="env" aria-label="Env">{opt("", "any env", flt.env or "")}'
        f"{opt('dev', 'dev', flt.env or '')}{opt('prod', 'prod', flt.env or '')}</select>"
        f"{fleet_actions.group_filters(flt, groups) if groups else ''}"
        f'<label><input type="checkbox" name="failures" value="1"'
        f"{attrs(checked=flt.failures)}> with failures</label>"
        '<button type="submit">Filter</button></form>'
    )


def _select(row: Row, selectable: bool) -> Markup:
    return fleet_actions.select_box(row["device_id"]) if selectable else Markup("")


def _fleet_row(row: Row, selectable: bool = False) -> Markup:
    event = (
        Markup(f"{esc(row['last_trigger'])} {badge(row['last_event_state'])}")
        if row["last_event_id"]
        else Markup('<span class="muted">—</span>')
    )
    order = (
        Markup(f"#{esc(row['last_order_id'])} {badge(row['last_order_state'])}")
        if row["last_order_id"]
        else Markup('<span class="muted">—</span>')
    )
    queue = "—" if row["queue_depth"] is None else row["queue_depth"]
    return Markup(
        f'<tr id="dev-{esc(row["device_id"])}" data-device="{esc(row["device_id"])}">'
        f'<td data-label="Device">{_select(row, selectable)}'
        f'<a href="{esc(device_url(row["device_id"]))}">'
        f'{esc(row["device_id"])}</a> <small class="muted">{esc(row["name"])}</small></td>'
        f'<td data-label="Presence">{_online(row)}{_facts(row, device_facts.fleet_presence)}'
        "</td>"
        f'<td data-label="Last seen">{ago(row["last_seen"])}</td>'
        f'<td data-label="Firmware">{esc(row["fw"] or "—")}'
        f"{_facts(row, device_facts.fleet_figures)}</td>"
        f'<td data-label="Queue">{esc(queue)}</td>'
        f'<td data-label="Env"><span class="env {esc(row["env"])}">{esc(row["env"])}</span></td>'
        f'<td data-label="Enabled">{"yes" if row["enabled"] else "<b>disabled</b>"}</td>'
        f'<td data-label="Last event" class="last-event">{event}</td>'
        f'<td data-label="Last order" class="last-order">{order}</td>'
        f'<td data-label="Failures 24 h">{esc(row["failures"])}</td>'
        f"{fleet_actions.groups_cell(row) if selectable else ''}</tr>"
    )


def _facts(row: Row, render: Callable[[device_facts.Facts], Markup]) -> Markup:
    """A piece of the device's facts (``row["facts"]``, set by the page), if it has them."""
    facts = row.get("facts")
    return render(facts) if facts is not None else Markup("")


def fleet_body(
    rows: Sequence[Row],
    totals: Totals,
    chart: Markup,
    flt: FleetFilter,
    groups: FleetGroups | None = None,
    *,
    back: str = "/",
) -> Markup:
    """``groups``: with it, rows can be selected for a bulk action (``web.fleet_actions``)
    and filtered by tag and site; ``back`` is this page's URL (filters included)."""
    on = groups is not None
    table_rows = join(_fleet_row(r, on) for r in rows) or Markup(
        f'<tr><td colspan="{11 if on else 10}" class="muted">No device matches.</td></tr>'
    )
    return Markup(
        f"{totals_region(totals)}"
        f'<section id="chart" data-region>{chart}</section>'
        f"{_filter_form(flt, groups)}"
        f"{fleet_actions.bulk_form(groups, back) if groups else ''}"
        '<table class="fleet" id="fleet" data-region><thead><tr><th>Device</th><th>Presence</th>'
        "<th>Last seen</th><th>Firmware</th><th>Queue</th><th>Env</th><th>Enabled</th>"
        "<th>Last event</th><th>Last order</th><th>Failures 24 h</th>"
        f"{'<th>Groups</th>' if on else ''}</tr></thead>"
        f"<tbody>{table_rows}</tbody></table>"
    )


# --- device page ------------------------------------------------------------------------------


def _post_form(
    action: str,
    csrf: str,
    label: str,
    *,
    fields: dict[str, str] | None = None,
    confirm: str | None = None,
    cls: str = "",
    background: bool = False,
) -> Markup:
    hidden = join(
        Markup(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">')
        for k, v in (fields or {}).items()
    )
    return Markup(
        f'<form method="post" action="{esc(action)}" class="inline"'
        f"{attrs(data_confirm=confirm, data_async=background)}>{csrf_field(csrf)}{hidden}"
        f'<button type="submit"{attrs(class_=cls or None)}>{esc(label)}</button></form>'
    )


def _timeline(events: Sequence[Row]) -> Markup:
    if not events:
        return Markup('<p class="muted" id="timeline" data-region>No events yet.</p>')
    items: list[Markup] = []
    for e in events:
        steps = join(
            Markup(
                f"<li>{badge(s['state'])} <small>{ago(s['at'])} · {esc(s['source'])}"
                f"{' · ' + esc(s['reason']) if s['reason'] else ''}</small></li>"
            )
            for s in e["statuses"]
        )
        order = (
            Markup(
                f'<p class="order">order <b>#{esc(e["order_id"])}</b> {badge(e["order_state"])} '
                f"{esc(e['sku'] or '')} &times;{esc(e['quantity'] or '')}"
                f"{' <span class=env>test</span>' if e['test'] else ''}</p>"
            )
            if e["order_id"]
            else Markup("")
        )
        reason = (
            Markup(f' <small class="reason">{esc(e["reason"])}</small>')
            if e["reason"]
            else Markup("")
        )
        items.append(
            Markup(
                f'<li class="event" data-event="{esc(e["event_id"])}">'
                f"<div><b>{esc(e['trigger'])}</b> {badge(e['state'])}{reason} "
                f"<small>{ago(e['received_at'])} · seq {esc(e['seq'])} · "
                f"<code>{esc(e['event_id'])}</code></small></div>"
                f'{order}<ol class="steps">{steps}</ol></li>'
            )
        )
    return Markup(f'<ol class="timeline" id="timeline" data-region>{join(items)}</ol>')


def _action_field(name: str, action: dict[str, Any]) -> Markup:
    kind = action.get("type", "none")

    def opt(value: str) -> Markup:
        return Markup(f"<option{attrs(selected=kind == value)}>{value}</option>")

    return Markup(
        f"<fieldset><legend>{esc(name)}</legend>"
        f'<select name="{name}_type">{opt("none")}{opt("reorder")}{opt("cancel_last")}</select>'
        f'<input name="{name}_sku" placeholder="SKU" list="catalog-skus" '
        f'value="{esc(action.get("sku", ""))}" aria-label="{esc(name)} SKU">'
        f'<input name="{name}_quantity" type="number" min="1" max="{QUANTITY_MAX}" '
        f'value="{esc(action.get("quantity", 1))}" aria-label="{esc(name)} quantity">'
        "</fieldset>"
    )


def mapping_fields(mapping: dict[str, Any]) -> Markup:
    return join(
        _action_field(click, mapping.get(click, {"type": "none"}))
        for click in ("single", "double", "long")
    )


def _flash(notice: str | None) -> Markup:
    return Markup(f'<p class="flash" role="status">{esc(notice)}</p>') if notice else Markup("")


def _device_summary(dev: Row) -> Markup:
    queue = "—" if dev["queue_depth"] is None else dev["queue_depth"]
    reported = dev["config_reported"]
    last_order = "#" + esc(dev["last_order_id"]) if dev["last_order_id"] else "—"
    return Markup(
        f'<section id="summary" data-region class="card summary"><dl>'
        f"<dt>Presence</dt><dd>{_online(dev)}</dd>"
        f"{_facts(dev, device_facts.summary_rows)}"
        f"<dt>Last seen</dt><dd>{ago(dev['last_seen'])}</dd>"
        f"<dt>Firmware</dt><dd>{esc(dev['fw'] or '—')}</dd>"
        f"<dt>Queue depth</dt><dd>{esc(queue)}</dd>"
        f'<dt>Env</dt><dd><span class="env {esc(dev["env"])}">{esc(dev["env"])}</span>'
        f"{' (test orders, never charged)' if dev['env'] == 'dev' else ''}</dd>"
        f"<dt>Enabled</dt><dd>{'yes' if dev['enabled'] else '<b>disabled</b>'}</dd>"
        f"<dt>Config</dt><dd>v{esc(dev['config_version'])} desired, "
        f"{'none' if reported is None else 'v' + esc(reported)} reported</dd>"
        f"<dt>Last order</dt><dd>{last_order} {badge(dev['last_order_state'])}</dd>"
        "</dl></section>"
    )


def _device_press(url: str, csrf: str) -> Markup:
    buttons = join(
        _post_form(
            f"{url}/press", csrf, click, fields={"click": click}, cls="press-btn", background=True
        )
        for click in ("single", "double", "long")
    )
    return Markup(
        f'<section class="card"><h2>Press</h2><div class="press">{buttons}</div></section>'
    )


def _device_controls(dev: Row, url: str, csrf: str) -> Markup:
    to_prod = dev["env"] == "dev"
    return Markup(
        '<section class="card"><h2>Controls</h2><div class="controls">'
        + _post_form(
            f"{url}/enabled",
            csrf,
            "Disable" if dev["enabled"] else "Enable",
            fields={"enabled": "0" if dev["enabled"] else "1"},
        )
        + _post_form(
            f"{url}/env",
            csrf,
            "Switch to prod (real orders)" if to_prod else "Switch to dev (test orders)",
            fields={"env": "prod" if to_prod else "dev"},
            confirm="Real orders will be charged from now on." if to_prod else None,
        )
        + _post_form(
            f"{url}/rotate",
            csrf,
            "Rotate credentials",
            confirm="Rotate this device's MQTT password? The device must be "
            "re-configured with the new one.",
        )
        + "</div></section>"
    )


def _mapping_form(dev: Row, url: str, csrf: str, picker: Markup | None) -> Markup:
    """``picker``: the SKU picker (``web.sku_picker``) inside the form."""
    mapping = json.loads(dev["mapping"]) if isinstance(dev["mapping"], str) else dev["mapping"]
    return Markup(
        f'<section class="card"><h2>Button mapping</h2><form method="post" '
        f'action="{esc(url)}/mapping" class="mapping">{csrf_field(csrf)}'
        f"{mapping_fields(mapping)}{picker or ''}"
        '<button type="submit">Save and push to device</button>'
        "</form></section>"
    )


def _audit_list(audit: Sequence[Row]) -> Markup:
    items = join(
        Markup(
            f"<li>{ago(a['at'])} <b>{esc(a['actor'])}</b> {esc(a['action'])} "
            f"<small>{esc(a['detail'])}</small></li>"
        )
        for a in audit
    )
    return Markup(f'<ul class="audit" id="audit" data-region>{items}</ul>')


def device_body(
    dev: Row,
    events: Sequence[Row],
    audit: Sequence[Row],
    csrf: str,
    *,
    simulated: bool,
    secret: str | None = None,
    notice: str | None = None,
    extra: Markup | None = None,
    picker: Markup | None = None,
    telemetry: Markup | None = None,
    pager: Markup | None = None,
) -> Markup:
    """Summary, press control (simulated devices), controls, mapping (with the SKU
    ``picker``), ``extra`` (a platform's own section, e.g. e-vendi's order queue),
    ``telemetry`` (its chart), timeline with its ``pager``, audit."""
    url = device_url(dev["device_id"])
    shown = (
        Markup(
            '<div class="secret card" role="alert"><b>New MQTT password (shown once):</b> '
            f'<code id="new-password">{esc(secret)}</code></div>'
        )
        if secret
        else Markup("")
    )
    press = _device_press(url, csrf) if simulated else Markup("")
    return Markup(
        f'{_flash(notice)}{shown}<p class="muted">{esc(dev["name"])}</p>'
        f'<div class="grid">{_device_summary(dev)}{press}{_device_controls(dev, url, csrf)}'
        f"</div>{_mapping_form(dev, url, csrf, picker)}"
        f"{fleet_actions.groups_card(dev, url, csrf)}{extra or ''}{telemetry or ''}"
        f"<section><h2>Timeline</h2>{_timeline(events)}{pager or ''}</section>"
        f"<section><h2>Operator history</h2>{_audit_list(audit)}</section>"
    )


# --- buffer and provisioning ------------------------------------------------------------------


def _buffer_row(r: Row, csrf: str) -> Markup:
    return Markup(
        f'<tr data-outbox="{r["id"]}"><td data-label="Device">'
        f'<a href="{esc(device_url(r["device_id"]))}">{esc(r["device_id"])}</a></td>'
        f'<td data-label="Op">{esc(r["op"])} {esc(r["sku"] or r["target_order_id"] or "")}'
        f"{' &times;' + esc(r['quantity']) if r['quantity'] else ''}</td>"
        f'<td data-label="Attempts">{esc(r["attempts"])}</td>'
        f'<td data-label="Next attempt">{ago(r["next_attempt_at"])}</td>'
        f'<td data-label="Last error" class="error-text">{esc(r["last_error"] or "—")}</td>'
        f'<td data-label="Since">{ago(r["created_at"])}</td><td class="actions">'
        + _post_form(f"/buffer/{r['id']}/retry", csrf, "Retry now")
        + _post_form(
            f"/buffer/{r['id']}/discard",
            csrf,
            "Discard",
            cls="danger",
            confirm="Discard this order for good? No order will be made; the event fails.",
        )
        + "</td></tr>"
    )


def buffer_body(rows: Sequence[Row], csrf: str, notice: str | None = None) -> Markup:
    flash = _flash(notice)
    if not rows:
        return Markup(
            f'{flash}<p id="buffer" data-region class="muted">Nothing is waiting for '
            "the order platform.</p>"
        )
    body = join(_buffer_row(r, csrf) for r in rows)
    return Markup(
        f'{flash}<table id="buffer" data-region class="buffer"><thead><tr><th>Device</th>'
        "<th>Order</th><th>Attempts</th><th>Next attempt</th><th>Last error</th><th>Since</th>"
        f"<th></th></tr></thead><tbody>{body}</tbody></table>"
    )


def provision_body(
    csrf: str,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    picker: Markup | None = None,
) -> Markup:
    form = form or {}
    problem = Markup(f'<p class="error" role="alert">{esc(error)}</p>') if error else Markup("")
    default = {
        "single": {"type": "reorder", "sku": form.get("single_sku", ""), "quantity": 1},
        "long": {"type": "cancel_last"},
    }
    return Markup(
        f'{problem}<form method="post" action="/provision" class="card provision">'
        f"{csrf_field(csrf)}"
        '<label>Device id <input name="device_id" required pattern="[A-Za-z0-9_-]{1,64}" '
        f'value="{esc(form.get("device_id", ""))}"></label>'
        f'<label>Name <input name="name" maxlength="{NAME_MAX_CHARS}" '
        f'value="{esc(form.get("name", ""))}"></label>'
        '<label>Env <select name="env"><option value="prod">prod</option>'
        f'<option value="dev"{attrs(selected=form.get("env") == "dev")}>dev (test orders)'
        "</option></select></label>"
        f"{mapping_fields(default)}{picker or ''}"
        '<button type="submit">Add device</button></form>'
    )
