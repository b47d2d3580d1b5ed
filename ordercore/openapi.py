"""The OpenAPI 3.1 document of the order core, made from the endpoints and their models.

Nothing here is written by hand but prose: paths and methods are the registered endpoints,
request schemas the pydantic models the handlers validate with, parameters the query models'
fields, responses each endpoint's declared answers plus the ones every endpoint of its kind
can give (400 for any input, 401 with a token, 403 for a role, 404 for an ``{id}``, 413 for a
body). Served at ``GET /api/openapi.json``.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from edgeorder import __version__
from edgeorder.ordercore import health, routes_admin, routes_orders
from edgeorder.ordercore.endpoints import ALL_ROLES, Endpoint, Reply
from edgeorder.ordercore.fields import IDEMPOTENCY_KEY, MAX_ID
from edgeorder.ordercore.schemas import ErrorOut, EventOut
from edgeorder.ordercore.views import dumps

__all__ = ["ENDPOINTS", "openapi_document", "openapi_json"]

J = dict[str, Any]
ENDPOINTS: list[Endpoint] = [*health.ENDPOINTS, *routes_admin.ENDPOINTS, *routes_orders.ENDPOINTS]
REF = "#/components/schemas/{model}"

DESCRIPTION = """\
The built-in order core of edgeorder: the BlackBox Order API dialect (PascalCase JSON, amounts
in cents, pages `{Total, PageSize, PageIndex, Data}`) with the Nuvemshop order lifecycle.

