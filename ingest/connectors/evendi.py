"""e-vendi connector (seed: ``shared/seeds/evendi-closeOrder.md``; audit in README.md here).

What a button means on e-vendi
    e-vendi's one published method, ``POST {base_url}/api/closeOrder`` ("Finalizar Pedido"),
    *finalizes* an order that already exists on e-vendi; nothing in the API opens, reads or
    cancels one. So the operator assigns pending e-vendi orders to a device (REST
    ``/api/evendi/assignments``, ``edgeorder evendi assign``, or the device page) and each
    press finalizes the device's oldest one: the outbox worker claims it for the press
    (``ingest.store.evendi_assignments``) and hands it over as ``OrderRequest.order_id``.
    With none pending the press is ``rejected`` ("no pending e-vendi order is assigned ...").
    A successful close is final: e-vendi reports nothing later, so the order is *settled*: it
    no longer holds the order-in-flight throttle and is never polled.

Field by field
    ``env``: ``env_names[dev|prod]`` after the device's test mode (``OrderRequest.test``), or
    ``options.env`` for every call. The seed's table writes ``Dev``/``Prod`` (the default
    here); its example writes ``"dev"``: set ``env_names`` to match what your account takes.
    ``integrationToken``: ``ConnectorSettings.token`` (in the body, as the seed says).
    ``organizationExternalId``: ``options.organization_external_id``.
    ``orderId``: the claimed assignment.
    A ``200`` whose body is ``{"success": true}`` or the text ``success`` closed it;
    ``success: false`` is a refusal; 400, 405 and 415 are refusals with the seed's meaning.

Exactly once
    e-vendi has no idempotency key; the claim is the equivalent: keyed by the press's
    ``event_id``, so every retry of one press targets the same order and no press ever
    takes two. A retry after a lost reply may find the order already closed by the lost
    call: when ``OrderRequest.may_exist`` (an earlier call for this press started) an answer
    ``success: false`` is taken as that earlier close and logged (``evendi.close_assumed``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgeorder.ingest.connectors.base import OrderRequest, OrderResult, PermanentError
from edgeorder.ingest.connectors.common import http_request, open_session, parse_options
from edgeorder.ingest.connectors.settings import ConnectorSettings
from edgeorder.protocol import State

__all__ = [
    "EvendiConnector",
    "EvendiOptions",
    "answer_of",
    "build_close_body",
    "env_value",
]

log = structlog.get_logger(__name__)

PLATFORM = "e-vendi"

_SEED_REASONS = {
    400: "the server did not understand the request (invalid syntax)",
    405: "wrong HTTP method for closeOrder (POST expected)",
    415: "missing or wrong Content-Type (application/json expected)",
}

Answer = Literal["closed", "refused", "unknown"]


class EnvNames(BaseModel):
    """How ``env`` is spelled for a test (``dev``) and a live (``prod``) device."""

    model_config = ConfigDict(extra="forbid")

    dev: str = Field(default="Dev", min_length=1)
    prod: str = Field(default="Prod", min_length=1)


class EvendiOptions(BaseModel):
    """``ConnectorSettings.options`` for e-vendi."""

    model_config = ConfigDict(extra="forbid")

    organization_external_id: str = Field(min_length=1)
    """``organizationExternalId``: your client's id in your own database."""
    env: Literal["dev", "prod"] | None = None
    """Force ``env`` for every call (e.g. ``dev`` on a staging ingest); None = per device."""
    env_names: EnvNames = Field(default_factory=EnvNames)
    """The seed's table says ``Dev``/``Prod``, its example ``dev``: the table by default."""

    @model_validator(mode="before")
    @classmethod
    def _no_static_order_ids(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "order_ids" in data:
            raise ValueError(
                "order_ids is gone: a press now closes the next e-vendi order assigned to "
                "its device (edgeorder evendi assign DEVICE ORDER_ID, or POST "
                "/api/evendi/assignments)"
            )
        return data


# --- pure mapping -----------------------------------------------------------------------------


def env_value(req: OrderRequest, opts: EvendiOptions) -> str:
    """``env`` for ``req``: forced by the options, else after the device's test mode."""
    mode = opts.env or ("dev" if req.test else "prod")
    return opts.env_names.dev if mode == "dev" else opts.env_names.prod


def build_close_body(req: OrderRequest, opts: EvendiOptions, token: str) -> dict[str, str]:
    """The closeOrder JSON body, every attribute of the seed."""
    if req.order_id is None:
        raise PermanentError(f"{PLATFORM}: no assigned orderId to finalize")
    return {
        "env": env_value(req, opts),
        "integrationToken": token,
        "organizationExternalId": opts.organization_external_id,
        "orderId": req.order_id,
    }


def answer_of(body: Any) -> Answer:
    """The seed's 200 body: ``{"success": true|false}`` (its table) or the text ``success``
    (its example); anything else is ``unknown``."""
    if isinstance(body, Mapping):
        flag = body.get("success")
    elif isinstance(body, bool):
        flag = body
    elif isinstance(body, str):
        flag = {"success": True, "true": True, "false": False}.get(body.strip().lower())
    else:
        flag = None
    if flag is True:
        return "closed"
    return "refused" if flag is False else "unknown"


def _reason(status: int, body: Any) -> str:
    said = ""
    if isinstance(body, Mapping):
        said = str(body.get("message") or body.get("error") or "")
    elif isinstance(body, str):
        said = body.strip()[:300]
    known = _SEED_REASONS.get(status, f"HTTP {status}")
    return f"{known}: {said}" if said else known


# --- I/O shell ----------------------------------------------------------------------------------


class EvendiConnector:
    """Finalizes the e-vendi order claimed for each press; see the module docstring."""

    name = PLATFORM
    finalizes_assigned_orders = True

    def __init__(self, settings: ConnectorSettings) -> None:
        self.options = parse_options(EvendiOptions, settings.options, PLATFORM)
        self._token = settings.token.get_secret_value()
        self._url = f"{settings.base_url.rstrip('/')}/api/closeOrder"
        self._session = open_session(settings.timeout_s, {"Content-Type": "application/json"})

    async def create_order(self, request: OrderRequest) -> OrderResult:
        """Finalize ``request.order_id`` (``closeOrder``): a settled order, or why not."""
        body = build_close_body(request, self.options, self._token)
        order_id = body["orderId"]
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
        answer = answer_of(reply)
        if answer == "refused" and request.may_exist:
            # An earlier call for this very press started; its reply was lost. e-vendi says it
            # cannot close the order now, which is what it says once that call closed it.
            log.warning("evendi.close_assumed", order_id=order_id, event_id=request.idempotency_key)
            answer = "closed"
        if answer == "refused":
            raise PermanentError(
                f"{PLATFORM}: closeOrder {order_id} answered success: false (closed or "
                "cancelled already, or unknown to e-vendi)"
            )
        if answer == "unknown":
            raise PermanentError(
                f"{PLATFORM}: closeOrder {order_id} gave an unexpected answer: {str(reply)[:200]}"
            )
        log.info(
            "evendi.order_closed",
            order_id=order_id,
            env=body["env"],
            event_id=request.idempotency_key,
        )
        return OrderResult(
            order_id=order_id,
            state=State.ORDERED,
            platform_status="closed",
            raw=reply if isinstance(reply, dict) else {"reply": reply},
            settled=True,
        )

    async def cancel_order(self, order_id: str, *, idempotency_key: str) -> OrderResult:
        """Not in the e-vendi API: always ``PermanentError``."""
        raise PermanentError(f"{PLATFORM}: the API has no cancel method; cancel in e-vendi")

    async def get_order(self, order_id: str) -> OrderResult:
        """Not in the e-vendi API: always ``PermanentError`` (its orders are settled, so
        ingest never polls them)."""
        raise PermanentError(f"{PLATFORM}: the API has no method to read an order")

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._session.close()
