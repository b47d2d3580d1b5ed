"""OneEntry connector (seed: ``shared/seeds/oneentry-createOrder.md``; audit in README.md here).

Dialect
    The SDK's ``Orders.createOrder(marker, body, langCode)`` is, over HTTP,
    ``POST {base_url}/api/content/orders-storage/marker/{marker}/orders?langCode=...`` with
    the body ``{formIdentifier, paymentAccountIdentifier, formData[{marker, value, type}],
    products[{productId, quantity}]}``. The project is identified by its app token in the
    ``x-app-token`` header (``ConnectorSettings.token``); createOrder is a 🔐 method, so the
    buyer account's access token goes in ``Authorization: Bearer``. Reads use
    ``GET .../orders/{id}`` and ``GET .../orders?offset&limit`` (``{items, total}``, the SDK's
    ``getAllOrdersByMarker``); a cancel, when configured, is ``PUT .../orders/{id}`` setting
    ``statusIdentifier``.

An expired user token
    A ``401`` is never the order's fault: the connector renews the user's tokens (the auth
    provider's ``refresh`` with ``options.refresh_token``, else its ``auth`` with
    ``options.login``/``password``), repeats the call once, and if it still cannot get in the
    order stays queued (``TransientError``) with a reason saying what to configure.

Idempotency
    OneEntry has no idempotency key. The nearest equivalent: the event ULID travels in the
    order's own form data, as the field ``options.event_id_marker`` (add that marker to the
    order form). When an earlier attempt may have created the order
    (``OrderRequest.may_exist``), the connector first looks for it among *all* the storage's
    orders: the platform may cap a page (10 by default, whatever ``limit`` asks) and does not
    document their order, so it pages until it has seen as many distinct orders as the
    storage reports (``total``), re-reading from the start when pages shifted under it, and
    raises ``TransientError`` rather than creating blindly when it cannot (``lookup_max_pages``).

Test orders (device ``env = "dev"``)
    OneEntry has no sandbox flag, so a test order is paid through
    ``options.test_payment_account_identifier`` (e.g. a "cash"/manual account that never
    charges). Without one configured a test order is refused, never charged.

States
    ``statusIdentifier`` maps through ``options.status_map`` (e.g. ``{"paid": "paid",
    "sent": "shipped"}``); an order without a status, or with an unmapped one, is ``ordered``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr

from edgeorder.ingest.connectors.base import (
    CatalogItem,
    OrderRequest,
    OrderResult,
    PermanentError,
    TransientError,
)
from edgeorder.ingest.connectors.common import (
    http_request,
    open_session,
    parse_options,
    to_minor_units,
)
from edgeorder.ingest.connectors.settings import ConnectorSettings
from edgeorder.protocol import State

__all__ = [
    "KeyScan",
    "OneEntryConnector",
    "OneEntryOptions",
    "build_order_body",
    "order_state",
]

log = structlog.get_logger(__name__)

PLATFORM = "oneentry"


class OneEntryOptions(BaseModel):
    """``ConnectorSettings.options`` for OneEntry, named after the createOrder seed."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

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
    status_map: dict[str, State] = Field(default_factory=dict)
    cancel_status_identifier: str | None = None
    # --- the buyer account (createOrder is a 🔐 method) ---------------------------------
    access_token: SecretStr | None = None
    """The user's access token; renewed by itself on a 401 with one of the two below."""
    auth_provider_marker: str = Field(default="email", min_length=1)
    refresh_token: SecretStr | None = None
    login: str | None = None
    password: SecretStr | None = None
    login_marker: str = "login"
    password_marker: str = "password"
    # --- the duplicate lookup -----------------------------------------------------------
    lookup_page_size: int = Field(
        default=100,
        ge=1,
        le=1000,
        validation_alias=AliasChoices("lookup_page_size", "lookup_limit"),
    )
    """``limit`` asked per page; the platform may give fewer (its module's record limit)."""
    lookup_max_pages: int = Field(default=1000, ge=1, le=100_000)


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


