"""Checkout input, its validation against the catalog, and pricing into orders. Pure."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edgeorder.ordercore.catalog import CURRENCY_PATTERN, Catalog, CatalogSku
from edgeorder.ordercore.errors import ApiError, FieldError

__all__ = [
    "CheckoutIn",
    "OrderDraft",
    "body_hash",
    "field_errors",
    "parse_checkout",
    "price_checkout",
]

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DEVICE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Short = Annotated[str, Field(max_length=200)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class CustomerIn(_In):
    UserId: Short | None = None
    Name: Annotated[str, Field(min_length=1, max_length=200)]
    Email: Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)]
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
    Type: Annotated[StrictInt, Field(ge=0, le=99)] = 0
    Address: AddressIn | None = None


class PaymentDataIn(_In):
    MaskedValue: Short | None = None
    Brand: Short | None = None
    ValidThru: Short | None = None
    Token: Short | None = None


class PaymentMethodIn(_In):
    Type: Annotated[StrictInt, Field(ge=0, le=99)] = 0
    Data: PaymentDataIn | None = None


class DeviceIn(_In):
    Id: Annotated[str, Field(pattern=DEVICE_PATTERN)]


class ItemIn(_In):
    """One line: ``Sku`` or ``SkuId`` (either names a catalog SKU) and a positive Quantity."""

    Sku: Annotated[str | None, Field(max_length=64)] = None
    SkuId: StrictInt | None = None
    Quantity: Annotated[StrictInt, Field(gt=0, le=10_000)]

    @field_validator("Sku")
    @classmethod
    def _known_sku(cls, value: str | None, info: ValidationInfo) -> str | None:
        catalog = _catalog(info)
        if value is not None and catalog is not None and catalog.by_sku(value) is None:
            raise ValueError(f"unknown SKU {value!r}")
        return value

    @field_validator("SkuId")
    @classmethod
    def _known_sku_id(cls, value: int | None, info: ValidationInfo) -> int | None:
        catalog = _catalog(info)
        if value is not None and catalog is not None and catalog.by_id(value) is None:
            raise ValueError(f"unknown SkuId {value}")
        return value

    @model_validator(mode="after")
    def _one_reference(self) -> ItemIn:
        if self.Sku is None and self.SkuId is None:
            raise ValueError("Sku or SkuId is required")
        return self


class CheckoutIn(_In):
    """Body of ``POST /api/checkout``."""

    MerchantId: Annotated[str | None, Field(min_length=1, max_length=36)] = None
    Customer: CustomerIn
    Shipping: ShippingIn | None = None
    PaymentMethod: PaymentMethodIn | None = None
    Currency: Annotated[str, Field(pattern=CURRENCY_PATTERN)]
    Items: Annotated[list[ItemIn], Field(min_length=1, max_length=100)]
    Device: DeviceIn | None = None
    Test: StrictBool = False


def _catalog(info: ValidationInfo) -> Catalog | None:
    context = info.context
    return context.get("catalog") if isinstance(context, dict) else None


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


def loc_to_field(loc: tuple[int | str, ...]) -> str:
    """``("Items", 0, "Sku")`` -> ``"Items[0].Sku"``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Every bad field of a pydantic error, named in the wire's dotted/indexed form."""
    errors = []
    for err in exc.errors(include_url=False):
        reason = str(err["msg"]).removeprefix("Value error, ")
        errors.append(FieldError(loc_to_field(tuple(err["loc"])), reason))
    return errors


def parse_checkout(body: Any, catalog: Catalog) -> CheckoutIn:
    """Validate a decoded JSON body against the model and the catalog, or ApiError 422."""
    try:
        return CheckoutIn.model_validate(body, context={"catalog": catalog})
    except ValidationError as exc:
        raise ApiError.validation(field_errors(exc)) from exc


def _resolve(item: ItemIn, catalog: Catalog) -> CatalogSku:
    found = catalog.by_sku(item.Sku) if item.Sku is not None else catalog.by_id(item.SkuId or 0)
    if found is None:  # the catalog changed between validation and pricing
        raise ApiError.validation([FieldError("Items", "unknown SKU")])
    return found


def price_checkout(req: CheckoutIn, catalog: Catalog) -> list[OrderDraft]:
    """Group the lines by merchant (first-seen order) and price them, or ApiError 422."""
    problems: list[FieldError] = []
    groups: dict[str, list[Line]] = {}
    names: dict[str, str] = {}
    for i, item in enumerate(req.Items):
        sku = _resolve(item, catalog)
        where = f"Items[{i}].{'Sku' if item.Sku is not None else 'SkuId'}"
        if item.Sku is not None and item.SkuId is not None and sku.sku_id != item.SkuId:
            problems.append(FieldError(f"Items[{i}].SkuId", f"does not match Sku {item.Sku!r}"))
        if sku.currency != req.Currency:
            problems.append(
                FieldError(where, f"priced in {sku.currency}, checkout is in {req.Currency}")
            )
        if req.MerchantId is not None and sku.merchant_id != req.MerchantId:
            problems.append(FieldError(where, f"sold by merchant {sku.merchant_id}"))
        groups.setdefault(sku.merchant_id, []).append(Line(sku, item.Quantity))
        names[sku.merchant_id] = sku.merchant_name
    if problems:
        raise ApiError.validation(problems)
    return [OrderDraft(m, names[m], tuple(lines)) for m, lines in groups.items()]


def body_hash(body: Any) -> str:
    """Fingerprint of a decoded body: key order and whitespace do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
