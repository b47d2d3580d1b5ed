"""e-vendi's closeOrder exactly as its seed (``shared/seeds/evendi-closeOrder.md``) shows it.

What the seed documents, and so what this fake enforces:

- ``POST /api/closeOrder`` only: any other method answers ``405``;
- a ``Content-Type`` other than ``application/json`` answers ``415``;
- a body that is not a JSON object, or lacks one of the four required (``*``) attributes, or
  has one that is not a non-empty string, answers ``400``;
- ``env`` is one of what the seed shows: ``Dev`` and ``Prod`` (its table) or ``dev`` (its
  example); anything else (``prod``, ``DEV``, ``staging``) answers ``400``;
- ``200`` carries ``success``: ``{"success": true}`` (the table's boolean), or the text
  ``success`` (the example) when ``text_answers`` is set.

The seed documents no body for its errors, so errors come without one. What it leaves open is
decided here, conservatively, and said so: unknown credentials answer ``400`` (the only
refusal it lists); an unknown order, or one already closed, answers ``{"success": false}``
(closing twice is not assumed to succeed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.connectors.fakes import BODY, FakePlatform, form_error

TOKEN = "evendi-integration-token"
ORG = "1001"
ATTRIBUTES = ("env", "integrationToken", "organizationExternalId", "orderId")
SEED_ENVS = frozenset({"Dev", "Prod", "dev"})


@dataclass
class FakeEvendi(FakePlatform):
    open_orders: set[str] = field(default_factory=lambda: {"PED-7", "PED-8", "PED-9"})
    closed: dict[str, str] = field(default_factory=dict)
    """orderId -> the env it was closed in."""
    closes: list[str] = field(default_factory=list)
    """orderId of every successful close, in order (a double close would show twice)."""
    token: str = TOKEN
    org: str = ORG
    text_answers: bool = False

    async def serve(self) -> None:
        await self.start([web.route("*", "/api/closeOrder", self.close_order)])

    def _invalid(self, request: web.Request) -> web.Response | None:
        if request.method != "POST":
            return form_error(405)
        if request.content_type != "application/json":
            return form_error(415)
        body: Any = request[BODY]
        if not isinstance(body, dict):
            return form_error(400)
        for name in ATTRIBUTES:
            if not isinstance(body.get(name), str) or not body[name]:
                return form_error(400)
        if body["env"] not in SEED_ENVS:
            return form_error(400)
        if body["integrationToken"] != self.token or body["organizationExternalId"] != self.org:
            return form_error(400)
        return None

    async def close_order(self, request: web.Request) -> web.Response:
        if (invalid := self._invalid(request)) is not None:
            return invalid
        body = request[BODY]
        order_id = body["orderId"]
        if order_id not in self.open_orders:
            return web.json_response({"success": False})
        self.open_orders.discard(order_id)
        self.closed[order_id] = body["env"]
        self.closes.append(order_id)
        if self.text_answers:
            return web.Response(text="success")
        return web.json_response({"success": True})
