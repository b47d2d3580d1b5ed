"""The OpenAPI 3.1 document of the order core (served at /api/openapi.json)."""

from __future__ import annotations

from functools import cache
from typing import Any

from edgeorder.ordercore.catalog import SkuIn
from edgeorder.ordercore.checkout import CheckoutIn
from edgeorder.ordercore.lifecycle import ACTIONS, EVENTS, Action, OrderStatus
from edgeorder.ordercore.routes_orders import MAX_BATCH

__all__ = ["openapi_document"]

J = dict[str, Any]


def _ref(name: str) -> J:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: J, description: str) -> J:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> J:
    text = {
        400: "bad request: malformed JSON or a bad query parameter (Fields names each)",
        401: "missing or wrong bearer token",
        404: "unknown order / webhook",
        409: "illegal transition (body has the current Status) or existing SKU",
        422: "invalid fields (Fields names every bad one) or idempotency_conflict",
    }
    return {str(c): _json(_ref("Error"), text[c]) for c in codes}


def _param(name: str, where: str, schema: J, description: str, required: bool = False) -> J:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        "description": description,
    }


ID_PARAM = _param("id", "path", {"type": "integer", "minimum": 1}, "order id")
KEY_PARAM = _param(
    "Idempotency-Key",
    "header",
    {"type": "string", "maxLength": 255},
    "a retry with the same key and body replays the first answer (Idempotent-Replayed: true)",
)
PAGING = [
    _param("pageIndex", "query", {"type": "integer", "minimum": 1, "default": 1}, "page (1-based)"),
    _param(
        "pageSize",
        "query",
        {"type": "integer", "minimum": 1, "maximum": 200, "default": 25},
        "page size",
    ),
]
ORDER_FILTERS = [
    *PAGING,
    _param(
        "status", "query", {"type": "integer", "enum": [s.value for s in OrderStatus]}, "status"
    ),
    _param("id", "query", {"type": "integer"}, "order id"),
    _param("checkout", "query", {"type": "integer"}, "checkout id"),
    _param("merchantId", "query", {"type": "string", "maxLength": 36}, "merchant id"),
    _param("device", "query", {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}, "device id"),
    _param("order", "query", {"type": "string", "enum": ["asc", "desc"]}, "sort by id"),
    _param("startDate", "query", {"type": "string"}, "created on or after, dd-MM-yyyy (UTC)"),
    _param("endDate", "query", {"type": "string"}, "created on or before, dd-MM-yyyy (UTC)"),
]


def _order_list(side: str) -> J:
    return {
        "get": {
            "summary": f"List {side} orders (paged, filtered)",
            "parameters": ORDER_FILTERS,
            "responses": {"200": _json(_ref("OrderPage"), "a page of orders"), **_errors(400, 401)},
        }
    }


def _order_get(side: str) -> J:
    return {
        "get": {
            "summary": f"One {side} order",
            "parameters": [ID_PARAM],
            "responses": {"200": _json(_ref("Order"), "the order"), **_errors(401, 404)},
        }
    }


def _action(action: Action) -> J:
    op: J = {
        "summary": f"{action.value} the order; emits webhook event {EVENTS[action]}",
        "parameters": [ID_PARAM, KEY_PARAM],
        "responses": {"200": _json(_ref("Order"), "the updated order"), **_errors(401, 404, 409)},
    }
    if action is Action.CANCEL:
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": _ref("Cancel")}},
        }
        op["responses"].update(_errors(400, 422))
    return {"post": op}


def _checkouts() -> J:
    return {
        "post": {
            "summary": f"Batch checkout: 1..{MAX_BATCH} checkouts, each answered as /api/checkout",
            "description": (
                "Every item gets exactly the Status and Body that POST /api/checkout with its"
                " Checkout body and Idempotency-Key would answer (keys are shared with it, so"
                " either endpoint replays the other). The valid items are written in one group"
                " commit; a failing item fails alone. A bad envelope fails the whole request"
                " and writes nothing."
            ),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("CheckoutBatch")}},
            },
            "responses": {
                "200": _json(_ref("CheckoutBatchResult"), "one result per item, in order"),
                **_errors(400, 401, 422),
            },
        }
    }


