"""The device page's "e-vendi orders" section: the device's queue, assign, withdraw, requeue.

Shown only when ingest talks to e-vendi (``--connector evendi``), which can only close orders
that already exist: the operator queues open e-vendi orders for the device here and each press
closes the oldest (``ingest.store.evendi_assignments``; the same as ``edgeorder evendi`` and
``/api/evendi/assignments``). Plain forms with the CSRF token; no JavaScript needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from aiohttp import web

from edgeorder.ingest.keys import SETTINGS_KEY
from edgeorder.ingest.store import evendi_assignments as book
from edgeorder.ingest.store.database import Conn
from edgeorder.ingest.web.access import identity_of
from edgeorder.ingest.web.markup import Markup, csrf_field, esc, join
from edgeorder.ingest.web.state import STORE_KEY

__all__ = ["enabled", "install", "panel", "queue_of"]

_ACTIONS = {"withdraw": ("pending", "Withdraw"), "requeue": ("failed", "Requeue")}


def enabled(app: web.Application) -> bool:
    """True when this ingest closes e-vendi orders."""
    return app[SETTINGS_KEY].connector.kind == "evendi"


def queue_of(device_id: str) -> Any:
    """A reader of the device's assignments, newest first (for ``Store.read``)."""

    def read(conn: Conn) -> list[dict[str, Any]]:
        return book.list_assignments(conn, device_id=device_id, limit=50)

    return read


def _url(device_id: str, tail: str) -> str:
    return f"/devices/{quote(device_id, safe='')}/evendi/{tail}"


def _button(device_id: str, row: dict[str, Any], csrf: str) -> Markup:
    for action, (state, label) in _ACTIONS.items():
        if row["state"] == state:
            target = _url(device_id, f"{row['id']}/{action}")
            return Markup(
                f'<form method="post" action="{esc(target)}" class="inline">'
                f'{csrf_field(csrf)}<button type="submit">{label}</button></form>'
            )
    return Markup("")


def panel(device_id: str, rows: Sequence[dict[str, Any]], csrf: str) -> Markup:
    """The section: a form to queue an order, then the queue with its actions."""
    lines = join(
        Markup(
            f'<tr data-assignment="{esc(r["id"])}"><td><code>{esc(r["order_id"])}</code></td>'
            f"<td>{esc(r['sku'] or 'any')}</td><td>{esc(r['state'])}</td>"
            f"<td>{esc(r['note'])}<small>{esc(r['last_error'] or '')}</small></td>"
            f"<td>{_button(device_id, r, csrf)}</td></tr>"
        )
        for r in rows
    )
    table = (
        Markup(
            "<table><thead><tr><th>orderId</th><th>SKU</th><th>state</th><th>note</th><th></th>"
            f"</tr></thead><tbody>{lines}</tbody></table>"
        )
        if rows
        else Markup('<p class="muted">No e-vendi order is queued: a press is rejected.</p>')
    )
    form = Markup(
        f'<form method="post" action="{esc(_url(device_id, "assign"))}" class="inline">'
        f"{csrf_field(csrf)}"
        '<label>e-vendi orderId <input name="order_id" required maxlength="200"></label> '
        '<label>SKU <input name="sku" maxlength="100" placeholder="any"></label> '
        '<label>note <input name="note" maxlength="500"></label> '
        '<button type="submit">Queue order</button></form>'
    )
    return Markup(
        '<section id="evendi"><h2>e-vendi orders</h2>'
        '<p class="muted">Each press closes the oldest pending order (closeOrder).</p>'
        f"{form}{table}</section>"
    )


async def _change(request: web.Request, fn: Any) -> web.Response:
    """Run a queue change as a job of the service's writer; back to the device page."""
    device_id = request.match_info["device_id"]
    try:
        await request.app[STORE_KEY].write(fn)
    except (book.UnknownAssignmentError, book.UnknownDeviceError) as exc:
        raise web.HTTPNotFound(text=f"{exc}\n") from exc
    except book.AssignmentError as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from exc
    raise web.HTTPSeeOther(f"/devices/{quote(device_id, safe='')}#evendi")


async def assign(request: web.Request) -> web.Response:
    device_id, form = request.match_info["device_id"], await request.post()
    order_id, sku, note = (str(form.get(k) or "") for k in ("order_id", "sku", "note"))
    actor = identity_of(request).actor
    return await _change(
        request,
        lambda conn: book.assign(
            conn, device_id, order_id, sku=sku.strip() or None, note=note.strip(), actor=actor
        ),
    )


async def move(request: web.Request) -> web.Response:
    raw, action = request.match_info["assignment_id"], request.match_info["action"]
    assignment_id = int(raw)
    device_id = request.match_info["device_id"]
    actor = identity_of(request).actor

    def run(conn: Conn) -> dict[str, Any]:
        if book.get_assignment(conn, assignment_id)["device_id"] != device_id:
            raise book.UnknownAssignmentError(f"no e-vendi assignment {assignment_id} here")
        fn = book.withdraw if action == "withdraw" else book.requeue
        return fn(conn, assignment_id, actor=actor)

    return await _change(request, run)


def install(app: web.Application) -> None:
    """The section's POST routes (CSRF checked by the access middleware)."""
    app.router.add_post("/devices/{device_id}/evendi/assign", assign)
    app.router.add_post(
        r"/devices/{device_id}/evendi/{assignment_id:\d{1,18}}/{action:withdraw|requeue}", move
    )