@dataclass
class KeyScan:
    """Paging through a storage whose pages may be capped and unordered, until every order it
    holds was seen once. Pure: feed it pages (``take``), ask where to read next (``offset``).

    With a stable order one pass does it; when the order changes between requests (or orders
    come and go meanwhile) a pass can miss some, so it starts over from offset 0 and keeps
    counting distinct orders until it has seen as many as the storage reports."""

    offset: int = 0
    pages: int = 0
    total: int | None = None
    seen: set[str] = field(default_factory=set)
    ran_out: bool = False

    def take(self, items: list[Any], total: Any) -> None:
        """One page of ``items`` read at ``self.offset``, and the storage's reported total."""
        self.pages += 1
        self.seen.update(str(o["id"]) for o in items if isinstance(o, Mapping) and "id" in o)
        self.total = total if isinstance(total, int) and not isinstance(total, bool) else None
        self.ran_out = not items
        self.offset += len(items)
        if self.total is not None and (self.ran_out or self.offset >= self.total):
            self.offset = 0  # a pass ended: read again from the start if any were missed

    @property
    def complete(self) -> bool:
        """Every order was seen (without a reported total: the pages ran out)."""
        if self.total is None:
            return self.ran_out
        return len(self.seen) >= self.total


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
    catalog_source = "options.products"

    async def catalog(self) -> list[CatalogItem]:
        """The SKUs of ``options.products``: the seed documents no product listing, and a
        SKU outside this map fails at the press ("no productId configured")."""
        return [CatalogItem(sku, f"productId {ref}") for sku, ref in self.options.products.items()]

    def __init__(self, settings: ConnectorSettings) -> None:
        self.options = opts = parse_options(OneEntryOptions, settings.options, PLATFORM)
        base = settings.base_url.rstrip("/")
        self._orders_url = f"{base}/api/content/orders-storage/marker/{opts.marker}/orders"
        self._auth_url = (
            f"{base}/api/content/users-auth-providers/marker/{opts.auth_provider_marker}/users"
        )
        self._access = opts.access_token.get_secret_value() if opts.access_token else None
        self._refresh = opts.refresh_token.get_secret_value() if opts.refresh_token else None
        self._generation = 0  # bumped at each renewal, so concurrent 401s renew once
        self._renewing = asyncio.Lock()
        self._session = open_session(
            settings.timeout_s, {"x-app-token": settings.token.get_secret_value()}
        )

    # --- HTTP with the user's token ---------------------------------------------------------

    async def _send(self, method: str, url: str, **kw: Any) -> Any:
        params = {"langCode": self.options.lang_code, **kw.pop("params", {})}
        headers = {"Authorization": f"Bearer {self._access}"} if self._access else None
        reply = await http_request(
            self._session,
            method,
            url,
            platform=PLATFORM,
            reason_of=_reason,
            params=params,
            headers=headers,
            **kw,
        )
        return reply.body

    async def _call(self, method: str, url: str, **kw: Any) -> Any:
        """One call as the user; a 401 renews the user's tokens and tries once more (a refused
        call created nothing), and stays transient when it cannot get in."""
        if self._access is None and self._can_log_in:
            await self._renew(self._generation)
        generation = self._generation
        try:
            return await self._send(method, url, **kw)
        except PermanentError as exc:
            if exc.status != 401:
                raise
            refused = exc
        if not await self._renew(generation):
            raise TransientError(
                f"{PLATFORM}: the user token was refused ({refused.reason}) and cannot be "
                "renewed: configure refresh_token or login/password",
                status=401,
            ) from refused
        try:
            return await self._send(method, url, **kw)
        except PermanentError as exc:
            if exc.status == 401:
                raise TransientError(
                    f"{PLATFORM}: still refused (401) after renewing the user token: {exc.reason}",
                    status=401,
                ) from exc
            raise

    @property
    def _can_log_in(self) -> bool:
        return self._login_body() is not None

    def _login_body(self) -> dict[str, Any] | None:
        """The auth provider's sign-in body (its form's login and password fields)."""
        opts = self.options
        if opts.login is None or opts.password is None:
            return None
        return {
            "authData": [
                {"marker": opts.login_marker, "value": opts.login},
                {"marker": opts.password_marker, "value": opts.password.get_secret_value()},
            ]
        }

    async def _renew(self, generation: int) -> bool:
        """New user tokens, once for every call that saw generation ``generation`` refused;
        False when there is no way to renew them (or the platform refused every way)."""
        async with self._renewing:
            if self._generation != generation:
                return True  # renewed while this call waited
            tokens = None
            if self._refresh is not None:
                tokens = await self._token_call("refresh", {"refreshToken": self._refresh})
            login = self._login_body()
            if tokens is None and login is not None:
                tokens = await self._token_call("auth", login)
            if tokens is None:
                return False
            self._access, self._refresh = tokens
            self._generation += 1
            log.info("oneentry.user_token_renewed", generation=self._generation)
            return True

    async def _token_call(self, action: str, body: dict[str, Any]) -> tuple[str, str | None] | None:
        """``POST .../users/{refresh|auth}``: the new ``(accessToken, refreshToken)``, or None
        when refused (a down platform raises ``TransientError``)."""
        try:
            reply = await http_request(
                self._session,
                "POST",
                f"{self._auth_url}/{action}",
                platform=PLATFORM,
                reason_of=_reason,
                json_body=body,
                params={"langCode": self.options.lang_code},
            )
        except PermanentError as exc:
            log.error("oneentry.user_token_refused", via=action, reason=exc.reason)
            return None
        data = reply.body
        access = data.get("accessToken") if isinstance(data, Mapping) else None
        if not isinstance(access, str) or not access:
            log.error("oneentry.user_token_unreadable", via=action)
            return None
        refresh = data.get("refreshToken")
        return access, refresh if isinstance(refresh, str) and refresh else None

    # --- orders ----------------------------------------------------------------------------

    def _result(self, order: Any) -> OrderResult:
        if not isinstance(order, Mapping) or "id" not in order:
            raise PermanentError(f"{PLATFORM}: answer without an order id: {str(order)[:200]}")
        return OrderResult(
            order_id=str(order["id"]),
            state=order_state(order, self.options.status_map),
            platform_status=order.get("statusIdentifier"),
            amount=to_minor_units(order.get("totalSum")),
            currency=order.get("currency") or None,
            raw=dict(order),
        )

    async def find_by_key(self, idempotency_key: str) -> OrderResult | None:
        """The order whose form data already carries ``idempotency_key``, looked for among
        every order of the storage (see the module docstring)."""
        opts, scan = self.options, KeyScan()
        while scan.pages < opts.lookup_max_pages:
            page = await self._call(
                "GET",
                self._orders_url,
                params={"offset": str(scan.offset), "limit": str(opts.lookup_page_size)},
            )
            items = page.get("items") if isinstance(page, Mapping) else page
            items = items if isinstance(items, list) else []
            for order in items:
                if isinstance(order, Mapping) and carries_key(
                    order, opts.event_id_marker, idempotency_key
                ):
                    return self._result(order)
            scan.take(items, page.get("total") if isinstance(page, Mapping) else None)
            if scan.complete:
                return None
        raise TransientError(
            f"{PLATFORM}: could not see every order of the storage in {scan.pages} pages "
            f"({len(scan.seen)} of {scan.total} seen) to rule out a duplicate; raise the "
            "module's record limit or lookup_max_pages"
        )

    async def create_order(self, request: OrderRequest) -> OrderResult:
        """Create the order unless an earlier attempt did (``request.may_exist``)."""
        body = build_order_body(request, self.options)
        if request.may_exist:
            existing = await self.find_by_key(request.idempotency_key)
            if existing is not None:
                log.info(
                    "oneentry_order_found",
                    event_id=request.idempotency_key,
                    order_id=existing.order_id,
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
