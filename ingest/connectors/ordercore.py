"""The built-in order core (``ordercore/``), spoken to over HTTP like any other platform.

BlackBox Order API dialect: ``POST /api/checkout`` with ``Idempotency-Key: <event_id>``,
``GET /api/order/sent/{id}``, ``POST /api/order/{id}/cancel``, ``POST /api/webhooks``.

ingest orders for the owners of its devices, so its token is the order core's ``app``
principal (``ingest=SECRET:role=app``): it checks out for any buyer, sees as *sent* the orders
it created, cancels them as the user and receives the events of those orders only. A bare
(admin) token, as before principals existed, works too.
Under load the outbox hands several orders at once to ``create_orders``, which sends them in one
``POST /api/checkouts`` (each with its own idempotency key and its own answer): one HTTP round
trip per order was the largest cost of both services per event (see bench/README.md).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import orjson
import structlog

from edgeorder import protocol as p
from edgeorder.ingest.connectors.base import (
    CatalogItem,
    OrderRequest,
    OrderResult,
    PermanentError,
    PlatformError,
    TransientError,
)

__all__ = [
    "DEFAULT_PROFILE",
    "MAX_BATCH",
    "WEBHOOK_EVENTS",
    "OrderCoreConnector",
    "order_result",
    "state_for_code",
]

log = structlog.get_logger(__name__)

_CODES = {
    0: p.State.ORDERED,
    1: p.State.ORDERED,
    2: p.State.PAID,
    5: p.State.SHIPPED,
    10: p.State.DELIVERED,
    20: p.State.FAILED,
    21: p.State.CANCELLED,
    22: p.State.CANCELLED,
}

DEFAULT_PROFILE: dict[str, Any] = {
    "Customer": {
        "UserId": "00000000-0000-4000-8000-00000000e0e0",
        "Name": "edgeorder device owner",
        "Email": "owner@edgeorder.invalid",
        "LegalId": "000.000.000-00",
        "IpAddress": "127.0.0.1",
    },
    "Shipping": {
        "Type": 0,
        "Address": {
            "Alias": "Home",
            "Street": "Av. Marechal Camara",
            "Number": "160",
            "District": "Centro",
            "City": "Rio de Janeiro",
            "State": "RJ",
            "ZipCode": "20020-080",
            "Country": "Brasil",
        },
    },
    "PaymentMethod": {
        "Type": 0,
        "Data": {
            "MaskedValue": "411111******1111",
            "Brand": "visa",
            "ValidThru": "12/2030",
            "Token": "00000000-0000-4000-8000-0000000c0ffe",
        },
    },
}
"""A valid buyer for devices and installations that configured none (demo, tests)."""


WEBHOOK_EVENTS = (
    "order/paid",
    "order/denied",
    "order/shipped",
    "order/completed",
    "order/cancelled",
    "order/closed",
    "order/reopened",
)
"""The order events ingest subscribes to: every one but ``order/created`` and
``order/authorized``, which leave an order ``ordered`` -- ingest knows that from the checkout
itself, and a webhook per new order doubled both services' work per event (the bench's
deliveries backlog grew by hundreds a second under load, ahead of the changes that matter)."""


def state_for_code(code: int) -> p.State | None:
    """BlackBox ``Status.Code`` -> protocol state (None for a code we don't know)."""
    return _CODES.get(code)


def order_result(order: dict[str, Any]) -> OrderResult:
    """An ``OrderResult`` from a BlackBox ``Order`` object."""
    code = int(order.get("Status", {}).get("Code", 0))
    return OrderResult(
        order_id=str(order["Id"]),
        state=state_for_code(code) or p.State.ORDERED,
        platform_status=code,
        amount=order.get("Amount"),
        currency=order.get("Currency"),
        raw=order,
    )


CATALOG_PAGE_SIZE = 200
"""The order core's largest ``pageSize`` of ``GET /api/sku``."""
CATALOG_MAX_PAGES = 50
"""At most this many pages (10,000 SKUs) are read; a larger catalog is cut there (logged)."""


def catalog_items(page: Any) -> list[CatalogItem]:
    """The SKUs of one ``GET /api/sku`` page (``Data[].Sku``, ``SkuDescription``, ``Price``
    in cents, ``Currency``); ``TransientError`` for a reply of another shape."""
    data = page.get("Data") if isinstance(page, dict) else None
    if not isinstance(data, list):
        raise TransientError(f"order core: unexpected catalog page {str(page)[:200]}")
    items = []
    for row in data:
        if not isinstance(row, dict) or not isinstance(row.get("Sku"), str):
            raise TransientError(f"order core: unexpected catalog entry {str(row)[:200]}")
        label = str(row.get("SkuDescription") or "")
        price, currency = row.get("Price"), row.get("Currency")
        if isinstance(price, int) and isinstance(currency, str):
            label = f"{label} ({price / 100:.2f} {currency})".strip()
        items.append(CatalogItem(row["Sku"], label))
    return items


MAX_BATCH = 100
"""Most checkouts the order core takes in one ``POST /api/checkouts``."""


def _batch_item(item: Any) -> OrderResult | PlatformError:
    """One entry of a ``POST /api/checkouts`` reply, as the single call would have ended."""
    if not isinstance(item, dict) or not isinstance(item.get("Status"), int):
        return TransientError(f"order core: unexpected batch entry {str(item)[:200]}")
    status, body = item["Status"], item.get("Body")
    if 200 <= status < 300:
        orders = body.get("Orders") if isinstance(body, dict) else None
        if isinstance(orders, list) and orders and isinstance(orders[0], dict):
            try:
                return order_result(orders[0])
            except (KeyError, TypeError, ValueError):
                pass
        return TransientError(f"order core: unexpected checkout reply {str(body)[:200]}")
    return _refusal(status, body)


def _refusal(status: int, body: Any) -> PlatformError:
    """A non-2xx answer: 429 and 5xx are worth a retry, any other refusal is final."""
    reason = _reason(status, body)
    if status == 429 or status >= 500:
        return TransientError(f"order core HTTP {status}: {reason}", status=status)
    return PermanentError(reason, status=status)


def _reason(status: int, body: Any) -> str:
    if isinstance(body, dict):
        message = body.get("Message") or body.get("Error") or ""
        fields = body.get("Fields")
        if fields:
            message = f"{message} ({json.dumps(fields, ensure_ascii=False)[:300]})"
        if message:
            return str(message)
    return f"HTTP {status}"


class OrderCoreConnector:
    """``Connector`` for the built-in order core."""

    name = "ordercore"
    catalog_source = "the order core's GET /api/sku"

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 5.0,
        default_profile: dict[str, Any] | None = None,
        batch_max: int = 32,
    ) -> None:
        if not 1 <= batch_max <= MAX_BATCH:
            raise ValueError(f"batch_max must be 1-{MAX_BATCH}")
        self.base_url = base_url.rstrip("/")
        self.batch_max = batch_max
        self._batch_endpoint = batch_max > 1  # False once the order core proved not to have it
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._profile = default_profile or DEFAULT_PROFILE
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._token}"},
                connector=aiohttp.TCPConnector(limit=64),
            )
        return self._session

    async def _call(
        self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        if body is not None:  # orjson: the batch bodies and replies are most of the bytes
            headers = {**(headers or {}), "Content-Type": "application/json"}
        try:
            async with self._http().request(
                method,
                self.base_url + path,
                headers=headers,
                data=None if body is None else orjson.dumps(body),
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except TimeoutError as exc:
            raise TransientError("order core: no answer within the timeout") from exc
        except aiohttp.ClientError as exc:
            raise TransientError(f"order core unreachable: {exc.__class__.__name__}") from exc
        try:
            data = orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError:
            data = raw.decode("utf-8", errors="replace")
        if 200 <= status < 300:
            return data
        raise _refusal(status, data)

    def checkout_body(self, request: OrderRequest) -> dict[str, Any]:
        """The ``POST /api/checkout`` body for one device order."""
        profile = {**self._profile, **request.profile}
        body: dict[str, Any] = {
            key: profile[key]
            for key in ("MerchantId", "Customer", "Shipping", "PaymentMethod")
            if key in profile
        }
        body.update(
            {
                "Currency": profile.get("Currency", "BRL"),
                "Items": [{"Sku": request.sku, "Quantity": request.quantity}],
                "Device": {"Id": request.device_id},
                "Test": request.test,
            }
        )
        return body

    async def create_order(self, request: OrderRequest) -> OrderResult:
        data = await self._call(
            "POST",
            "/api/checkout",
            body=self.checkout_body(request),
            headers={"Idempotency-Key": request.idempotency_key},
        )
        try:
            return order_result(data["Orders"][0])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise TransientError(
                f"order core: unexpected checkout reply {str(data)[:200]}"
            ) from exc

    async def create_orders(
        self, requests: list[OrderRequest]
    ) -> list[OrderResult | PlatformError]:
        """Several orders in one ``POST /api/checkouts``; one answer per request, in order.

        An order core without that endpoint (404/405), or one that refuses the request as a
        whole, gets the orders one by one instead, so every order still has its own verdict."""
        if len(requests) == 1 or not self._batch_endpoint:
            return await self._one_by_one(requests)
        body = {
            "Checkouts": [
                {"IdempotencyKey": r.idempotency_key, "Checkout": self.checkout_body(r)}
                for r in requests
            ]
        }
        try:
            data = await self._call("POST", "/api/checkouts", body=body)
        except PermanentError as exc:
            if exc.status in (404, 405):
                self._batch_endpoint = False
                log.warning("ordercore.no_batch_endpoint", status=exc.status)
            else:
                log.error(
                    "ordercore.batch_refused",
                    status=exc.status,
                    reason=exc.reason,
                    orders=len(requests),
                )
            return await self._one_by_one(requests)
        results = data.get("Results") if isinstance(data, dict) else None
        if not isinstance(results, list) or len(results) != len(requests):
            raise TransientError(f"order core: unexpected batch reply {str(data)[:200]}")
        return [_batch_item(item) for item in results]

    async def _one_by_one(self, requests: list[OrderRequest]) -> list[OrderResult | PlatformError]:
        async def one(request: OrderRequest) -> OrderResult | PlatformError:
            try:
                return await self.create_order(request)
            except PlatformError as exc:
                return exc

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def cancel_order(self, order_id: str, *, idempotency_key: str) -> OrderResult:
        data = await self._call(
            "POST",
            f"/api/order/{order_id}/cancel",
            body={"Reason": "customer", "By": "user"},
            headers={"Idempotency-Key": idempotency_key},
        )
        if isinstance(data, dict) and "Id" in data:
            return order_result(data)
        return await self.get_order(order_id)

    async def get_order(self, order_id: str) -> OrderResult:
        # the buyer's perspective: an app token has no received orders (that is the seller's)
        data = await self._call("GET", f"/api/order/sent/{order_id}")
        return order_result(data)

    async def catalog(self) -> list[CatalogItem]:
        """Every SKU of ``GET /api/sku``, page by page (at most ``CATALOG_MAX_PAGES``)."""
        items: list[CatalogItem] = []
        for index in range(1, CATALOG_MAX_PAGES + 1):
            page = await self._call(
                "GET", f"/api/sku?pageIndex={index}&pageSize={CATALOG_PAGE_SIZE}"
            )
            found = catalog_items(page)
            items.extend(found)
            total = page.get("Total")
            if len(found) < CATALOG_PAGE_SIZE or (isinstance(total, int) and len(items) >= total):
                return items
        log.warning("ordercore.catalog_cut", skus=len(items), pages=CATALOG_MAX_PAGES)
        return items

    async def register_webhook(self, url: str, secret: str) -> None:
        """Ask the order core to POST the order events of ``WEBHOOK_EVENTS`` to ``url``,
        signed with ``secret``; earlier registrations of the same URL (an older secret) are
        removed first."""
        existing = await self._call("GET", "/api/webhooks")
        hooks = existing.get("Data", []) if isinstance(existing, dict) else []
        for hook in hooks:
            if isinstance(hook, dict) and hook.get("Url") == url:
                await self._call("DELETE", f"/api/webhooks/{hook['Id']}")
        await self._call(
            "POST",
            "/api/webhooks",
            body={"Url": url, "Events": list(WEBHOOK_EVENTS), "Secret": secret},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            # let the connector's transports finish closing (aiohttp's documented grace period)
            await asyncio.sleep(0)
