"""Nuvemshop / Tiendanube connector (seed: ``shared/seeds/nuvemshop-order-api.md``, the API's
order page; the API's introduction and webhook page for what that page leaves to them: auth,
errors, pagination, webhooks). Field-by-field audit: README.md in this folder.

Dialect
    ``POST {base_url}/v1/{store_id}/orders`` creates, ``GET .../orders/{id}`` reads,
    ``POST .../orders/{id}/cancel`` cancels (``reason``, ``email``, ``restock``).
    Authentication is Tiendanube's own header ``Authentication: bearer <token>`` (not
    ``Authorization``) plus a ``User-Agent`` naming the app and a contact (an e-mail or a URL),
    which the platform requires (400 without). A refusal keeps the platform's own words:
    ``422 {"src": ["can't be blank"]}`` reads ``src: can't be blank``, ``400 {"error":
    "Problems parsing JSON"}`` reads ``Problems parsing JSON``, ``{code, message,
    description}`` reads ``message: description``.

Create fields
    Sent: ``gateway``, ``payment_status`` (pending), ``status`` (open), ``products[{variant_id,
    quantity}]`` (variant from ``options.variants``; ``price`` left to the variant's own),
    ``inventory_behaviour``, ``customer{name, email, phone, document}`` and ``billing_address``
    = ``shipping_address`` (from the BlackBox profile's ``Customer`` and ``Shipping.Address``),
    ``shipping_pickup_type``, ``shipping``, ``shipping_option``, ``shipping_cost_customer``,
    ``send_confirmation_email``, ``send_fulfillment_email``, ``extra``, and when configured
    ``currency``, ``language``, ``location_id``. A profile without what the seed requires
    (the buyer's e-mail, the address's street, number, city, province, zip code) is refused
    before any call, naming what is missing. Left to the platform: ``total`` (computed),
    ``fulfillment`` (its default, unpacked, is a new order's), ``shipping_cost_owner``,
    ``shipping_tracking_number`` (a button press knows neither).

Idempotency
    Nuvemshop has no idempotency key. The nearest equivalent used here: every order carries
    the event ULID in ``extra.edgeorder_event_id`` (``extra`` is the API-settable free JSON
    object), and when an earlier attempt may have created it (``OrderRequest.may_exist``) the
    connector lists the store's API orders created since the press (the earlier of the ULID's
    time and ingest's ``recorded_at``, minus ``lookup_skew_s``; only this app's with
    ``app_id``), following the ``Link`` header's
    ``next`` page to the end, and returns the order that already carries that key. A lookup
    that cannot reach the end (``lookup_pages``) is retried later, never answered by a blind
    create. Cancel is made idempotent the same way: an order already ``cancelled`` is
    returned as is, without a second call.

Webhooks
    With ``app_secret`` (the app's client secret, with which Nuvemshop signs) ingest receives
    ``POST /webhooks/nuvemshop``: the ``X-Linkedstore-HMAC-SHA256`` header must be the hex
    HMAC-SHA256 of the raw body; the body ``{store_id, event, id}`` names the order, whose
    current state is then read (``get_order``) and applied forward only. The connector
    registers ``webhook_events`` for that URL when it is https (Nuvemshop delivers nowhere
    else, and never to localhost); polling stays the fallback either way.

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
import json
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from ulid import ULID

from edgeorder.ingest.connectors.base import (
    CatalogItem,
    OrderRequest,
    OrderResult,
    PermanentError,
    TransientError,
    WebhookRejectedError,
)
from edgeorder.ingest.connectors.common import (
    http_request,
    open_session,
    parse_options,
    to_minor_units,
)
from edgeorder.ingest.connectors.settings import ConnectorSettings
from edgeorder.kit.signing import verify_hex
from edgeorder.protocol import State

__all__ = [
    "NuvemshopConnector",
    "NuvemshopOptions",
    "build_order_body",
    "next_page",
    "order_state",
    "reason_of",
]

log = structlog.get_logger(__name__)

PLATFORM = "nuvemshop"
EVENT_KEY = "edgeorder_event_id"
SIGNATURE_HEADER = "X-Linkedstore-HMAC-SHA256"
LOOKUP_FIELDS = "id,extra,status,payment_status,shipping_status,total,currency,created_at"
PER_PAGE = 200  # the most a page holds (the API's introduction)
_CONTACT = re.compile(r"\([^()]*(@|https?://)[^()]*\)")
WebhookEvent = Literal[
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
]

DEFAULT_WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = (
    "order/updated",
    "order/paid",
    "order/fulfilled",
    "order/cancelled",
)
"""Order events both versions of the webhook page list, covering every state ingest maps."""


class NuvemshopOptions(BaseModel):
    """``ConnectorSettings.options`` for Nuvemshop, field names as in the create-order seed."""

    model_config = ConfigDict(extra="forbid")

    store_id: str = Field(pattern=r"^[0-9]+$")
    variants: dict[str, int] = Field(min_length=1)
    """Device SKU -> Nuvemshop ``variant_id`` (``products[].variant_id``)."""
    user_agent: str = Field(pattern=_CONTACT.pattern)
    """Required by the platform: app name and a contact in parentheses, an e-mail or a URL,
    e.g. ``edgeorder (ops@shop.example)``."""
    gateway: Literal["offline", "mercadopago", "pagseguro", "payu", "not-provided"] = "not-provided"
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    inventory_behaviour: Literal["bypass", "claim"] = "bypass"
    shipping_pickup_type: Literal["ship", "pickup"] = "ship"
    shipping: Literal[
        "branch", "correios", "correo-argentino", "oca-partner-ar", "table", "not-provided"
    ] = "not-provided"
    shipping_option: str = Field(default="Não informado", min_length=1)
    shipping_cost_customer: float = Field(default=0.0, ge=0)
    location_id: str | None = None
    send_confirmation_email: bool = False
    send_fulfillment_email: bool = False
    default_country: str = Field(default="BR", pattern=r"^[A-Z]{2}$")
    """ISO 3166-1 country used when the profile's country is not a two-letter code."""
    not_informed: str = Field(default="Não informado", min_length=1)
    """The seed's own default for a name part the profile lacks (a one-word name's surname)."""
    cancel_reason: Literal["customer", "inventory", "fraud", "other"] = "customer"
    cancel_email: bool = True
    cancel_restock: bool = True
    app_id: int | None = None
    """This app's id: the duplicate lookup then lists only orders this app created."""
    lookup_skew_s: int = Field(default=600, ge=0)
    lookup_pages: int = Field(default=50, ge=1, le=1000)
    app_secret: SecretStr | None = None
    """The app's client secret: Nuvemshop signs webhooks with it. None: polling only."""
    webhook_events: list[WebhookEvent] = Field(
        default_factory=lambda: list(DEFAULT_WEBHOOK_EVENTS), min_length=1
    )
    """Order events to subscribe to (each delivery makes ingest read the order's state)."""


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


