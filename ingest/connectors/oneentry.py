"""OneEntry connector (seed: ``shared/seeds/oneentry-createOrder.md``).

Dialect
    The SDK's ``Orders.createOrder(marker, body, langCode)`` is, over HTTP,
    ``POST {base_url}/api/content/orders-storage/marker/{marker}/orders?langCode=...`` with
    the body ``{formIdentifier, paymentAccountIdentifier, formData[{marker, value, type}],
    products[{productId, quantity}]}``. The project is identified by its app token in the
    ``x-app-token`` header (``ConnectorSettings.token``); createOrder is a 🔐 method, so the
    buyer account's access token goes in ``Authorization: Bearer`` (``options.access_token``).
    Reads use ``GET .../orders/{id}`` and ``GET .../orders?offset&limit`` (``{items, total}``);
    a cancel, when configured, is ``PUT .../orders/{id}`` setting ``statusIdentifier``.

Idempotency
    OneEntry has no idempotency key. The nearest equivalent: the event ULID travels in the
    order's own form data, as the field ``options.event_id_marker`` (add that marker to the
    order form), and before creating, the connector reads the storage's most recent orders
    (``lookup_limit``) and returns the one whose form data already carries the ULID.

Test orders (device ``env = "dev"``)
    OneEntry has no sandbox flag, so a test order is paid through
    ``options.test_payment_account_identifier`` (e.g. a "cash"/manual account that never
    charges). Without one configured a test order is refused, never charged.

States
    ``statusIdentifier`` maps through ``options.status_map`` (e.g. ``{"paid": "paid",
    "sent": "shipped"}``); an order without a status, or with an unmapped one, is ``ordered``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from edgeorder.ingest.connectors.base import OrderRequest, OrderResult, PermanentError
from edgeorder.ingest.connectors.common import (
    http_request,
    open_session,
    parse_options,
    to_minor_units,
)
from edgeorder.ingest.settings import ConnectorSettings
from edgeorder.protocol import State

__all__ = ["OneEntryConnector", "OneEntryOptions", "build_order_body", "order_state"]

log = structlog.get_logger(__name__)

PLATFORM = "oneentry"


class OneEntryOptions(BaseModel):
    """``ConnectorSettings.options`` for OneEntry, named after the createOrder seed."""

    model_config = ConfigDict(extra="forbid")

    marker: str = Field(min_length=1)
    """Text identifier of the order storage (``createOrder``'s first argument)."""
    form_identifier: str = Field(min_length=1)
    payment_account_identifier: str = Field(min_length=1)
    test_payment_account_identifier: str | None = None
    products: dict[str, int] = Field(min_length=1)
    """Device SKU -> OneEntry ``productId``."""
    form_fields: dict[str, str] = Field(default_factory=dict)
    """Form field marker -> profile path, e.g. ``{"name_1": "Customer.Name"}``."""
    event_id_marker: str = Field(default="edgeorder_event_id", min_length=1)
    lang_code: str = Field(default="en_US", pattern=r"^[a-z]{2}_[A-Z]{2}$")
    access_token: SecretStr | None = None
    status_map: dict[str, State] = Field(default_factory=dict)
    cancel_status_identifier: str | None = None
    lookup_limit: int = Field(default=100, ge=1, le=1000)


# --- pure mapping -----------------------------------------------------------------------


def _profile_value(profile: Mapping[str, Any], path: str) -> str | None:
    value: Any = profile
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return None if value is None or isinstance(value, Mapping) else str(value)


def build_order_body(req: OrderRequest, opts: OneEntryOptions) -> dict[str, Any]:
    """The createOrder body for ``req``; ``PermanentError`` if it cannot be mapped."""
    product_id = opts.products.get(req.sku)
    if product_id is None:
        raise PermanentError(f"{PLATFORM}: no productId configured for sku {req.sku!r}")
    account = opts.payment_account_identifier
    if req.test:
        if opts.test_payment_account_identifier is None:
            raise PermanentError(
                f"{PLATFORM}: test order refused: no test_payment_account_identifier configured"
            )
        account = opts.test_payment_account_identifier
    form_data = [{"marker": opts.event_id_marker, "value": req.idempotency_key, "type": "string"}]
    for marker, path in opts.form_fields.items():
        value = _profile_value(req.profile, path)
        if value is not None:
            form_data.append({"marker": marker, "value": value, "type": "string"})
    return {
        "formIdentifier": opts.form_identifier,
        "paymentAccountIdentifier": account,
        "formData": form_data,
        "products": [{"productId": product_id, "quantity": req.quantity}],
    }


def order_state(order: Mapping[str, Any], status_map: Mapping[str, State]) -> State:
    """The device-facing state of one OneEntry order."""
    status = order.get("statusIdentifier")
    return status_map.get(status, State.ORDERED) if isinstance(status, str) else State.ORDERED


def carries_key(order: Mapping[str, Any], marker: str, key: str) -> bool:
    """True when ``order``'s form data holds ``key`` under ``marker``."""
    form = order.get("formData")
    fields = form if isinstance(form, list) else [form]
    return any(
        isinstance(f, Mapping) and f.get("marker") == marker and f.get("value") == key
        for f in fields
    )


def _reason(status: int, body: Any) -> str:
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("error")
        if isinstance(message, list):
            message = "; ".join(str(m) for m in message)
        return str(message or f"HTTP {status}")
    return str(body or f"HTTP {status}")


# --- I/O shell ----------------------------------------------------------------------------


class OneEntryConnector:
    """Creates and reads orders in one OneEntry order storage."""

    name = PLATFORM

    def __init__(self, settings: ConnectorSettings) -> None:
        self.options = parse_options(OneEntryOptions, settings.options, PLATFORM)
        self._orders_url = (
            f"{settings.base_url.rstrip('/')}/api/content/orders-storage/marker/"
            f"{self.options.marker}/orders"
        )
        headers = {"x-app-token": settings.token.get_secret_value()}
        if self.options.access_token is not None:
            headers["Authorization"] = f"Bearer {self.options.access_token.get_secret_value()}"
        self._session = open_session(settings.timeout_s, headers)

    def _result(self, order: Any) -> OrderResult:
        if not isinstance(order, Mapping) or "id" not in order:
            raise PermanentError(f"{PLATFORM}: answer without an order id: {order!r}")
        return OrderResult(
            order_id=str(order["id"]),
            state=order_state(order, self.options.status_map),
            platform_status=order.get("statusIdentifier"),
            amount=to_minor_units(order.get("totalSum")),
            currency=order.get("currency") or None,
            raw=dict(order),
        )

    async def _call(self, method: str, url: str, **kw: Any) -> Any:
        params = {"langCode": self.options.lang_code, **kw.pop("params", {})}
        reply = await http_request(
            self._session, method, url, platform=PLATFORM, reason_of=_reason, params=params, **kw
        )
        return reply.body

    async def find_by_key(self, idempotency_key: str) -> OrderResult | None:
        """The recent order whose form data already carries ``idempotency_key``."""
        page = await self._call(
            "GET", self._orders_url, params={"offset": "0", "limit": str(self.options.lookup_limit)}
        )
        items = page.get("items") if isinstance(page, Mapping) else page
        for order in items if isinstance(items, list) else []:
            if isinstance(order, Mapping) and carries_key(
                order, self.options.event_id_marker, idempotency_key
            ):
                return self._result(order)
        return None

    async def create_order(self, request: OrderRequest) -> OrderResult:
        """Create the order unless one already carries ``request.idempotency_key``."""
        body = build_order_body(request, self.options)
        existing = await self.find_by_key(request.idempotency_key)
        if existing is not None:
            log.info(
                "oneentry_order_found", event_id=request.idempotency_key, order_id=existing.order_id
            )
            return existing
        return self._result(await self._call("POST", self._orders_url, json_body=body))

    async def get_order(self, order_id: str) -> OrderResult:
        """The order's current state (``GET .../orders/{id}``)."""
        return self._result(await self._call("GET", f"{self._orders_url}/{order_id}"))

    async def cancel_order(self, order_id: str, *, idempotency_key: str) -> OrderResult:
        """Set the configured cancel status; idempotent (already there -> no second call)."""
        target = self.options.cancel_status_identifier
        if target is None:
            raise PermanentError(f"{PLATFORM}: no cancel_status_identifier configured")
        current = await self.get_order(order_id)
        if current.platform_status == target:
            return current
        raw = current.raw
        body = {
            "formIdentifier": raw.get("formIdentifier"),
            "paymentAccountIdentifier": raw.get("paymentAccountIdentifier"),
            "formData": raw.get("formData"),
            "products": [
                {"productId": p.get("productId", p.get("id")), "quantity": p.get("quantity")}
                for p in raw.get("products") or []
                if isinstance(p, Mapping)
            ],
            "statusIdentifier": target,
        }
        order = await self._call("PUT", f"{self._orders_url}/{order_id}", json_body=body)
        log.info("oneentry_order_cancelled", order_id=order_id, event_id=idempotency_key)
        return self._result(order)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._session.close()
