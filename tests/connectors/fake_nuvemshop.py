"""A Nuvemshop/Tiendanube order API as strict as its seed (``shared/seeds/nuvemshop-order-api.md``,
the order page) and the API's introduction and webhook page, which that page leaves auth,
errors, pagination and webhooks to (``tiendanube/api-docs``: ``README.md``,
``resources/webhook.md``).

Enforced, as documented:

- every call: ``Authentication: bearer <token>``; a ``User-Agent`` naming the app with a
  contact (an e-mail or a URL), else ``400``; a POST/PUT body needs ``Content-Type:
  application/json`` (``415``) and must parse (``400 {"error": "Problems parsing JSON"}``);
- ``POST /orders``: the seed's table, field by field. Required ("Sim"/"Yes"): ``gateway``,
  ``products``, ``customer``, ``billing_address``, ``shipping_address``,
  ``shipping_pickup_type``, ``shipping``, ``shipping_option``, ``shipping_cost_customer``;
  every enumerated field takes only the seed's values (gateway, payment_status, status,
  shipping_pickup_type, shipping, inventory_behaviour); ``customer`` needs ``name`` and an
  ``email`` that is one; an address needs ``first_name``, ``last_name``, ``address``,
  ``number``, ``city``, ``province``, ``zipcode`` and an ISO 3166-1 ``country``; a product is
  ``{variant_id: Integer, quantity: Integer, price?: Double}``; ``currency`` ISO 4217,
  ``language`` ISO 639-1, ``total`` positive; an attribute the seed does not list is refused
  (``extra`` is allowed: the seed's properties say it "can be set via API"). Invalid fields
  answer ``422`` in the documented shape ``{"field": ["why"]}``;
- ``GET /orders``: ``page``/``per_page`` (30 by default, at most 200), ``channels``,
  ``created_at_min``, ``app_id``, ``fields``; ``Link`` (``rel="next"``/``"last"``) and
  ``X-Total-Count`` headers;
- ``POST /orders/{id}/cancel``: ``reason`` among the seed's four, ``email``/``restock``
  booleans (default true);
- webhooks: ``POST/GET/DELETE /webhooks`` with ``url`` (https only, no localhost) and an order
  ``event``; ``deliver()`` POSTs ``{store_id, event, id}`` signed ``X-Linkedstore-HMAC-SHA256``
  (hex HMAC-SHA256 of the body with the app's secret).

Not documented, so taken from the platform's observed answers and said so: the ``{code,
message, description}`` body of 401/404, and ``404 "Last page is N"`` past the last page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from tests.connectors.fakes import BODY, RAW, FakePlatform

STORE_ID = "817495"
TOKEN = "nuvem-secret"
APP_SECRET = "app-client-secret"
APP_ID = 2181
VARIANT_PRICES = {101: "40.00", 202: "12.50", 426215948: "6000.00"}

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
OPTIONAL = (
    "currency",
    "language",
    "payment_status",
    "status",
    "fulfillment",
    "total",
    "inventory_behaviour",
    "note",
    "shipping_tracking_number",
    "shipping_cost_owner",
    "send_confirmation_email",
    "send_fulfillment_email",
    "location_id",
    "extra",
)
ENUMS = {
    "gateway": {"offline", "mercadopago", "pagseguro", "payu", "not-provided"},
    "payment_status": {"pending", "authorized", "paid", "voided", "refunded", "abandoned"},
    "status": {"open", "closed", "cancelled"},
    "fulfillment": {"unpacked", "packed", "fulfilled", "unfulfilled"},
    "shipping_pickup_type": {"ship", "pickup"},
    "shipping": {
        "branch",
        "correios",
        "correo-argentino",
        "oca-partner-ar",
        "table",
        "not-provided",
    },
    "inventory_behaviour": {"bypass", "claim"},
}
ADDRESS_REQUIRED = ("first_name", "last_name", "address", "number", "city", "province", "zipcode")
ADDRESS_FIELDS = {*ADDRESS_REQUIRED, "country", "floor", "locality", "phone", "customs"}
CANCEL_REASONS = {"customer", "inventory", "fraud", "other"}
ORDER_EVENTS = {
    "order/created",
    "order/updated",
    "order/paid",
    "order/packed",
    "order/fulfilled",
    "order/cancelled",
    "order/edited",
    "order/pending",
    "order/voided",
    "order/unpacked",
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CONTACT = re.compile(r"\([^()]*(@|https?://)[^()]*\)")


def _error(status: int, message: str, description: Any) -> web.Response:
    """The platform's observed shape for errors the documentation gives no body for."""
    body = {"code": status, "message": message, "description": description}
    return web.json_response(body, status=status)