def _text(value: Any) -> str | None:
    """A profile value as trimmed text; None when absent or blank."""
    if value is None:
        return None
    return str(value).strip() or None


_ADDRESS_FIELDS = {  # Nuvemshop address field -> BlackBox Shipping.Address field
    "address": "Street",
    "number": "Number",
    "floor": "Complement",
    "locality": "District",
    "city": "City",
    "province": "State",
    "zipcode": "ZipCode",
}
_REQUIRED_ADDRESS = ("address", "number", "city", "province", "zipcode")


def _address(
    profile: Mapping[str, Any], opts: NuvemshopOptions
) -> tuple[dict[str, Any], list[str]]:
    """BlackBox ``Shipping.Address`` (+ ``Customer.Name``) as a Nuvemshop address, and the
    profile fields the seed requires that are missing."""
    customer = profile.get("Customer") or {}
    addr = (profile.get("Shipping") or {}).get("Address") or {}
    first, _, last = (_text(customer.get("Name")) or "").partition(" ")
    country = _text(addr.get("Country")) or ""
    body: dict[str, Any] = {
        "first_name": first or None,
        "last_name": last.strip() or opts.not_informed,
        **{ours: _text(addr.get(theirs)) for ours, theirs in _ADDRESS_FIELDS.items()},
        "country": country.upper() if len(country) == 2 else opts.default_country,
        "phone": _text(customer.get("Phone")),
    }
    missing = [f"Shipping.Address.{_ADDRESS_FIELDS[k]}" for k in _REQUIRED_ADDRESS if not body[k]]
    if not body["first_name"]:
        missing.insert(0, "Customer.Name")
    return {k: v for k, v in body.items() if v is not None}, missing