_HEALTH: J = {
    "type": "object",
    "properties": {
        "status": {"enum": ["ok", "degraded"]},
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "ok": {"type": "boolean"},
                    "detail": {"type": "string"},
                },
            },
        },
    },
}


def _paths() -> J:
    paths: J = {
        "/livez": {
            "get": {
                "summary": "Liveness: 200 while the process serves (no auth)",
                "security": [],
                "responses": {"200": _json({"type": "object"}, '{"status": "alive"}')},
            }
        },
        "/healthz": {
            "get": {
                "summary": "Health: 200 when the database commits and no webhook delivery is "
                "overdue, else 503; every check with its detail (no auth)",
                "security": [],
                "responses": {
                    "200": _json(_HEALTH, '{"status": "ok", "checks": [...]}'),
                    "503": _json(_HEALTH, '{"status": "degraded", "checks": [...]}'),
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This document (no auth)",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            }
        },
        "/api/checkout": {
            "post": {
                "summary": "Checkout: one order per merchant; Idempotency-Key makes it once",
                "parameters": [KEY_PARAM],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Checkout")}},
                },
                "responses": {
                    "201": _json(
                        _ref("CheckoutResult"),
                        "created, or the original response replayed"
                        " (header Idempotent-Replayed: true)",
                    ),
                    **_errors(400, 401, 422),
                },
            }
        },
        "/api/checkouts": _checkouts(),
        "/api/order/sent": _order_list("sent"),
        "/api/order/received": _order_list("received"),
        "/api/order/sent/{id}": _order_get("sent"),
        "/api/order/received/{id}": _order_get("received"),
        "/api/order/{id}/history": {
            "get": {
                "summary": "Every change of the order, oldest first",
                "parameters": [ID_PARAM],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("HistoryEntry")}, "history"),
                    **_errors(401, 404),
                },
            }
        },
        "/api/sku": {
            "get": {
                "summary": "The catalog (paged)",
                "parameters": PAGING,
                "responses": {"200": _json(_ref("SkuPage"), "SKUs"), **_errors(400, 401)},
            },
            "post": {
                "summary": "Add a SKU (MerchantName creates or renames its merchant)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SkuIn")}},
                },
                "responses": {"201": _json(_ref("Sku"), "the SKU"), **_errors(400, 401, 409, 422)},
            },
        },
        "/api/webhooks": {
            "get": {
                "summary": "Webhook subscribers",
                "responses": {
                    "200": _json({"type": "object"}, "paged subscribers"),
                    **_errors(401),
                },
            },
            "post": {
                "summary": "Subscribe a URL to events (deliveries signed with Secret)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("WebhookIn")}},
                },
                "responses": {
                    "201": _json(_ref("Webhook"), "subscribed"),
                    **_errors(400, 401, 422),
                },
            },
        },
        "/api/webhooks/{id}": {
            "delete": {
                "summary": "Unsubscribe; undelivered deliveries are dropped",
                "parameters": [_param("id", "path", {"type": "integer"}, "webhook id")],
                "responses": {"204": {"description": "deleted"}, **_errors(401, 404)},
            }
        },
    }
    for action in ACTIONS:
        paths[f"/api/order/{{id}}/{action.value}"] = _action(action)
    return paths


def _obj(props: J, required: list[str] | None = None) -> J:
    schema: J = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


STR: J = {"type": "string"}
INT: J = {"type": "integer"}
BOOL: J = {"type": "boolean"}
NS = {"type": ["string", "null"]}
STATUS = _obj(
    {"Code": {"type": "integer", "enum": [s.value for s in OrderStatus]}, "Label": STR},
    ["Code", "Label"],
)


