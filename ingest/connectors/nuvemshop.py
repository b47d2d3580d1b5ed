"""Nuvemshop / Tiendanube connector (seed: ``shared/seeds/nuvemshop-order-api.md``).

Dialect
    ``POST {base_url}/v1/{store_id}/orders`` creates, ``GET .../orders/{id}`` reads,
    ``POST .../orders/{id}/cancel`` cancels (``reason``, ``email``, ``restock``).
    Authentication is Tiendanube's own header ``Authentication: bearer <token>`` (not
    ``Authorization``) plus a ``User-Agent`` naming the app and a contact, which the platform
    requires. Errors come as ``{"code", "message", "description"}``; the reason passed on is
    ``message: description``.

Create fields
    Sent: ``gateway``, ``payment_status`` (pending), ``status`` (open), ``fulfillment``
    (unpacked), ``products[{variant_id, quantity}]`` (variant from ``options.variants``;
    ``price`` left to the variant's own), ``inventory_behaviour``, ``customer{name, email,
    phone, document}`` and ``billing_address`` = ``shipping_address`` (from the BlackBox
    profile's ``Customer`` and ``Shipping.Address``), ``shipping_pickup_type``, ``shipping``,
    ``shipping_option``, ``shipping_cost_customer``, ``send_confirmation_email``,
    ``send_fulfillment_email``, and when configured ``currency``, ``language``,
    ``location_id``. Left to the platform: ``total`` (computed from products and shipping),
    ``shipping_cost_owner``, ``shipping_tracking_number`` (a button press knows neither).

Idempotency
    Nuvemshop has no idempotency key. The nearest equivalent used here: every order carries
    the event ULID in ``extra.edgeorder_event_id`` (``extra`` is the API-settable free JSON
    object), and before creating, the connector lists the store's API orders created since
    the ULID's own timestamp (minus ``lookup_skew_s``) and returns the order that already
    carries that key. A retry after a lost reply therefore finds the first order instead of
    placing a second one. Cancel is made idempotent the same way: an order already
    ``cancelled`` is returned as is, without a second call.

Test orders (device ``env = "dev"``)
    Nuvemshop has no sandbox flag. API orders never charge by themselves (payment stays
    ``pending`` with the configured gateway), so a test order is created with
    ``payment_status: pending``, no e-mails, ``extra.edgeorder_test: true`` and a note, so the
    shop owner can tell and discard it.

States
    ``status`` / ``payment_status`` / ``shipping_status`` map onto ``protocol.State`` in
    :func:`order_state` (cancelled > payment voided/abandoned = failed > delivered >
    shipped > paid > ordered).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field
from ulid import ULID

from edgeorder.ingest.connectors.base import OrderRequest, OrderResult, PermanentError
from edgeorder.ingest.connectors.common import (
    http_request,
    open_session,
    parse_options,
    to_minor_units,
)
from edgeorder.ingest.settings import ConnectorSettings
from edgeorder.protocol import State

__all__ = ["NuvemshopConnector", "NuvemshopOptions", "build_order_body", "order_state"]

log = structlog.get_logger(__name__)

PLATFORM = "nuvemshop"
EVENT_KEY = "edgeorder_event_id"
LOOKUP_FIELDS = "id,extra,status,payment_status,shipping_status,total,currency,created_at"


class NuvemshopOptions(BaseModel):
    """``ConnectorSettings.options`` for Nuvemshop, field names as in the create-order seed."""

    model_config = ConfigDict(extra="forbid")

    store_id: str = Field(pattern=r"^[0-9]+$")
    variants: dict[str, int] = Field(min_length=1)
    """Device SKU -> Nuvemshop ``variant_id`` (``products[].variant_id``)."""
    user_agent: str = Field(min_length=3)
    """Required by the platform: app name and a contact, e.g. ``edgeorder (ops@shop.example)``."""
    gateway: Literal["offline", "mercadopago", "pagseguro", "payu", "not-provided"] = "not-provided"
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    inventory_behaviour: Literal["bypass", "claim"] = "bypass"
    shipping_pickup_type: Literal["ship", "pickup"] = "ship"
    shipping: str = "not-provided"
    shipping_option: str = "Não informado"
    shipping_cost_customer: float = Field(default=0.0, ge=0)
    location_id: str | None = None
    send_confirmation_email: bool = False
    send_fulfillment_email: bool = False
    default_country: str = Field(default="BR", pattern=r"^[A-Z]{2}$")
    """ISO 3166-1 country used when the profile's country is not a two-letter code."""
    cancel_reason: Literal["customer", "inventory", "fraud", "other"] = "customer"
    cancel_email: bool = True
    cancel_restock: bool = True
    lookup_skew_s: int = Field(default=600, ge=0)
    lookup_pages: int = Field(default=5, ge=1, le=50)


