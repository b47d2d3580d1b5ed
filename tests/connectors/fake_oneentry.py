"""OneEntry's order storage over HTTP: createOrder, read one, list, update (statusIdentifier)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.connectors.fakes import BODY, FakePlatform

APP_TOKEN = "oneentry-app-token"
USER_TOKEN = "user-access-token"
MARKER = "order_storage_1"
PRICES = {2957: 150}
REQUIRED = ("formIdentifier", "paymentAccountIdentifier", "formData", "products")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"statusCode": status, "message": message}, status=status)


@dataclass
class FakeOneEntry(FakePlatform):
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    forms: set[str] = field(default_factory=lambda: {"bar-orders-form"})
    accounts: set[str] = field(default_factory=lambda: {"usd-payment", "cash"})
    next_id: int = 233

    async def serve(self) -> None:
        base = "/api/content/orders-storage/marker/{marker}/orders"
        await self.start(
            [
                web.post(base, self.create),
                web.get(base, self.list_orders),
                web.get(base + "/{id}", self.get_one),
                web.put(base + "/{id}", self.update),
            ]
        )

    def _refuse(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-app-token") != APP_TOKEN:
            return _error(401, "Invalid app token")
        if request.headers.get("Authorization") != f"Bearer {USER_TOKEN}":
            return _error(401, "Unauthorized: user authorization required")
        if request.match_info["marker"] != MARKER:
            return _error(404, "Order storage not found")
        if "langCode" not in request.query:
            return _error(400, "langCode is required")
        return None

    def _check(self, body: Any) -> web.Response | None:
        if not isinstance(body, dict) or any(k not in body for k in REQUIRED):
            return _error(
                400, "formIdentifier, paymentAccountIdentifier, formData, products are required"
            )
        if body["formIdentifier"] not in self.forms:
            return _error(400, f"form {body['formIdentifier']} is not linked to the storage")
        if body["paymentAccountIdentifier"] not in self.accounts:
            return _error(400, f"payment account {body['paymentAccountIdentifier']} not found")
        for p in body["products"]:
            if p["productId"] not in PRICES:
                return _error(400, f"product {p['productId']} not found")
        return None

    async def create(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request) or self._check(request[BODY])) is not None:
            return refused
        body = request[BODY]
        order_id, self.next_id = self.next_id, self.next_id + 1
        self.orders[order_id] = {
            "id": order_id,
            "formIdentifier": body["formIdentifier"],
            "paymentAccountIdentifier": body["paymentAccountIdentifier"],
            "formData": body["formData"],
            "products": [
                {
                    "id": p["productId"],
                    "title": "Cosmo",
                    "sku": None,
                    "price": PRICES[p["productId"]],
                    "quantity": p["quantity"],
                }
                for p in body["products"]
            ],
            "currency": "USD",
            "totalSum": sum(PRICES[p["productId"]] * p["quantity"] for p in body["products"]),
            "createdDate": dt.datetime.now(dt.UTC).isoformat(),
            "statusIdentifier": "inProgress",
        }
        return web.json_response(self.orders[order_id], status=201)

    async def list_orders(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        offset = int(request.query.get("offset", 0))
        limit = int(request.query.get("limit", 30))
        newest = sorted(self.orders.values(), key=lambda o: -int(o["id"]))
        return web.json_response({"items": newest[offset : offset + limit], "total": len(newest)})

    async def get_one(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        order = self.orders.get(int(request.match_info["id"]))
        return web.json_response(order) if order else _error(404, "Order not found")

    async def update(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request) or self._check(request[BODY])) is not None:
            return refused
        order = self.orders.get(int(request.match_info["id"]))
        if order is None:
            return _error(404, "Order not found")
        order["statusIdentifier"] = request[BODY].get("statusIdentifier")
        return web.json_response(order)
