"""e-vendi connector (seed: ``shared/seeds/evendi-closeOrder.md``).

What it covers
    e-vendi's published method is ``POST {base_url}/api/closeOrder`` ("Finalizar Pedido"): it
    *finalizes* an order that already exists on e-vendi (opened by the shop's e-vendi
    storefront or back office). It cannot open a new order. So with e-vendi a device button
    means "finalize the standing order prepared for this device and product": the operator
    opens that order on e-vendi once and puts its id in the options (``order_ids``), and each
    press closes it.

How the connector maps it (field by field)
    ``env``: ``"dev"`` when the device is in test mode (``OrderRequest.test``), else
    ``"prod"`` (prod debits/credits real transactions; dev never does).
    ``integrationToken``: ``ConnectorSettings.token`` (sent in the body, as the seed says).
    ``organizationExternalId``: ``options.organization_external_id``.
    ``orderId``: ``options.order_ids["<device_id>/<sku>"]``, else ``options.order_ids[sku]``.
    A ``200`` with ``success`` true (JSON ``{"success": true}`` or the bare text
    ``success``) means ``ordered``; ``success`` false, 400, 405 and 415 are permanent
    refusals with the seed's own meaning as the reason.

Idempotency
    e-vendi has no idempotency key. The nearest equivalent is the ``orderId`` itself: the
    call targets one existing order, so a retry after a lost reply finalizes the same order
    again and can never create a second one. The event ULID is only logged beside it.

Not offered by the seed: cancel and read. ``cancel_order`` and ``get_order`` raise
``PermanentError`` saying so; ingest then leaves the order's later states to e-vendi.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field

from edgeorder.ingest.connectors.base import OrderRequest, OrderResult, PermanentError
from edgeorder.ingest.connectors.common import http_request, open_session, parse_options
from edgeorder.ingest.settings import ConnectorSettings
from edgeorder.protocol import State

__all__ = ["EvendiConnector", "EvendiOptions", "build_close_body", "order_id_for"]

log = structlog.get_logger(__name__)

PLATFORM = "e-vendi"

_SEED_REASONS = {
    400: "the server did not understand the request (invalid syntax)",
    405: "wrong HTTP method for closeOrder",
    415: "missing or wrong Content-Type (application/json expected)",
}


class EvendiOptions(BaseModel):
    """``ConnectorSettings.options`` for e-vendi."""

    model_config = ConfigDict(extra="forbid")

    organization_external_id: str = Field(min_length=1)
    """``organizationExternalId``: your client's id in your own database."""
    order_ids: dict[str, str] = Field(min_length=1)
    """``"<device_id>/<sku>"`` or ``"<sku>"`` -> the e-vendi ``orderId`` a press finalizes."""
    env: Literal["dev", "prod"] | None = None
    """Force ``env`` for every call (e.g. ``dev`` on a staging ingest); None = per device."""


def order_id_for(req: OrderRequest, opts: EvendiOptions) -> str:
    """The e-vendi order a press of ``req.device_id`` for ``req.sku`` finalizes."""
    order_id = opts.order_ids.get(f"{req.device_id}/{req.sku}") or opts.order_ids.get(req.sku)
    if not order_id:
        raise PermanentError(
            f"{PLATFORM}: no orderId configured for {req.device_id}/{req.sku} or {req.sku}"
        )
    return order_id


def build_close_body(req: OrderRequest, opts: EvendiOptions, token: str) -> dict[str, str]:
    """The closeOrder JSON body, every attribute of the seed."""
    return {
        "env": opts.env or ("dev" if req.test else "prod"),
        "integrationToken": token,
        "organizationExternalId": opts.organization_external_id,
        "orderId": order_id_for(req, opts),
    }


def succeeded(body: Any) -> bool:
    """True for the seed's success answer: ``{"success": true}`` or the text ``success``."""
    if isinstance(body, Mapping):
        return body.get("success") is True
    if isinstance(body, bool):
        return body
    return isinstance(body, str) and body.strip().lower() in ("success", "true")


def _reason(status: int, body: Any) -> str:
    said = ""
    if isinstance(body, Mapping):
        said = str(body.get("message") or body.get("error") or "")
    elif isinstance(body, str):
        said = body.strip()
    known = _SEED_REASONS.get(status, f"HTTP {status}")
    return f"{known}: {said}" if said else known


class EvendiConnector:
    """Finalizes standing e-vendi orders; see the module docstring for the mapping."""

    name = PLATFORM

    def __init__(self, settings: ConnectorSettings) -> None:
        self.options = parse_options(EvendiOptions, settings.options, PLATFORM)
        self._token = settings.token.get_secret_value()
        self._url = f"{settings.base_url.rstrip('/')}/api/closeOrder"
        self._session = open_session(settings.timeout_s, {"Content-Type": "application/json"})

    async def create_order(self, request: OrderRequest) -> OrderResult:
        """Finalize the order configured for the device and SKU (``closeOrder``)."""
        body = build_close_body(request, self.options, self._token)
        reply = (
            await http_request(
                self._session,
                "POST",
                self._url,
                platform=PLATFORM,
                reason_of=_reason,
                json_body=body,
            )
        ).body
        if not succeeded(reply):
            raise PermanentError(f"{PLATFORM}: closeOrder {body['orderId']} answered {reply!r}")
        log.info(
            "evendi_order_closed",
            order_id=body["orderId"],
            env=body["env"],
            event_id=request.idempotency_key,
        )
        return OrderResult(
            order_id=body["orderId"],
            state=State.ORDERED,
            platform_status="closed",
            raw=reply if isinstance(reply, dict) else {"reply": reply},
        )

    async def cancel_order(self, order_id: str, *, idempotency_key: str) -> OrderResult:
        """Not in the e-vendi API: always ``PermanentError``."""
        raise PermanentError(f"{PLATFORM}: the API has no cancel method; cancel in e-vendi")

    async def get_order(self, order_id: str) -> OrderResult:
        """Not in the e-vendi API: always ``PermanentError``."""
        raise PermanentError(f"{PLATFORM}: the API has no method to read an order")

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._session.close()
