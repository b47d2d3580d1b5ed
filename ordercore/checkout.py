"""Checkout input, its validation against the catalog, and pricing into orders. Pure."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)

from edgeorder.ordercore.catalog import Catalog, CatalogSku
from edgeorder.ordercore.errors import ApiError, FieldError, field_errors
from edgeorder.ordercore.fields import (
    CURRENCY_PATTERN,
    EMAIL_PATTERN,
    Code,
    DeviceId,
    NonBlank,
    Quantity,
    RecordId,
    Short,
)

__all__ = [
    "AddressIn",
    "CheckoutIn",
    "CheckoutMemo",
    "CustomerIn",
    "ItemIn",
    "OrderDraft",
    "OrderParts",
    "ParsedCheckout",
    "ShippingIn",
    "body_hash",
    "field_errors",
    "order_parts",
    "parse_checkout",
    "price_checkout",
]

Email = Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CustomerIn(_In):
    """The buyer. ``UserId`` decides who sees the order as sent (a customer token's own)."""

    UserId: Short | None = None
    Name: NonBlank
    Email: Email
    LegalId: Short | None = None
    IpAddress: Annotated[str | None, Field(max_length=45)] = None


class AddressIn(_In):
    Alias: Short | None = None
    Street: Short | None = None
    Number: Short | None = None
    Complement: Short | None = None
    District: Short | None = None
    City: Short | None = None
    State: Short | None = None
    ZipCode: Short | None = None
    Country: Short | None = None


class ShippingIn(_In):
    Type: Code = 0
    Address: AddressIn | None = None


class PaymentDataIn(_In):
    MaskedValue: Short | None = None
    Brand: Short | None = None
    ValidThru: Short | None = None
    Token: Short | None = None


class PaymentMethodIn(_In):
    """``Id`` names the buyer's payment method (kept as given); without it the order's
    ``PaymentMethod.Id`` is the ``CheckoutId``, as in the seed's example (both 500)."""

    Id: RecordId | None = None
    Type: Code = 0
    Data: PaymentDataIn | None = None


class DeviceIn(_In):
    Id: DeviceId


class ItemIn(_In):
    """One line: ``Sku`` or ``SkuId`` (either names a catalog SKU) and a positive Quantity."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["Sku"], "properties": {"Sku": {"type": "string"}}},
                {"required": ["SkuId"], "properties": {"SkuId": {"type": "integer"}}},
            ]
        }
    )

    Sku: Annotated[str | None, Field(max_length=64)] = None
    SkuId: RecordId | None = None
    Quantity: Quantity

    @model_validator(mode="after")
    def _one_reference(self) -> ItemIn:
        if self.Sku is None and self.SkuId is None:
            raise ValueError("Sku or SkuId is required")
        return self


CHECKOUT_EXAMPLE: dict[str, Any] = {
    "MerchantId": "00000000-0000-4000-8000-000000000001",
    "Customer": {
        "UserId": "99999999-9999-9999-9999-000000000000",
        "Name": "Comprador",
        "Email": "comprador@blackbox.com",
        "LegalId": "096.296.777-99",
        "IpAddress": "127.0.0.1",
    },
    "Shipping": {
        "Type": 0,
        "Address": {
            "Alias": "Casa",
            "Street": "Av. Marechal Câmara",
            "Number": "160",
            "Complement": "Sala 934",
            "District": "Centro",
            "City": "Rio de Janeiro",
            "State": "RJ",
            "ZipCode": "99999-999",
            "Country": "Brasil",
        },
    },
    "PaymentMethod": {"Type": 0, "Data": {"MaskedValue": "100010******1000", "Brand": "visa"}},
    "Currency": "BRL",
    "Items": [{"Sku": "COFFEE-1KG", "Quantity": 2}],
    "Device": {"Id": "kitchen-01"},
}
"""The seed's example order as a checkout of the demo catalog (``--seed-catalog``)."""


class CheckoutIn(_In):
    """Body of ``POST /api/checkout``: one order per merchant of the items."""

    model_config = ConfigDict(json_schema_extra={"examples": [CHECKOUT_EXAMPLE]})

    MerchantId: Annotated[str | None, Field(min_length=1, max_length=36)] = None
    Customer: CustomerIn
    Shipping: ShippingIn | None = None
    PaymentMethod: PaymentMethodIn | None = None
    Currency: Annotated[str, Field(pattern=CURRENCY_PATTERN)]
    Items: Annotated[list[ItemIn], Field(min_length=1, max_length=100)]
    Device: DeviceIn | None = None
    Note: Annotated[
        str | None, Field(max_length=500, description="the buyer's note on the order")
    ] = None
    Test: StrictBool = False


@dataclass(frozen=True, slots=True)
class Line:
    """A priced order line: ``amount`` is the line total (unit price x quantity), in cents."""

    sku: CatalogSku
    quantity: int

    @property
    def amount(self) -> int:
        return self.sku.price * self.quantity


@dataclass(frozen=True, slots=True)
class OrderDraft:
    """One order to create: all lines of one merchant."""

    merchant_id: str
    merchant_name: str
    lines: tuple[Line, ...]

    @property
    def amount(self) -> int:
        return sum(line.amount for line in self.lines)


def parse_checkout(body: Any) -> CheckoutIn:
    """Validate a decoded JSON body against the model (the documented schema), or 400."""
    try:
        return CheckoutIn.model_validate(body)
    except ValidationError as exc:
        raise ApiError.validation(field_errors(exc)) from exc


def resolve_sku(
    catalog: Catalog, where: str, sku: str | None, sku_id: int | None, problems: list[FieldError]
) -> CatalogSku | None:
    """The catalog SKU an item names (by Sku, else SkuId); a problem per unknown or mismatch."""
    found = catalog.by_sku(sku) if sku is not None else catalog.by_id(sku_id or 0)
    if found is None:
        if sku is not None:
            problems.append(FieldError(f"{where}.Sku", f"unknown SKU {sku!r}"))
        else:
            problems.append(FieldError(f"{where}.SkuId", f"unknown SkuId {sku_id}"))
        return None
    if sku is not None and sku_id is not None and found.sku_id != sku_id:
        problems.append(FieldError(f"{where}.SkuId", f"does not match Sku {sku!r}"))
    return found


def price_checkout(req: CheckoutIn, catalog: Catalog) -> list[OrderDraft]:
    """Group the lines by merchant (first-seen order) and price them, or ApiError 422: the
    body is well formed (400 is the schema's) but the catalog refuses it."""
    problems: list[FieldError] = []
    groups: dict[str, list[Line]] = {}
    names: dict[str, str] = {}
    for i, item in enumerate(req.Items):
        sku = resolve_sku(catalog, f"Items[{i}]", item.Sku, item.SkuId, problems)
        if sku is None:
            continue
        where = f"Items[{i}].{'Sku' if item.Sku is not None else 'SkuId'}"
        if sku.currency != req.Currency:
            problems.append(
                FieldError(where, f"priced in {sku.currency}, checkout is in {req.Currency}")
            )
        if req.MerchantId is not None and sku.merchant_id != req.MerchantId:
            problems.append(FieldError(where, f"sold by merchant {sku.merchant_id}"))
        groups.setdefault(sku.merchant_id, []).append(Line(sku, item.Quantity))
        names[sku.merchant_id] = sku.merchant_name
    if problems:
        raise ApiError.unprocessable(problems)
    return [OrderDraft(m, names[m], tuple(lines)) for m, lines in groups.items()]


def body_hash(body: Any) -> str:
    """Fingerprint of a decoded body: key order and whitespace do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class OrderParts:
    """What every order of a checkout stores of its buyer, shipping and payment method: the
    JSON text of the first two, and the payment method's fields (``Id`` is filled per order)."""

    customer: str
    shipping: str | None
    payment: dict[str, Any] | None


def order_parts(req: CheckoutIn) -> OrderParts:
    payment = None if req.PaymentMethod is None else req.PaymentMethod.model_dump()
    return OrderParts(
        customer=orjson.dumps(req.Customer.model_dump()).decode(),
        shipping=None if req.Shipping is None else orjson.dumps(req.Shipping.model_dump()).decode(),
        payment=payment,
    )


@dataclass(frozen=True, slots=True)
class ParsedCheckout:
    """A validated checkout body, its ``body_hash`` and its ``order_parts``."""

    req: CheckoutIn
    digest: str
    parts: OrderParts


class CheckoutMemo:
    """``parse_checkout``, ``body_hash`` and ``order_parts`` of the bodies seen lately, each
    done once per body.

    A device's checkouts repeat one body (its profile, SKU, quantity and device id): only the
    Idempotency-Key differs, and it is not part of the body. Validating the same body with
    pydantic, hashing it with ``json.dumps`` and dumping its buyer again for every order was
    a third of the order core's CPU under load. The memo is keyed by the body's canonical
    bytes (orjson with sorted keys: equal bytes, equal JSON values; JSON from ``orjson.loads``
    has no NaN), holds at most ``size`` bodies (least recently used out), and keeps only
    valid ones: a body that fails is validated again each time, so its error stays its own.
    The hash stays ``body_hash`` (stored keys still match); models are shared, never modified
    (``model_copy`` makes a buyer's own).
    """

    def __init__(self, size: int = 1024) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._size = size
        self._seen: OrderedDict[bytes, ParsedCheckout] = OrderedDict()
        self.hits = 0

    def parse(self, body: Any) -> ParsedCheckout:
        """The validated checkout, its hash and parts; raises ApiError 400 as
        ``parse_checkout`` does."""
        try:
            key = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # not JSON orjson can write (e.g. a 65-bit integer): no memo
            return _parsed(body)
        found = self._seen.get(key)
        if found is not None:
            self._seen.move_to_end(key)
            self.hits += 1
            return found
        found = self._seen[key] = _parsed(body)
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return found


def _parsed(body: Any) -> ParsedCheckout:
    req = parse_checkout(body)
    return ParsedCheckout(req, body_hash(body), order_parts(req))
