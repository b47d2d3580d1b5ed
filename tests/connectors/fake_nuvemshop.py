"""A Nuvemshop/Tiendanube order API as the seed describes it (routes, auth, statuses, errors)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.connectors.fakes import BODY, FakePlatform

STORE_ID = "817495"
TOKEN = "nuvem-secret"
VARIANT_PRICES = {101: "40.00", 202: "12.50"}
REQUIRED = (
    "gateway",
    "products",
    "customer",
    "billing_address",
    "shipping_address",
    "shipping_pickup_type",
    "shipping",
    "shipping_option",
    "shipping_cost_customer",
)


def _error(status: int, message: str, description: Any) -> web.Response:
    return web.json_response(
        {"code": status, "message": message, "description": description}, status=status
    )


@dataclass
class FakeNuvemshop(FakePlatform):
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 871310835

    async def serve(self) -> None:
        base = "/v1/{store_id}/orders"
        await self.start(
            [
                web.post(base, self.create),
                web.get(base, self.list_orders),
                web.get(base + "/{id}", self.get_one),
                web.post(base + "/{id}/cancel", self.cancel),
            ]
        )

    def _refuse(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authentication") != f"bearer {TOKEN}":
            return _error(401, "Unauthorized", "Invalid access token")
        if not request.headers.get("User-Agent", "").startswith("edgeorder"):
            return _error(400, "Bad Request", "A User-Agent header with a contact is required")
        if request.match_info["store_id"] != STORE_ID:
            return _error(404, "Not Found", "Store not found")
        return None

    async def create(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        body = request[BODY]
        missing = [k for k in REQUIRED if k not in body]
        if missing:
            return _error(422, "Unprocessable Entity", {k: ["is required"] for k in missing})
        total = 0.0
        for item in body["products"]:
            if item["variant_id"] not in VARIANT_PRICES:
                return _error(
                    422,
                    "Unprocessable Entity",
                    {"products": [f"variant {item['variant_id']} not found"]},
                )
            total += float(VARIANT_PRICES[item["variant_id"]]) * item["quantity"]
        order_id, self.next_id = self.next_id, self.next_id + 1
        self.orders[order_id] = {
            "id": order_id,
            "store_id": int(STORE_ID),
            "status": body.get("status", "open"),
            "payment_status": body.get("payment_status", "pending"),
            "shipping_status": "unpacked",
            "total": f"{total:.2f}",
            "currency": body.get("currency", "BRL"),
            "gateway": body["gateway"],
            "extra": body.get("extra", {}),
            "storefront": "api",
            "products": body["products"],
            "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "cancel_reason": None,
            "cancelled_at": None,
        }
        return web.json_response(self.orders[order_id], status=201)

    async def list_orders(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        q = request.query
        found = list(self.orders.values())
        if "channels" in q:
            found = [o for o in found if o["storefront"] == q["channels"]]
        if "created_at_min" in q:
            since = dt.datetime.fromisoformat(q["created_at_min"])
            found = [o for o in found if dt.datetime.fromisoformat(o["created_at"]) >= since]
        per_page, page = int(q.get("per_page", 30)), int(q.get("page", 1))
        chunk = found[(page - 1) * per_page : page * per_page]
        if not chunk:
            return _error(404, "Not Found", f"Last page is {len(found) // per_page}")
        if "fields" in q:
            keep = q["fields"].split(",")
            chunk = [{k: o[k] for k in keep if k in o} for o in chunk]
        return web.json_response(chunk)

    def _order(self, request: web.Request) -> dict[str, Any] | None:
        return self.orders.get(int(request.match_info["id"]))

    async def get_one(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        order = self._order(request)
        if order is None:
            return _error(404, "Not Found", "Order not found")
        return web.json_response(order)

    async def cancel(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        order = self._order(request)
        if order is None:
            return _error(404, "Not Found", "Order not found")
        if order["status"] == "cancelled":
            return _error(422, "Unprocessable Entity", "Order is already cancelled")
        body = request[BODY] or {}
        if body.get("reason") not in ("customer", "inventory", "fraud", "other"):
            return _error(422, "Unprocessable Entity", {"reason": ["is invalid"]})
        order.update(
            status="cancelled",
            cancel_reason=body["reason"],
            cancelled_at=dt.datetime.now(dt.UTC).isoformat(),
        )
        return web.json_response(order)
