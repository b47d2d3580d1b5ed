"""Bodies that change an existing order, and the pure planning of a line edit.

``CancelIn`` (Nuvemshop's cancel: reason, restock, notify), ``CaptureIn`` (how it was paid),
``OrderUpdateIn`` (Nuvemshop's PUT: owner note; here also the buyer's data) and ``EditIn``
(Nuvemshop's order edit: quantities of lines, new lines; recorded in the edits history).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from edgeorder.ordercore.catalog import Catalog, CatalogSku
from edgeorder.ordercore.checkout import ItemIn, ShippingIn, resolve_sku
from edgeorder.ordercore.errors import ApiError, FieldError
from edgeorder.ordercore.fields import (
    EMAIL_PATTERN,
    OMITTABLE,
    WHOLE,
    NonBlank,
    RecordId,
    Short,
)

__all__ = [
    "GATEWAY_METHODS",
    "CancelIn",
    "CaptureIn",
    "EditIn",
    "EditPlan",
    "LineChange",
    "OrderUpdateIn",
    "plan_edit",
]

GatewayMethodName = Literal["credit_card", "debit_card", "cash", "wire_transfer", "pix", "other"]
GATEWAY_METHODS: tuple[str, ...] = get_args(GatewayMethodName)
ReasonText = Annotated[str | None, Field(max_length=500)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CancelIn(_In):
    """Body of ``POST /api/order/{id}/cancel`` (every field optional).

    ``Restock`` and ``NotifyCustomer`` are Nuvemshop's ``restock`` and ``email`` flags: the core
    keeps no stock and sends no mail, so it records them on the order and in the
    ``order/cancelled`` event for the subscriber that does. Only an admin or the merchant sets
    them or cancels ``By: merchant``; a buyer's token (customer, app) cancels as the user.
    """

    Reason: Literal["customer", "fraud", "inventory", "other"] = "other"
    By: Literal["merchant", "user"] | None = Field(
        None, description="who cancels: merchant (21) or user (22); default by the token's role"
    )
    Restock: StrictBool | None = Field(None, description="put the items back in stock (true)")
    NotifyCustomer: StrictBool | None = Field(
        None, description="tell the buyer about the cancellation (true)"
    )


class CaptureIn(_In):
    """Optional body of ``POST /api/order/{id}/capture``: how the buyer paid, recorded in the
    values history (``GatewayName`` names an ``other`` method; ignored for the rest)."""

    GatewayMethod: GatewayMethodName | None = None
    GatewayName: Annotated[str | None, Field(min_length=1, max_length=100)] = None


class CustomerUpdateIn(_In):
    """The buyer's data that may change. ``UserId`` may not: it decides who sees the order."""

    Name: Annotated[NonBlank, OMITTABLE] = None  # type: ignore[assignment]
    Email: Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254), OMITTABLE] = None  # type: ignore[assignment]
    LegalId: Short | None = None
    IpAddress: Annotated[str | None, Field(max_length=45)] = None


class OrderUpdateIn(_In):
    """Body of ``PUT /api/order/{id}``: fields present are set, absent ones kept.

    ``OwnerNote`` (null clears it) may change in any state; ``Customer`` (merged field by field;
    null clears ``LegalId`` or ``IpAddress``) and ``Shipping`` (replaced; null clears it) until
    the order ships. Nothing to change is a 200 no-op.
    """

    OwnerNote: Annotated[str | None, Field(max_length=2000)] = None
    Customer: Annotated[CustomerUpdateIn, OMITTABLE] = None  # type: ignore[assignment]
    Shipping: ShippingIn | None = None


class LineIn(_In):
    """A new quantity for an existing line (``OrderItems[].Id``); 0 removes the line."""

    Id: RecordId
    Quantity: Annotated[StrictInt, Field(ge=0, le=10_000), WHOLE]


class AddIn(ItemIn):
    """A new line: ``Sku`` or ``SkuId`` of the order's merchant and currency (a checkout's
    line, the same fields and check)."""