def _invalid(errors: dict[str, list[str]]) -> web.Response:
    """The documented 422: ``{"field": ["why", ...]}``."""
    return web.json_response(errors, status=422)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(body: dict[str, Any], name: str, errors: dict[str, list[str]], prefix: str) -> None:
    value = body.get(name)
    if value is None or value == "":
        errors.setdefault(f"{prefix}{name}", []).append("can't be blank")
    elif not isinstance(value, str):
        errors.setdefault(f"{prefix}{name}", []).append("must be a string")


def _address_errors(address: Any, prefix: str, errors: dict[str, list[str]]) -> None:
    if not isinstance(address, dict):
        errors.setdefault(prefix.rstrip("."), []).append("must be an object")
        return
    for name in ADDRESS_REQUIRED:
        _text(address, name, errors, prefix)
    country = address.get("country")
    if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
        errors.setdefault(f"{prefix}country", []).append("must be an ISO 3166-1 code")
    for name in set(address) - ADDRESS_FIELDS:
        errors.setdefault(f"{prefix}{name}", []).append("is not a known attribute")


def _customer_errors(customer: Any, errors: dict[str, list[str]]) -> None:
    if not isinstance(customer, dict):
        errors.setdefault("customer", []).append("must be an object")
        return
    _text(customer, "name", errors, "customer.")
    email = customer.get("email")
    if not isinstance(email, str) or not EMAIL.match(email):
        errors.setdefault("customer.email", []).append("is invalid")
    for name in set(customer) - {"name", "email", "phone", "document"}:
        errors.setdefault(f"customer.{name}", []).append("is not a known attribute")


def _product_errors(products: Any, errors: dict[str, list[str]]) -> None:
    if not isinstance(products, list) or not products:
        errors.setdefault("products", []).append("can't be blank")
        return
    for n, item in enumerate(products):
        where = f"products[{n}]"
        if not isinstance(item, dict):
            errors.setdefault(where, []).append("must be an object")
            continue
        if not _is_int(item.get("variant_id")):
            errors.setdefault(f"{where}.variant_id", []).append("must be an integer")
        elif item["variant_id"] not in VARIANT_PRICES:
            errors.setdefault(f"{where}.variant_id", []).append("variant not found")
        if not _is_int(item.get("quantity")) or item["quantity"] < 1:
            errors.setdefault(f"{where}.quantity", []).append("must be a positive integer")
        if "price" in item and not _is_number(item["price"]):
            errors.setdefault(f"{where}.price", []).append("must be a number")
        for name in set(item) - {"variant_id", "quantity", "price"}:
            errors.setdefault(f"{where}.{name}", []).append("is not a known attribute")


def create_errors(body: dict[str, Any]) -> dict[str, list[str]]:
    """Every way ``body`` breaks the seed's create-order table (empty: it does not)."""
    errors: dict[str, list[str]] = {}
    for name in REQUIRED:
        if body.get(name) is None:
            errors[name] = ["can't be blank"]
    for name in set(body) - set(REQUIRED) - set(OPTIONAL):
        errors[name] = ["is not a known attribute"]
    for name, allowed in ENUMS.items():
        if body.get(name) is not None and body[name] not in allowed:
            errors.setdefault(name, []).append("is not included in the list")
    if "products" in body:
        _product_errors(body["products"], errors)
    if "customer" in body:
        _customer_errors(body["customer"], errors)
    for name in ("billing_address", "shipping_address"):
        if name in body:
            _address_errors(body[name], f"{name}.", errors)
    _scalar_errors(body, errors)
    return errors