# --- pure mapping -----------------------------------------------------------------------


def order_state(order: Mapping[str, Any]) -> State:
    """The device-facing state of one Nuvemshop order."""
    status = order.get("status")
    payment = order.get("payment_status")
    shipping = order.get("shipping_status")
    if status == "cancelled" or payment in ("refunded", "cancelled"):
        return State.CANCELLED
    if payment in ("voided", "abandoned"):
        return State.FAILED
    if shipping == "delivered":
        return State.DELIVERED
    if shipping in ("fulfilled", "shipped", "partially_fulfilled"):
        return State.SHIPPED
    if payment == "paid":
        return State.PAID
    return State.ORDERED


def _result(order: Mapping[str, Any]) -> OrderResult:
    platform_status = "/".join(
        str(order.get(k)) for k in ("status", "payment_status", "shipping_status")
    )
    return OrderResult(
        order_id=str(order["id"]),
        state=order_state(order),
        platform_status=platform_status,
        amount=to_minor_units(order.get("total")),
        currency=order.get("currency"),
        raw=dict(order),
    )


def _address(profile: Mapping[str, Any], opts: NuvemshopOptions) -> dict[str, Any]:
    """BlackBox ``Shipping.Address`` (+ ``Customer.Name``) as a Nuvemshop address."""
    customer = profile.get("Customer") or {}
    addr = (profile.get("Shipping") or {}).get("Address") or {}
    first, _, last = str(customer.get("Name") or "").partition(" ")
    country = str(addr.get("Country") or "")
    body = {
        "first_name": first or None,
        "last_name": last or None,
        "address": addr.get("Street"),
        "number": addr.get("Number"),
        "floor": addr.get("Complement"),
        "locality": addr.get("District"),
        "city": addr.get("City"),
        "province": addr.get("State"),
        "zipcode": addr.get("ZipCode"),
        "country": country if len(country) == 2 else opts.default_country,
        "phone": customer.get("Phone"),
    }
    return {k: v for k, v in body.items() if v not in (None, "")}


def _customer(profile: Mapping[str, Any]) -> dict[str, Any]:
    customer = profile.get("Customer") or {}
    body = {
        "name": customer.get("Name"),
        "email": customer.get("Email"),
        "phone": customer.get("Phone"),
        "document": customer.get("LegalId"),
    }
    return {k: v for k, v in body.items() if v not in (None, "")}


def build_order_body(req: OrderRequest, opts: NuvemshopOptions) -> dict[str, Any]:
    """The create-order JSON for ``req``; raises ``PermanentError`` for an unmapped SKU."""
    variant = opts.variants.get(req.sku)
    if variant is None:
        raise PermanentError(f"{PLATFORM}: no variant_id configured for sku {req.sku!r}")
    address = _address(req.profile, opts)
    body: dict[str, Any] = {
        "gateway": opts.gateway,
        "payment_status": "pending",
        "status": "open",
        "fulfillment": "unpacked",
        "products": [{"variant_id": variant, "quantity": req.quantity}],
        "inventory_behaviour": opts.inventory_behaviour,
        "customer": _customer(req.profile),
        "billing_address": address,
        "shipping_address": address,
        "shipping_pickup_type": opts.shipping_pickup_type,
        "shipping": opts.shipping,
        "shipping_option": opts.shipping_option,
        "shipping_cost_customer": opts.shipping_cost_customer,
        "send_confirmation_email": opts.send_confirmation_email and not req.test,
        "send_fulfillment_email": opts.send_fulfillment_email and not req.test,
        "extra": {EVENT_KEY: req.idempotency_key, "edgeorder_device_id": req.device_id},
    }
    for key in ("currency", "language", "location_id"):
        if getattr(opts, key) is not None:
            body[key] = getattr(opts, key)
    if req.test:
        body["extra"]["edgeorder_test"] = True
        body["note"] = "edgeorder TEST order (device env=dev): do not fulfil"
    return body


