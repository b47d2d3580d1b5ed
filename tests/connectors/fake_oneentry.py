"""OneEntry's order storage over HTTP, as strict as its createOrder seed
(``shared/seeds/oneentry-createOrder.md``), plus the SDK methods the connector relies on.

From the seed (createOrder), enforced:

- ``formIdentifier`` and ``paymentAccountIdentifier``: required strings, and they must be
  linked to the storage; ``formData``: required, one ``{marker, value, type}`` object or a list
  of them, each field a string; ``products``: required non-empty list of ``{productId,
  quantity}`` numbers (integers here: a product id, a count; ``"1"`` or ``true`` is refused);
- a body attribute the seed does not list is refused (a typo in a connector must show);
- ``langCode`` is optional (``en_US`` when absent);
- 🔐 "requires authorization": a user's ``Authorization: Bearer`` access token, which expires
  (``expire_user_tokens()``); the project's ``x-app-token`` too;
- the answer has the seed's response schema (``IBaseOrdersEntity``).

From the SDK documentation the connector also uses (not in the seed): the list
(``getAllOrdersByMarker``: ``{items, total}``; "by default you can retrieve 10 objects", and
in an order nobody documents: ``page_cap`` and ``order`` model both), read and update one
order, and the auth provider's ``auth``/``refresh`` (tokens rotate on refresh). The seed shows
no error body; errors here use the platform's NestJS shape ``{statusCode, message, error}``.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.connectors.fakes import BODY, FakePlatform

APP_TOKEN = "oneentry-app-token"
USER_TOKEN = "user-access-token"
REFRESH_TOKEN = "user-refresh-token"
LOGIN, PASSWORD = "buyer@example.com", "s3cret-pass"
MARKER = "order_storage_1"
PRICES = {1: 100, 2: 150, 2957: 150}
CREATE_FIELDS = frozenset({"formIdentifier", "paymentAccountIdentifier", "formData", "products"})
UPDATE_FIELDS = CREATE_FIELDS | {"statusIdentifier"}
_PHRASES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}

Order = Literal["newest", "shuffled"]


def _error(status: int, message: str) -> web.Response:
    body = {"statusCode": status, "message": message, "error": _PHRASES.get(status, "Error")}
    return web.json_response(body, status=status)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _form_problem(form: Any) -> str | None:
    fields = form if isinstance(form, list) else [form]
    if not fields:
        return "formData must not be empty"
    for item in fields:
        if not isinstance(item, dict) or set(item) != {"marker", "value", "type"}:
            return "formData items are {marker, value, type}"
        if not all(isinstance(item[k], str) for k in ("marker", "value", "type")):
            return "formData marker, value and type are strings"
    return None


def _products_problem(products: Any) -> str | None:
    if not isinstance(products, list) or not products:
        return "products must be a non-empty array"
    for item in products:
        if not isinstance(item, dict) or set(item) != {"productId", "quantity"}:
            return "products items are {productId, quantity}"
        if not _is_int(item["productId"]) or not _is_int(item["quantity"]):
            return "productId and quantity must be numbers"
        if item["quantity"] < 1:
            return "quantity must be at least 1"
        if item["productId"] not in PRICES:
            return f"product {item['productId']} not found"
    return None


@dataclass
class FakeOneEntry(FakePlatform):
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    forms: set[str] = field(default_factory=lambda: {"bar-orders-form", "orderForm"})
    accounts: set[str] = field(default_factory=lambda: {"usd-payment", "cash"})
    next_id: int = 233
    page_cap: int = 10
    """Most orders one list page returns, whatever ``limit`` asks (the module's default)."""
    order: Order = "newest"
    """How a list is ordered: newest first, or reshuffled at every request."""
    rng: random.Random = field(default_factory=lambda: random.Random(1234))
    access_tokens: set[str] = field(default_factory=lambda: {USER_TOKEN})
    refresh_tokens: set[str] = field(default_factory=lambda: {REFRESH_TOKEN})
    renewals: list[str] = field(default_factory=list)
    hidden: int = 0
    """Orders counted in ``total`` that the list never shows (another user's, say)."""

    async def serve(self) -> None:
        base = "/api/content/orders-storage/marker/{marker}/orders"
        auth = "/api/content/users-auth-providers/marker/{provider}/users"
        await self.start(
            [
                web.post(base, self.create),
                web.get(base, self.list_orders),
                web.get(base + "/{id}", self.get_one),
                web.put(base + "/{id}", self.update),
                web.post(auth + "/refresh", self.refresh),
                web.post(auth + "/auth", self.sign_in),
            ]
        )

    def expire_user_tokens(self) -> None:
        """Every user access token in use expires (refresh tokens stay good)."""
        self.access_tokens.clear()

    def add_order(self, form_data: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """An order someone else made (to fill the storage)."""
        order_id, self.next_id = self.next_id, self.next_id + 1
        self.orders[order_id] = self._entity(
            order_id,
            {
                "formIdentifier": "bar-orders-form",
                "paymentAccountIdentifier": "cash",
                "formData": form_data or [{"marker": "name_1", "value": "x", "type": "string"}],
                "products": [{"productId": 2957, "quantity": 1}],
            },
        )
        return self.orders[order_id]

    # --- checks ------------------------------------------------------------------------------

    def _refuse(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-app-token") != APP_TOKEN:
            return _error(401, "Invalid app token")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.access_tokens:
            return _error(401, "Unauthorized: user authorization required or token expired")
        if request.match_info["marker"] != MARKER:
            return _error(404, "Order storage not found")
        return None

    def _check(self, body: Any, allowed: frozenset[str]) -> web.Response | None:
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        if missing := sorted(CREATE_FIELDS - set(body)):
            return _error(400, f"{', '.join(missing)} required")
        if unknown := sorted(set(body) - allowed):
            return _error(400, f"property {', '.join(unknown)} should not exist")
        for name in ("formIdentifier", "paymentAccountIdentifier"):
            if not isinstance(body[name], str) or not body[name]:
                return _error(400, f"{name} must be a non-empty string")
        if body["formIdentifier"] not in self.forms:
            return _error(400, f"form {body['formIdentifier']} is not linked to the storage")
        if body["paymentAccountIdentifier"] not in self.accounts:
            return _error(400, f"payment account {body['paymentAccountIdentifier']} not found")
        problem = _form_problem(body["formData"]) or _products_problem(body["products"])
        return _error(400, problem) if problem else None

    def _entity(self, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """The seed's response schema (IBaseOrdersEntity) for ``body``."""
        form = body["formData"]
        products = [
            {
                "id": p["productId"],
                "title": "Cosmo",
                "sku": None,
                "previewImage": None,
                "price": PRICES[p["productId"]],
                "quantity": p["quantity"],
            }
            for p in body["products"]
        ]
        return {
            "id": order_id,
            "formIdentifier": body["formIdentifier"],
            "paymentAccountIdentifier": body["paymentAccountIdentifier"],
            "formData": form if isinstance(form, list) else [form],
            "products": products,
            "currency": "",
            "totalSum": sum(p["price"] * p["quantity"] for p in products),
            "createdDate": dt.datetime.now(dt.UTC).isoformat(),
            "statusIdentifier": body.get("statusIdentifier", "inProgress"),
        }

    # --- orders ------------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        body = request[BODY]
        if (refused := self._refuse(request) or self._check(body, CREATE_FIELDS)) is not None:
            return refused
        order_id, self.next_id = self.next_id, self.next_id + 1
        self.orders[order_id] = self._entity(order_id, body)
        return web.json_response(self.orders[order_id], status=201)

    async def list_orders(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        try:
            offset = int(request.query.get("offset", "0"))
            limit = int(request.query.get("limit", "30"))
        except ValueError:
            return _error(400, "offset and limit must be numbers")
        if offset < 0 or limit < 0:
            return _error(400, "offset and limit must not be negative")
        listed = sorted(self.orders.values(), key=lambda o: -int(o["id"]))
        if self.order == "shuffled":
            self.rng.shuffle(listed)
        page = listed[offset : offset + min(limit, self.page_cap)]
        return web.json_response({"items": page, "total": len(listed) + self.hidden})

    async def get_one(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        order = self.orders.get(int(request.match_info["id"]))
        return web.json_response(order) if order else _error(404, "Order not found")

    async def update(self, request: web.Request) -> web.Response:
        body = request[BODY]
        if (refused := self._refuse(request) or self._check(body, UPDATE_FIELDS)) is not None:
            return refused
        order = self.orders.get(int(request.match_info["id"]))
        if order is None:
            return _error(404, "Order not found")
        order["statusIdentifier"] = body.get("statusIdentifier", order["statusIdentifier"])
        return web.json_response(order)

    # --- the auth provider -------------------------------------------------------------------

    def _tokens(self, via: str) -> web.Response:
        access, refresh = secrets.token_hex(8), secrets.token_hex(8)
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        self.renewals.append(via)
        return web.json_response(
            {
                "userIdentifier": LOGIN,
                "authProviderIdentifier": "email",
                "accessToken": access,
                "refreshToken": refresh,
            }
        )

    async def refresh(self, request: web.Request) -> web.Response:
        if request.headers.get("x-app-token") != APP_TOKEN:
            return _error(401, "Invalid app token")
        body = request[BODY]
        token = body.get("refreshToken") if isinstance(body, dict) else None
        if token not in self.refresh_tokens:
            return _error(401, "Invalid refresh token")
        self.refresh_tokens.discard(token)  # refresh tokens rotate
        return self._tokens("refresh")

    async def sign_in(self, request: web.Request) -> web.Response:
        if request.headers.get("x-app-token") != APP_TOKEN:
            return _error(401, "Invalid app token")
        body = request[BODY]
        data = body.get("authData") if isinstance(body, dict) else None
        pairs = {d.get("marker"): d.get("value") for d in data or [] if isinstance(d, dict)}
        if pairs.get("login") != LOGIN or pairs.get("password") != PASSWORD:
            return _error(401, "Wrong login or password")
        return self._tokens("auth")
