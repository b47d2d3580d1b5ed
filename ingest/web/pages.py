"""The dashboard's read-only pages (GET) and the installer of every dashboard route."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from edgeorder.ingest.keys import SIMULATOR_KEY
from edgeorder.ingest.store import dashboard as queries
from edgeorder.ingest.store import groups
from edgeorder.ingest.store.database import Conn
from edgeorder.ingest.store.device_facts import device_facts
from edgeorder.ingest.store.history import EventsPage, events_page
from edgeorder.ingest.store.telemetry_history import samples
from edgeorder.ingest.web import alerts_view, evendi_panel, provisioning, sku_picker, views
from edgeorder.ingest.web.access import identity_of
from edgeorder.ingest.web.chart import hourly_chart
from edgeorder.ingest.web.device_facts import facts_of
from edgeorder.ingest.web.device_history import (
    chart_window,
    fleet_exports,
    history_nav,
    page_query,
    telemetry_section,
)
from edgeorder.ingest.web.fleet_actions import FleetGroups
from edgeorder.ingest.web.markup import Markup, html_response, layout
from edgeorder.ingest.web.state import STORE_KEY
from edgeorder.protocol import utcnow

__all__ = ["install_pages", "page", "simulated_ids"]


def page(
    request: web.Request,
    title: str,
    body: Markup,
    *,
    active: str = "",
    status: int = 200,
    device: str | None = None,
) -> web.Response:
    """``body`` inside the layout, for the logged-in operator."""
    who = identity_of(request)
    html = layout(
        title,
        body,
        user=who.name,
        csrf=who.csrf_token,
        active=active,
        live="1",
        device=device,
        banner=alerts_view.banner_of(request),
    )
    return html_response(html, status=status)


def simulated_ids(app: web.Application) -> set[str]:
    simulator = app.get(SIMULATOR_KEY)
    return set() if simulator is None else simulator.simulated_devices()


def _filter(request: web.Request) -> queries.FleetFilter:
    q = request.query
    online = {"1": True, "0": False}.get(q.get("online", ""))
    env = q.get("env") if q.get("env") in ("dev", "prod") else None
    return queries.FleetFilter(
        q=q.get("q", "")[:100],
        online=online,
        env=env,
        failures=q.get("failures") == "1",
        tag=q.get("tag", "")[:64] or None,
        site=q.get("site", "")[:64] or None,
    )


async def fleet(request: web.Request) -> web.Response:
    flt = _filter(request)

    def read(
        conn: Conn,
    ) -> tuple[list[queries.Row], queries.Totals, list[tuple[str, int, int]], FleetGroups]:
        return (
            queries.fleet_rows(conn, flt),
            queries.fleet_totals(conn),
            queries.hourly_counts(conn),
            FleetGroups(csrf, groups.all_tags(conn), groups.all_sites(conn)),
        )

    csrf = identity_of(request).csrf_token or ""
    rows, totals, counts, in_use = await request.app[STORE_KEY].read(read)
    facts = await request.app[STORE_KEY].read(device_facts)
    now = utcnow()
    for row in rows:
        row["facts"] = facts_of(facts.get(row["device_id"]), now)
    body = views.fleet_body(rows, totals, hourly_chart(counts), flt, in_use, back=request.path_qs)
    return page(request, "Fleet", Markup(body + fleet_exports()), active="fleet")


async def device_page(
    request: web.Request, *, secret: str | None = None, notice: str | None = None, status: int = 200
) -> web.Response:
    """The device page; ``secret`` shows a freshly rotated password once."""
    device_id = request.match_info["device_id"]
    q, window, now = page_query(request.query), chart_window(request.query), utcnow()

    def read(
        conn: Conn,
    ) -> tuple[queries.Row | None, EventsPage, list[queries.Row], list[queries.Row], Any]:
        return (
            queries.device_detail(conn, device_id),
            events_page(conn, device_id, before=q.before, after=q.after, limit=q.limit),
            queries.audit_rows(conn, device_id),
            samples(conn, device_id, window, now),
            device_facts(conn, device_id),
        )

    dev, history, audit, heartbeats, facts = await request.app[STORE_KEY].read(read)
    if dev is None:
        raise web.HTTPNotFound(text=f"unknown device {device_id!r}\n")
    dev["facts"] = facts_of(facts.get(device_id), now)
    csrf = identity_of(request).csrf_token or ""
    extra = None
    if evendi_panel.enabled(request.app):
        queue = await request.app[STORE_KEY].read(evendi_panel.queue_of(device_id))
        extra = evendi_panel.panel(device_id, queue, csrf)
    body = views.device_body(
        dev,
        history.events,
        audit,
        csrf,
        simulated=device_id in simulated_ids(request.app),
        secret=secret,
        notice=notice,
        extra=extra,
        picker=await sku_picker.picker_of(request),
        telemetry=telemetry_section(device_id, heartbeats, window, now),
        pager=history_nav(device_id, history, q, window),
    )
    # Enable, disable and rotate happen here: say when Mosquitto has not been told yet.
    broker = provisioning.broker_notice(await provisioning.load_broker_view(request))
    return page(
        request,
        f"Device {device_id}",
        Markup(broker + body),
        active="fleet",
        status=status,
        device=device_id,
    )


async def device_get(request: web.Request) -> web.Response:
    return await device_page(request)


async def buffer_get(request: web.Request) -> web.Response:
    """Pending orders; ``?retry=ID`` / ``?discard=ID`` confirm the action just taken."""
    rows = await request.app[STORE_KEY].read(queries.buffer_rows)
    csrf = identity_of(request).csrf_token or ""
    notice = None
    if request.query.get("retry", "").isdigit():
        notice = f"Order #{request.query['retry']} will be retried now."
    elif request.query.get("discard", "").isdigit():
        notice = f"Order #{request.query['discard']} was discarded."
    return page(request, "Buffer", views.buffer_body(rows, csrf, notice), active="buffer")


async def provision_get(request: web.Request) -> web.Response:
    csrf = identity_of(request).csrf_token or ""
    broker = provisioning.broker_card(await provisioning.load_broker_view(request))
    picker = await sku_picker.picker_of(request)
    body = Markup(broker + views.provision_body(csrf, picker=picker))
    return page(request, "Provisioning", body, active="provision")


def install_pages(app: web.Application) -> None:
    """Every dashboard route except login/logout and static files."""
    from edgeorder.ingest.web import actions, live  # the action modules import this one

    app.router.add_get("/", fleet, name="fleet")
    app.router.add_get("/devices/{device_id}", device_get, name="device")
    app.router.add_get("/buffer", buffer_get, name="buffer")
    app.router.add_get("/provision", provision_get, name="provision")
    app.router.add_get("/live", live.stream, name="live")
    actions.install(app)
    alerts_view.install(app)
    evendi_panel.install(app)