class EditIn(_In):
    """Body of ``POST /api/order/{id}/edit`` (Nuvemshop's order edit), before payment only."""

    Lines: Annotated[list[LineIn], Field(max_length=100)] = []
    Add: Annotated[list[AddIn], Field(max_length=100)] = []
    Reason: ReasonText = None


@dataclass(frozen=True, slots=True)
class CurrentLine:
    """A line of the order as stored: ``amount`` is the line total at its purchase price."""

    id: int
    sku_id: int
    description: str
    quantity: int
    amount: int


@dataclass(frozen=True, slots=True)
class LineChange:
    """One line that changes: an existing one (``line``) or a new SKU (``sku``)."""

    previous: int
    new: int
    name: str
    line: CurrentLine | None = None
    sku: CatalogSku | None = None

    def json(self) -> dict[str, object]:
        """The seed's product change (the core keeps no stock: ModifiedStock is false)."""
        return {
            "Type": "ADD" if self.new > self.previous else "REMOVE",
            "ModifiedStock": False,
            "PreviousQuantity": self.previous,
            "NewQuantity": self.new,
            "ProductName": self.name,
        }


@dataclass(frozen=True, slots=True)
class EditPlan:
    changes: tuple[LineChange, ...]
    old_amount: int
    new_amount: int


def _line_changes(
    edit: EditIn, lines: list[CurrentLine], problems: list[FieldError]
) -> list[LineChange]:
    by_id = {line.id: line for line in lines}
    seen: set[int] = set()
    out = []
    for i, item in enumerate(edit.Lines):
        line = by_id.get(item.Id)
        if line is None:
            problems.append(FieldError(f"Lines[{i}].Id", f"no line {item.Id} in this order"))
        elif item.Id in seen:
            problems.append(FieldError(f"Lines[{i}].Id", f"line {item.Id} is named twice"))
        elif item.Quantity != line.quantity:
            out.append(LineChange(line.quantity, item.Quantity, line.description, line=line))
        seen.add(item.Id)
    return out


def _added(
    edit: EditIn, catalog: Catalog, merchant_id: str, currency: str, problems: list[FieldError]
) -> list[LineChange]:
    out = []
    for i, item in enumerate(edit.Add):
        sku = resolve_sku(catalog, f"Add[{i}]", item.Sku, item.SkuId, problems)
        if sku is None:
            continue
        if sku.merchant_id != merchant_id:
            problems.append(FieldError(f"Add[{i}]", f"sold by merchant {sku.merchant_id}"))
        elif sku.currency != currency:
            problems.append(FieldError(f"Add[{i}]", f"priced in {sku.currency}, not {currency}"))
        else:
            out.append(LineChange(0, item.Quantity, sku.description, sku=sku))
    return out


def plan_edit(
    edit: EditIn, lines: list[CurrentLine], catalog: Catalog, merchant_id: str, currency: str
) -> EditPlan:
    """What an edit changes, or ApiError 422 (unknown line or SKU, another merchant or
    currency, or no line left: cancel the order instead)."""
    problems: list[FieldError] = []
    changes = _line_changes(edit, lines, problems) + _added(
        edit, catalog, merchant_id, currency, problems
    )
    if problems:
        raise ApiError.unprocessable(problems)
    old_amount = sum(line.amount for line in lines)
    new_amount = old_amount
    for change in changes:
        if change.line is not None:
            unit = change.line.amount // change.line.quantity
            new_amount += unit * (change.new - change.previous)
        elif change.sku is not None:
            new_amount += change.sku.price * change.new
    removed = {c.line.id for c in changes if c.line is not None and c.new == 0}
    if len(lines) - len(removed) + len(edit.Add) == 0:
        raise ApiError.unprocessable(
            [FieldError("Lines", "an order keeps at least one line; cancel it instead")]
        )
    return EditPlan(tuple(changes), old_amount, new_amount)