def _scalar_errors(body: dict[str, Any], errors: dict[str, list[str]]) -> None:
    for name in ("shipping_cost_customer", "shipping_cost_owner"):
        if name in body and not _is_number(body[name]):
            errors.setdefault(name, []).append("must be a number")
    if "total" in body and (not _is_number(body["total"]) or body["total"] <= 0):
        errors.setdefault("total", []).append("must be positive")
    if "currency" in body and not re.fullmatch(r"[A-Z]{3}", str(body["currency"])):
        errors.setdefault("currency", []).append("must be an ISO 4217 code")
    if "language" in body and not re.fullmatch(r"[a-z]{2}", str(body["language"])):
        errors.setdefault("language", []).append("must be an ISO 639-1 code")
    for name in ("send_confirmation_email", "send_fulfillment_email"):
        if name in body and not isinstance(body[name], bool):
            errors.setdefault(name, []).append("must be true or false")
    for name in ("shipping_option", "note", "shipping_tracking_number", "location_id"):
        if body.get(name) is not None and not isinstance(body[name], str):
            errors.setdefault(name, []).append("must be a string")
    if "extra" in body and not isinstance(body["extra"], dict):
        errors.setdefault("extra", []).append("must be an object")


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


@dataclass
class FakeNuvemshop(FakePlatform):
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 871310835
    webhooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_webhook: int = 5670

    async def serve(self) -> None:
        base = "/v1/{store_id}"
        await self.start(
            [
                web.post(base + "/orders", self.create),
                web.get(base + "/orders", self.list_orders),
                web.get(base + "/orders/{id}", self.get_one),
                web.post(base + "/orders/{id}/cancel", self.cancel),
                web.get(base + "/webhooks", self.list_webhooks),
                web.post(base + "/webhooks", self.create_webhook),
                web.delete(base + "/webhooks/{id}", self.delete_webhook),
            ]
        )

    # --- what every call must carry ---------------------------------------------------------

    def _refuse(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authentication") != f"bearer {TOKEN}":
            return _error(401, "Unauthorized", "Invalid access token")
        if not CONTACT.search(request.headers.get("User-Agent", "")):
            return _error(400, "Bad Request", "A User-Agent with the app's name and contact")
        if request.match_info["store_id"] != STORE_ID:
            return _error(404, "Not Found", "Store not found")
        if request.method in ("POST", "PUT"):
            if request.content_type != "application/json":
                return web.Response(status=415)
            if request[RAW] and not isinstance(request[BODY], dict | list):
                return web.json_response({"error": "Problems parsing JSON"}, status=400)
        return None

    # --- orders ------------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        body = request[BODY]
        if not isinstance(body, dict):
            return web.json_response({"error": "Problems parsing JSON"}, status=400)
        if errors := create_errors(body):
            return _invalid(errors)
        order_id, self.next_id = self.next_id, self.next_id + 1
        self.orders[order_id] = self._order(order_id, body)
        return web.json_response(self.orders[order_id], status=201)

    def _order(self, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
        items = [
            {
                "id": order_id * 10 + n,
                "variant_id": str(p["variant_id"]),
                "quantity": str(p["quantity"]),  # the seed's answers give it as a string
                "price": p.get("price") or VARIANT_PRICES[p["variant_id"]],
            }
            for n, p in enumerate(body["products"])
        ]
        subtotal = sum(float(i["price"]) * int(i["quantity"]) for i in items)
        total = body.get("total") or subtotal + float(body["shipping_cost_customer"])
        return {
            "id": order_id,
            "store_id": int(STORE_ID),
            "number": 100 + len(self.orders),
            "status": body.get("status", "open"),
            "payment_status": body.get("payment_status", "pending"),
            "shipping_status": "unpacked",
            "subtotal": f"{subtotal:.2f}",
            "total": f"{float(total):.2f}",
            "currency": body.get("currency", "BRL"),
            "gateway": body["gateway"],
            "extra": body.get("extra", {}),
            "note": body.get("note"),
            "contact_email": body["customer"]["email"],
            "storefront": "api",
            "app_id": APP_ID,
            "products": items,
            "created_at": _stamp(),
            "updated_at": _stamp(),
            "cancel_reason": None,
            "cancelled_at": None,
        }

    async def list_orders(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        q = request.query
        try:
            per_page, page = int(q.get("per_page", "30")), int(q.get("page", "1"))
        except ValueError:
            return _invalid({"per_page": ["must be a number"]})
        if not 1 <= per_page <= 200 or page < 1:
            return _invalid({"per_page": ["must be 1-200"]})
        found = sorted(self.orders.values(), key=lambda o: o["id"])
        if "channels" in q:
            found = [o for o in found if o["storefront"] == q["channels"]]
        if "app_id" in q:
            found = [o for o in found if str(o["app_id"]) == q["app_id"]]
        if "created_at_min" in q:
            since = dt.datetime.fromisoformat(q["created_at_min"])
            found = [o for o in found if dt.datetime.fromisoformat(o["created_at"]) >= since]
        last = max(1, -(-len(found) // per_page))
        chunk = found[(page - 1) * per_page : page * per_page]
        if not chunk and page > 1:
            return _error(404, "Not Found", f"Last page is {last}")
        if "fields" in q:
            keep = q["fields"].split(",")
            chunk = [{k: o[k] for k in keep if k in o} for o in chunk]
        return web.json_response(chunk, headers=self._paging(request, page, last, len(found)))

    @staticmethod
    def _paging(request: web.Request, page: int, last: int, total: int) -> dict[str, str]:
        def at(n: int) -> str:
            return str(request.url.update_query(page=str(n)))

        links = [f'<{at(page + 1)}>; rel="next"'] if page < last else []
        links.append(f'<{at(last)}>; rel="last"')
        return {"Link": ", ".join(links), "X-Total-Count": str(total)}

    def _stored(self, request: web.Request) -> dict[str, Any] | None:
        raw = request.match_info["id"]
        return self.orders.get(int(raw)) if raw.isdigit() else None

    async def get_one(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        order = self._stored(request)
        if order is None:
            return _error(404, "Not Found", "Order not found")
        return web.json_response(order)

    async def cancel(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        order = self._stored(request)
        if order is None:
            return _error(404, "Not Found", "Order not found")
        body = request[BODY] or {}
        errors: dict[str, list[str]] = {}
        if body.get("reason") not in CANCEL_REASONS:
            errors["reason"] = ["is not included in the list"]
        for name in ("email", "restock"):
            if name in body and not isinstance(body[name], bool):
                errors[name] = ["must be true or false"]
        if order["status"] == "cancelled":
            errors["status"] = ["the order is already cancelled"]
        if errors:
            return _invalid(errors)
        order.update(
            status="cancelled",
            cancel_reason=body["reason"],
            cancelled_at=_stamp(),
            updated_at=_stamp(),
        )
        return web.json_response(order)

    # --- webhooks ------------------------------------------------------------------------------

    async def list_webhooks(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        hooks = list(self.webhooks.values())
        for name in ("url", "event"):
            if name in request.query:
                hooks = [h for h in hooks if h[name] == request.query[name]]
        return web.json_response(hooks)

    async def create_webhook(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        body = request[BODY] if isinstance(request[BODY], dict) else {}
        errors: dict[str, list[str]] = {}
        if body.get("event") not in ORDER_EVENTS:
            errors["event"] = ["Invalid event specified"]
        url = body.get("url")
        host = URL(url).host if isinstance(url, str) else None
        if (
            not isinstance(url, str)
            or not url.startswith("https://")
            or host
            in (
                None,
                "localhost",
                "127.0.0.1",
            )
        ):
            errors["url"] = ["invalid url specified"]
        if errors:
            return _invalid(errors)
        hook_id, self.next_webhook = self.next_webhook, self.next_webhook + 1
        self.webhooks[hook_id] = {
            "id": hook_id,
            "event": body["event"],
            "url": url,
            "created_at": _stamp(),
            "updated_at": _stamp(),
        }
        return web.json_response(self.webhooks[hook_id], status=201)

    async def delete_webhook(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        raw = request.match_info["id"]
        if not raw.isdigit() or self.webhooks.pop(int(raw), None) is None:
            return _error(404, "Not Found", "Webhook not found")
        return web.json_response({})

    async def deliver(
        self, url: str, event: str, order_id: int, *, secret: str = APP_SECRET
    ) -> tuple[int, Any]:
        """POST one webhook as Nuvemshop does: ``{store_id, event, id}``, signed."""
        body = json.dumps({"store_id": int(STORE_ID), "event": event, "id": order_id}).encode()
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Linkedstore-HMAC-SHA256": signature}
        async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
            text = await r.text()
            return r.status, json.loads(text) if text else None