def _schemas() -> J:
    item = _obj(
        {k: INT for k in ("Id", "ProductId", "SkuId", "Amount", "Quantity", "Status")}
        | {"Sku": STR, "SkuDescription": STR}
    )
    order = _obj(
        {
            "Id": INT,
            "CheckoutId": INT,
            "CreatedOn": STR,
            "UpdatedOn": STR,
            "Status": STATUS,
            "MerchantId": STR,
            "MerchantName": STR,
            "Customer": {"type": "object"},
            "Shipping": {"type": ["object", "null"]},
            "PaymentMethod": {"type": ["object", "null"], "description": "Id is the CheckoutId"},
            "Currency": STR,
            "Amount": {"type": "integer", "description": "cents"},
            "Device": {"type": ["object", "null"], "properties": {"Id": STR}},
            "OrderItems": {"type": "array", "items": item},
            "Test": BOOL,
            "ClosedOn": NS,
            "CancelledOn": NS,
            "CancelReason": NS,
        }
    )
    sku = _obj(
        {k: INT for k in ("ProductId", "SkuId", "Price")}
        | {k: STR for k in ("Sku", "SkuDescription", "Currency", "MerchantId", "MerchantName")}
    )
    return {
        "Error": _obj(
            {
                "Error": STR,
                "Message": STR,
                "Fields": {"type": "array", "items": _obj({"Field": STR, "Reason": STR})},
                "Status": STATUS,
            },
            ["Error", "Message"],
        ),
        "Checkout": CheckoutIn.model_json_schema(ref_template="#/components/schemas/{model}"),
        "CheckoutResult": _obj(
            {"CheckoutId": INT, "Orders": {"type": "array", "items": _ref("Order")}}
        ),
        "CheckoutBatch": _obj(
            {
                "Checkouts": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                    "items": _obj(
                        {
                            "IdempotencyKey": {
                                "type": ["string", "null"],
                                "minLength": 1,
                                "maxLength": 255,
                                "description": "as the Idempotency-Key header; a bad one"
                                " is this item's 400",
                            },
                            "Checkout": _ref("Checkout"),
                        },
                        ["Checkout"],
                    ),
                }
            },
            ["Checkouts"],
        ),
        "CheckoutBatchResult": _obj(
            {
                "Results": {
                    "type": "array",
                    "items": _obj(
                        {
                            "Status": {"type": "integer", "description": "201, 400, 422, 500"},
                            "Replayed": {
                                "type": "boolean",
                                "description": "the stored answer of an earlier request",
                            },
                            "Body": {"oneOf": [_ref("CheckoutResult"), _ref("Error")]},
                        },
                        ["Status", "Replayed", "Body"],
                    ),
                }
            },
            ["Results"],
        ),
        "Order": order,
        "OrderPage": _page(_ref("Order")),
        "HistoryEntry": _obj(
            {
                "Id": INT,
                "At": STR,
                "Action": STR,
                "Status": STATUS,
                "Field": STR,
                "From": {},
                "To": {},
            }
        ),
        "Cancel": _obj(
            {
                "Reason": {"enum": ["customer", "fraud", "inventory", "other"]},
                "By": {"enum": ["merchant", "user"], "description": "merchant -> 21, user -> 22"},
            }
        ),
        "Sku": sku,
        "SkuIn": SkuIn.model_json_schema(),
        "SkuPage": _page(_ref("Sku")),
        "WebhookIn": _obj(
            {
                "Url": STR,
                "Events": {
                    "type": "array",
                    "items": {"enum": ["*", "order/created", *EVENTS.values()]},
                },
                "Secret": STR,
            },
            ["Url", "Events"],
        ),
        "Webhook": _obj({"Id": INT, "Url": STR, "Events": {"type": "array"}, "Secret": STR}),
        "WebhookDelivery": _obj(
            {"Id": INT, "Event": STR, "CreatedOn": STR, "Order": _ref("Order")},
            ["Id", "Event", "CreatedOn", "Order"],
        ),
    }


def _page(item: J) -> J:
    return _obj(
        {"Total": INT, "PageSize": INT, "PageIndex": INT, "Data": {"type": "array", "items": item}},
        ["Total", "PageSize", "PageIndex", "Data"],
    )


@cache
def openapi_document() -> J:
    """The document; built once."""
    schemas = _schemas()
    checkout = schemas["Checkout"]
    schemas.update(checkout.pop("$defs", {}))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "edgeorder order core",
            "version": "1",
            "description": (
                "BlackBox Order API dialect (PascalCase, amounts in cents) with the Nuvemshop "
                "lifecycle. Webhook deliveries POST a WebhookDelivery with headers "
                "X-Edgeorder-Event, X-Edgeorder-Delivery, X-Edgeorder-Timestamp (unix seconds "
                "of the attempt) and X-Edgeorder-Signature (sha256=HMAC-SHA256 of "
                "'<timestamp>.' + raw body keyed by the subscriber's Secret); "
                "delivery is at least once, in order per subscriber."
            ),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
    }