def lookup_since(idempotency_key: str, skew_s: int) -> str | None:
    """``created_at_min`` for the duplicate lookup: the ULID's own time minus ``skew_s``."""
    try:
        born = ULID.from_str(idempotency_key).datetime
    except ValueError:
        return None
    return (born - dt.timedelta(seconds=skew_s)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _reason(status: int, body: Any) -> str:
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("error") or f"HTTP {status}"
        description = body.get("description")
        return f"{message}: {description}" if description else str(message)
    return str(body or f"HTTP {status}")


# --- I/O shell ----------------------------------------------------------------------------


class NuvemshopConnector:
    """Creates, reads and cancels Nuvemshop orders; see the module docstring for the dialect."""

    name = PLATFORM

    def __init__(self, settings: ConnectorSettings) -> None:
        self.options = parse_options(NuvemshopOptions, settings.options, PLATFORM)
        self._orders_url = f"{settings.base_url.rstrip('/')}/v1/{self.options.store_id}/orders"
        self._session = open_session(
            settings.timeout_s,
            {
                "Authentication": f"bearer {settings.token.get_secret_value()}",
                "User-Agent": self.options.user_agent,
            },
        )

    async def _call(self, method: str, url: str, **kw: Any) -> Any:
        reply = await http_request(
            self._session, method, url, platform=PLATFORM, reason_of=_reason, **kw
        )
        return reply.body

    async def find_by_key(self, idempotency_key: str) -> OrderResult | None:
        """The API order already carrying ``idempotency_key`` in ``extra``, if any."""
        params = {"channels": "api", "per_page": "200", "fields": LOOKUP_FIELDS}
        since = lookup_since(idempotency_key, self.options.lookup_skew_s)
        if since is not None:
            params["created_at_min"] = since
        for page in range(1, self.options.lookup_pages + 1):
            try:
                orders = await self._call(
                    "GET", self._orders_url, params={**params, "page": str(page)}
                )
            except PermanentError as exc:
                if exc.status == 404:  # Nuvemshop answers 404 "Last page is N" past the end
                    return None
                raise
            for order in orders if isinstance(orders, list) else []:
                if (order.get("extra") or {}).get(EVENT_KEY) == idempotency_key:
                    return _result(order)
            if not isinstance(orders, list) or len(orders) < 200:
                return None
        return None

    async def create_order(self, request: OrderRequest) -> OrderResult:
        """Create the order unless one already carries ``request.idempotency_key``."""
        body = build_order_body(request, self.options)
        existing = await self.find_by_key(request.idempotency_key)
        if existing is not None:
            log.info(
                "nuvemshop_order_found",
                event_id=request.idempotency_key,
                order_id=existing.order_id,
            )
            return existing
        order = await self._call("POST", self._orders_url, json_body=body)
        if not isinstance(order, Mapping) or "id" not in order:
            raise PermanentError(f"{PLATFORM}: create answered without an order id: {order!r}")
        return _result(order)

    async def get_order(self, order_id: str) -> OrderResult:
        """The order's current state (``GET /orders/{id}``)."""
        order = await self._call("GET", f"{self._orders_url}/{order_id}")
        if not isinstance(order, Mapping) or "id" not in order:
            raise PermanentError(f"{PLATFORM}: order {order_id} answered without an id")
        return _result(order)

    async def cancel_order(self, order_id: str, *, idempotency_key: str) -> OrderResult:
        """Cancel ``order_id``; an order already cancelled is returned without a second call."""
        current = await self.get_order(order_id)
        if current.state is State.CANCELLED:
            return current
        opts = self.options
        order = await self._call(
            "POST",
            f"{self._orders_url}/{order_id}/cancel",
            json_body={
                "reason": opts.cancel_reason,
                "email": opts.cancel_email,
                "restock": opts.cancel_restock,
            },
        )
        log.info("nuvemshop_order_cancelled", order_id=order_id, event_id=idempotency_key)
        return _result(order) if isinstance(order, Mapping) and "id" in order else current

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._session.close()