def _customer(profile: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    customer = profile.get("Customer") or {}
    body = {
        "name": _text(customer.get("Name")),
        "email": _text(customer.get("Email")),
        "phone": _text(customer.get("Phone")),
        "document": _text(customer.get("LegalId")),
    }
    missing = [
        f"Customer.{k}" for k, ours in (("Name", "name"), ("Email", "email")) if not body[ours]
    ]
    return {k: v for k, v in body.items() if v is not None}, missing


def build_order_body(req: OrderRequest, opts: NuvemshopOptions) -> dict[str, Any]:
    """The create-order JSON for ``req``; ``PermanentError`` for an unmapped SKU or a profile
    without what the seed requires."""
    variant = opts.variants.get(req.sku)
    if variant is None:
        raise PermanentError(f"{PLATFORM}: no variant_id configured for sku {req.sku!r}")
    customer, missing = _customer(req.profile)
    address, missing_address = _address(req.profile, opts)
    missing += [m for m in missing_address if m not in missing]
    if missing:
        raise PermanentError(
            f"{PLATFORM}: the buyer profile lacks what an order needs: {', '.join(missing)}"
        )
    body: dict[str, Any] = {
        "gateway": opts.gateway,
        "payment_status": "pending",
        "status": "open",
        "products": [{"variant_id": variant, "quantity": req.quantity}],
        "inventory_behaviour": opts.inventory_behaviour,
        "customer": customer,
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


def lookup_since(
    idempotency_key: str, skew_s: int, recorded_at: dt.datetime | None = None
) -> str | None:
    """``created_at_min`` for the duplicate lookup: the earlier of the ULID's own time (the
    device's clock) and when ingest recorded the press, minus ``skew_s`` for the platform's
    clock. A device clock running ahead cannot hide the order."""
    try:
        born: dt.datetime | None = ULID.from_str(idempotency_key).datetime
    except ValueError:
        born = None
    times = [t for t in (born, recorded_at) if t is not None]
    if not times:
        return None
    return (min(times) - dt.timedelta(seconds=skew_s)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,<]+)*)")