**Tokens and perspectives.** `Authorization: Bearer <token>`; each token speaks for one
principal: `admin` (everything), `merchant` (a MerchantId: the orders it received, their
lifecycle), `customer` (a UserId: the orders it sent; cancel) or `app` (a sales channel such
as edgeorder's ingest: checks out for its buyers, sees and cancels the orders it created).
An order outside the token's scope is 404; an operation outside its role is 403.

**Errors.** `{"Error": code, "Message": text, "Fields": [{"Field", "Reason"}]}`. 400: the
request breaks this document (JSON, types, lengths, patterns, required fields, a header or a
query parameter). 422: well formed, but the catalog or the order refuses it (an unknown SKU, a
SKU in another currency) or an Idempotency-Key was used with another body. 409: not allowed
in the order's current state.
"""


def _models() -> tuple[list[type[BaseModel]], list[type[BaseModel]]]:
    inputs: list[type[BaseModel]] = []
    outputs: list[type[BaseModel]] = [ErrorOut, EventOut]
    for ep in ENDPOINTS:
        if ep.body is not None:
            inputs.append(ep.body)
        outputs += [r.model for r in ep.replies if r.model is not None]
    from edgeorder.ordercore.checkout import CheckoutIn

    inputs.append(CheckoutIn)  # the schema of each batch item's Checkout
    return list(dict.fromkeys(inputs)), list(dict.fromkeys(outputs))


def _components() -> J:
    inputs, outputs = _models()
    pairs: list[tuple[type[BaseModel], Any]] = [(m, "validation") for m in inputs]
    pairs += [(m, "serialization") for m in outputs]
    _, defs = models_json_schema(pairs, ref_template=REF)
    return dict(sorted(defs.get("$defs", {}).items()))


def _ref(model: type[BaseModel]) -> J:
    return {"$ref": REF.format(model=model.__name__)}


def _query_schema(prop: J) -> J:
    """A query field's schema without pydantic's null branch (absent is how None is said)."""
    schema = {k: v for k, v in prop.items() if k not in ("title", "description", "default")}
    branches = schema.pop("anyOf", None)
    if branches is not None:
        kept = [b for b in branches if b != {"type": "null"}]
        schema = {**(kept[0] if len(kept) == 1 else {"anyOf": kept}), **schema}
    if "default" in prop and prop["default"] is not None:
        schema["default"] = prop["default"]
    return schema


def _query_parameters(model: type[BaseModel]) -> list[J]:
    schema = model.model_json_schema(by_alias=True, ref_template=REF)
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema["properties"].items():
        param: J = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": _query_schema(prop),
        }
        if prop.get("description"):
            param["description"] = prop["description"]
        params.append(param)
    return params


ID_PARAMETER: J = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
}


def _key_parameter() -> J:
    schema = IDEMPOTENCY_KEY.json_schema()
    description = schema.pop("description", "")
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _parameters(ep: Endpoint) -> list[J]:
    params: list[J] = []
    if "{id}" in ep.path:
        params.append(ID_PARAMETER)
    if ep.idempotency_key:
        params.append(_key_parameter())
    if ep.query is not None:
        params += _query_parameters(ep.query)
    return params


def _content(reply: Reply) -> J | None:
    if reply.text is not None:
        return {reply.text: {"schema": {"type": "string"}}}
    if reply.model is None:
        return {"application/json": {"schema": {"type": "object"}}} if reply.json else None
    schema = _ref(reply.model)
    if reply.many:
        schema = {"type": "array", "items": schema}
    return {"application/json": {"schema": schema}}


def _response(reply: Reply) -> J:
    out: J = {"description": reply.description}
    content = _content(reply)
    if content is not None:
        out["content"] = content
    if reply.headers:
        out["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in reply.headers
        }
    return out


def _implied(ep: Endpoint) -> list[Reply]:
    """The answers every endpoint of this kind can give, besides its own."""
    implied: list[Reply] = []
    if ep.body is not None or ep.raw_body or ep.query is not None or ep.idempotency_key:
        implied.append(Reply(400, ErrorOut, "the request breaks this document (Fields says how)"))
    if ep.roles is not None:
        implied.append(
            Reply(
                401,
                ErrorOut,
                "no bearer token, or an unknown one",
                headers=(("WWW-Authenticate", "Bearer"),),
            )
        )
    if ep.roles is not None and ep.roles != ALL_ROLES:
        roles = ", ".join(sorted(r.value for r in ep.roles))
        implied.append(Reply(403, ErrorOut, f"forbidden: only for {roles} tokens"))
    if "{id}" in ep.path:
        implied.append(Reply(404, ErrorOut, "not found"))
    if ep.body is not None or ep.raw_body:
        implied.append(Reply(413, ErrorOut, "payload_too_large: the body is over 1 MiB"))
    return implied


LINKS: dict[tuple[str, str, int], tuple[str, str]] = {
    ("POST", "/api/checkout", 201): ("/api/order/", "$response.body#/Orders/0/Id"),
    ("POST", "/api/webhooks", 201): ("/api/webhooks/", "$response.body#/Id"),
}
"""Where a created thing's id can be used next: (operation, status) -> (paths, the id)."""


def _links(ep: Endpoint, status: int) -> J:
    link = LINKS.get((ep.method, ep.path, status))
    if link is None:
        return {}
    prefix, value = link
    return {
        _operation_id(other): {"operationId": _operation_id(other), "parameters": {"id": value}}
        for other in ENDPOINTS
        if other.path.startswith(prefix) and "{id}" in other.path
    }


def _responses(ep: Endpoint) -> J:
    replies: dict[int, Reply] = {r.status: r for r in _implied(ep)}
    for reply in ep.replies:
        known = replies.get(reply.status)
        if known is not None and reply.model is ErrorOut:
            text = f"{reply.description}; {known.description}"
            reply = Reply(reply.status, ErrorOut, text, headers=reply.headers or known.headers)
        replies[reply.status] = reply
    out = {}
    for status in sorted(replies):
        response = _response(replies[status])
        links = _links(ep, status)
        if links:
            response["links"] = links
        out[str(status)] = response
    return out


def _operation_id(ep: Endpoint) -> str:
    return f"{ep.method.lower()}_{_slug(ep.path)}"


def _operation(ep: Endpoint) -> J:
    op: J = {
        "operationId": _operation_id(ep),
        "summary": ep.summary,
        "tags": [ep.tag],
        "responses": _responses(ep),
    }
    if ep.description:
        op["description"] = ep.description
    params = _parameters(ep)
    if params:
        op["parameters"] = params
    if ep.body is not None:
        op["requestBody"] = {
            "required": ep.body_required,
            "content": {"application/json": {"schema": _ref(ep.body)}},
        }
    if ep.roles is None:
        op["security"] = []
    else:
        op["x-roles"] = sorted(r.value for r in ep.roles)
    return op


def _slug(path: str) -> str:
    """``/api/order/sent/`` -> ``api_order_sent_``: a trailing slash keeps its own name."""
    return "".join(c if c.isalnum() else "_" for c in path).removeprefix("_")


def _paths() -> J:
    paths: J = {}
    for ep in ENDPOINTS:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep)
    return paths


def _webhooks() -> J:
    headers = [
        ("X-Edgeorder-Event", "the event name"),
        ("X-Edgeorder-Delivery", "the delivery id (the body's Id); a redelivery repeats it"),
        ("X-Edgeorder-Timestamp", "unix seconds of this attempt (each retry is signed anew)"),
        (
            "X-Edgeorder-Signature",
            'sha256=<hex HMAC-SHA256(Secret, "<timestamp>." + raw body)>; refuse a timestamp '
            "far from your clock",
        ),
    ]
    return {
        "orderEvent": {
            "post": {
                "summary": "an order event, POSTed to every subscription that wants it",
                "description": "At least once, in order per subscriber; a non-2xx answer is "
                "retried with capped exponential backoff.",
                "parameters": [
                    {
                        "name": n,
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": d,
                    }
                    for n, d in headers
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(EventOut)}},
                },
                "responses": {"2XX": {"description": "delivered"}},
            }
        }
    }


@cache
def _document() -> J:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "edgeorder order core",
            "version": __version__,
            "description": DESCRIPTION,
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "webhooks": _webhooks(),
        "components": {
            "schemas": _components(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def openapi_document() -> J:
    """The document as a fresh dict (callers may change it)."""
    return copy.deepcopy(_document())


@cache
def openapi_json() -> str:
    """The document as JSON text, made once."""
    return dumps(_document())
