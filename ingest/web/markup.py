"""Tiny HTML building blocks: every dynamic value goes through ``esc`` (or ``Markup``).

No template engine: pages are small functions that return ``Markup``; the layout wraps them.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from aiohttp import web

__all__ = [
    "SECURITY_HEADERS",
    "Markup",
    "attrs",
    "csrf_field",
    "esc",
    "html_response",
    "join",
    "layout",
]


class Markup(str):
    """A string that is already safe HTML (never escaped again)."""


def esc(value: object) -> Markup:
    """``value`` as HTML text; ``Markup`` passes through, None becomes an empty string."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[object], sep: str = "") -> Markup:
    return Markup(sep.join(esc(part) for part in parts))


def attrs(**values: object) -> Markup:
    """`` name="value"`` pairs; ``True`` gives a bare attribute, None/False is left out."""
    out: list[str] = []
    for name, value in values.items():
        name = name.rstrip("_").replace("_", "-")
        if value is None or value is False:
            continue
        out.append(f" {name}" if value is True else f' {name}="{esc(value)}"')
    return Markup("".join(out))


def csrf_field(token: str) -> Markup:
    return Markup(f'<input type="hidden" name="csrf_token" value="{esc(token)}">')


_NAV = (
    ("/", "Fleet", "fleet"),
    ("/buffer", "Buffer", "buffer"),
    ("/provision", "Provisioning", "provision"),
    ("/alerts", "Alerts", "alerts"),
)


def layout(
    title: str,
    body: Markup,
    *,
    user: str | None,
    csrf: str | None,
    active: str = "",
    live: str = "",
    device: str | None = None,
    banner: Markup | None = None,
) -> Markup:
    """The whole page: header with navigation and logout, the alert banner, then ``body``.

    ``live`` turns on the live script's refreshes (``data-live`` on ``<body>``); ``device``
    limits them to notices about that device.
    """
    nav = (
        join(
            Markup(
                f'<a href="{href}"{attrs(aria_current="page" if key == active else None)}>'
                f"{label}</a>"
            )
            for href, label, key in _NAV
        )
        if user
        else Markup("")
    )
    logout = (
        Markup(
            f'<form method="post" action="/logout" class="logout">{csrf_field(csrf)}'
            f'<button type="submit">Log out {esc(user)}</button></form>'
        )
        if user and csrf
        else Markup("")
    )
    return Markup(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · edgeorder</title>"
        '<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/app.css">'
        '<script src="/static/live.js" defer></script></head>'
        f"<body{attrs(data_live=live or None, data_csrf=csrf, data_device=device)}>"
        f'<header><strong class="brand">edgeorder</strong><nav>{nav}</nav>{logout}</header>'
        f"<main>{banner or ''}<h1>{esc(title)}</h1>{body}</main></body></html>"
    )


SECURITY_HEADERS = {
    # Everything is served from here: no inline script, no foreign origin, no framing.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def html_response(page: Markup, *, status: int = 200) -> web.Response:
    """A dashboard page with the security headers every page carries."""
    return web.Response(
        text=page, content_type="text/html", status=status, headers=SECURITY_HEADERS
    )