def next_page(link: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, if any (URLs may hold commas)."""
    for match in _LINK.finditer(link or ""):
        if re.search(r'\brel\s*=\s*"?next"?', match.group(2)):
            return match.group(1).strip() or None
    return None


def _messages(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def reason_of(status: int, body: Any) -> str:
    """The platform's own words for a refusal, whichever of its shapes it used."""
    if isinstance(body, Mapping):
        if "message" in body or "description" in body:
            message = body.get("message") or f"HTTP {status}"
            description = body.get("description")
            if isinstance(description, Mapping):
                description = reason_of(status, description)
            return f"{message}: {description}" if description else str(message)
        if isinstance(body.get("error"), str):
            return str(body["error"])
        fields = [f"{k}: {_messages(v)}" for k, v in body.items() if k not in ("code",)]
        if fields:  # 422 {"field": ["why", ...], ...}
            return "; ".join(fields)[:500]
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return _STATUS_MEANING.get(status, f"HTTP {status}")


_STATUS_MEANING = {  # what the API's introduction says of statuses it gives no body for
    400: "Bad Request (a User-Agent with the app's contact is required)",
    402: "Payment Required: the store's API access is suspended until it is paid",
    415: "Unsupported Media Type (Content-Type: application/json expected)",
}


def parse_webhook(body: bytes, store_id: str) -> tuple[str, str] | None:
    """``(event, order_id)`` of an order webhook of this store; None for another event or
    store; ``WebhookRejectedError`` for a body that is not a webhook."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise WebhookRejectedError("malformed", "body is not JSON", status=400) from exc
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise WebhookRejectedError("malformed", "no event in the body", status=400)
    event = data["event"]
    if not event.startswith("order/"):
        return None
    if str(data.get("store_id")) != store_id:
        log.warning(
            "nuvemshop.webhook_other_store", store_id=data.get("store_id"), webhook_event=event
        )
        return None
    order_id = data.get("id")
    if (
        isinstance(order_id, bool)
        or not isinstance(order_id, int | str)
        or not str(order_id).isdigit()
    ):
        raise WebhookRejectedError("malformed", f"{event} without an order id", status=400)
    return event, str(order_id)


def webhook_target(url: str) -> str | None:
    """Why Nuvemshop would not deliver to ``url`` (https only, never localhost), or None."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "Nuvemshop delivers webhooks to https URLs only"
    host = (parts.hostname or "").lower()
    if host in ("localhost", "127.0.0.1", "::1") or host.endswith(
        (".localhost", "tiendanube.com", "nuvemshop.com.br")
    ):
        return f"Nuvemshop does not deliver webhooks to {host}"
    return None


# --- I/O shell ----------------------------------------------------------------------------


class NuvemshopConnector:
    """Creates, reads and cancels Nuvemshop orders, and takes its webhooks; see the module
    docstring for the dialect."""

    name = PLATFORM
    catalog_source = "options.variants"

    async def catalog(self) -> list[CatalogItem]:
        """The SKUs of ``options.variants``: the seed documents no product listing, and a
        SKU outside this map fails at the press ("no variant_id configured")."""
        return [CatalogItem(sku, f"variant_id {ref}") for sku, ref in self.options.variants.items()]

    webhook_name = PLATFORM

    def __init__(self, settings: ConnectorSettings) -> None:
        self.options = parse_options(NuvemshopOptions, settings.options, PLATFORM)
        self._base = f"{settings.base_url.rstrip('/')}/v1/{self.options.store_id}"
        self._orders_url = f"{self._base}/orders"
        self._secret = (
            self.options.app_secret.get_secret_value() if self.options.app_secret else None
        )
        self._session = open_session(
            settings.timeout_s,
            {
                "Authentication": f"bearer {settings.token.get_secret_value()}",
                "User-Agent": self.options.user_agent,
            },
        )

    async def _call(self, method: str, url: str, **kw: Any) -> Any:
        reply = await http_request(
            self._session, method, url, platform=PLATFORM, reason_of=reason_of, **kw
        )
        return reply.body

    async def find_by_key(
        self, idempotency_key: str, recorded_at: dt.datetime | None = None
    ) -> OrderResult | None:
        """The API order already carrying ``idempotency_key`` in ``extra``, if any: every
        page of the store's API orders created since the press (``lookup_since``)."""
        params: dict[str, str] = {
            "channels": "api",
            "per_page": str(PER_PAGE),
            "fields": LOOKUP_FIELDS,
        }
        if self.options.app_id is not None:
            params["app_id"] = str(self.options.app_id)
        since = lookup_since(idempotency_key, self.options.lookup_skew_s, recorded_at)
        if since is not None:
            params["created_at_min"] = since
        url = self._orders_url
        for _ in range(self.options.lookup_pages):
            try:
                reply = await http_request(
                    self._session, "GET", url, platform=PLATFORM, reason_of=reason_of, params=params
                )
            except PermanentError as exc:
                if exc.status == 404:  # Nuvemshop answers 404 "Last page is N" past the end
                    return None
                raise
            orders = reply.body if isinstance(reply.body, list) else []
            for order in orders:
                if (
                    isinstance(order, Mapping)
                    and (order.get("extra") or {}).get(EVENT_KEY) == idempotency_key
                ):
                    return _result(order)
            following = next_page(reply.headers.get("Link"))
            if following is None:
                return None
            url, params = following, {}  # the next link carries them
        raise TransientError(
            f"{PLATFORM}: the duplicate lookup did not reach the last page in "
            f"{self.options.lookup_pages} pages; raise lookup_pages"
        )

    async def create_order(self, request: OrderRequest) -> OrderResult:
        """Create the order unless an earlier attempt did (``request.may_exist``)."""
        body = build_order_body(request, self.options)
        if request.may_exist:
            existing = await self.find_by_key(request.idempotency_key, request.recorded_at)
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
        if (order.get("extra") or {}).get(EVENT_KEY) != request.idempotency_key:
            # the lookup after a lost reply could not find this order again
            log.error("nuvemshop.extra_not_kept", order_id=order["id"])
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

    # --- webhooks -------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        """The delivery is Nuvemshop's: its ``X-Linkedstore-HMAC-SHA256`` matches the body."""
        if self._secret is None:
            raise WebhookRejectedError(
                "not_configured", "no app_secret configured to verify webhooks", status=401
            )
        given = headers.get(SIGNATURE_HEADER, "")
        if not given or not verify_hex(self._secret, body, given):
            raise WebhookRejectedError("bad_signature", "signature does not match", status=401)

    def webhook_order_ids(self, body: bytes) -> list[str]:
        """The order a verified delivery is about (none for another event or store)."""
        parsed = parse_webhook(body, self.options.store_id)
        return [] if parsed is None else [parsed[1]]

    async def register_webhooks(self, url: str) -> None:
        """Subscribe ``url`` to ``webhook_events`` (the ones it lacks), where Nuvemshop can
        deliver; otherwise say why and leave the order states to polling."""
        if self._secret is None:
            log.info("nuvemshop.webhooks_off", reason="no app_secret: polling only")
            return
        if (why := webhook_target(url)) is not None:
            log.warning("nuvemshop.webhooks_off", url=url, reason=f"{why}: polling only")
            return
        hooks = await self._call("GET", f"{self._base}/webhooks", params={"url": url})
        have = {
            h.get("event")
            for h in (hooks if isinstance(hooks, list) else [])
            if isinstance(h, Mapping) and h.get("url") == url
        }
        for event in self.options.webhook_events:
            if event not in have:
                await self._call(
                    "POST", f"{self._base}/webhooks", json_body={"event": event, "url": url}
                )
                log.info("nuvemshop.webhook_registered", webhook_event=event, url=url)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._session.close()
