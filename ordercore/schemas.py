"""Response bodies as pydantic models: the OpenAPI document's schemas of what the core answers.

The handlers write their JSON with ``views.py`` (orjson, straight from rows: the checkout path
is the hot one); these models describe that JSON exactly, and the tests validate real answers
against them (schemathesis checks every response against the document made from them).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from edgeorder.ordercore.changes import GatewayMethodName
from edgeorder.ordercore.lifecycle import EVENT_NAMES

__all__ = [
    "BatchOut",
    "CheckoutOut",
    "EditOut",
    "ErrorOut",
    "EventOut",
    "HealthOut",
    "HistoryOut",
    "LiveOut",
    "OrderOut",
    "OrderPage",
    "SkuOut",
    "SkuPage",
    "ValueOut",
    "WebhookOut",
    "WebhookPage",
]

Timestamp = Annotated[str, Field(description="UTC, ISO 8601 with milliseconds and Z")]
StatusCode = Literal[0, 1, 2, 5, 10, 20, 21, 22]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatusOut(_Out):
    Code: StatusCode
    Label: str


class CustomerOut(_Out):
    UserId: str | None
    Name: str
    Email: str
    LegalId: str | None
    IpAddress: str | None


class AddressOut(_Out):
    Alias: str | None
    Street: str | None
    Number: str | None
    Complement: str | None
    District: str | None
    City: str | None
    State: str | None
    ZipCode: str | None
    Country: str | None


class ShippingOut(_Out):
    Type: int
    Address: AddressOut | None


class PaymentDataOut(_Out):
    MaskedValue: str | None
    Brand: str | None
    ValidThru: str | None
    Token: str | None


class PaymentMethodOut(_Out):
    Id: int = Field(description="the client's PaymentMethod.Id, else the CheckoutId")
    Type: int
    Data: PaymentDataOut | None


class DeviceOut(_Out):
    Id: str


class OrderItemOut(_Out):
    Id: int
    ProductId: int
    SkuId: int
    SkuDescription: str
    Sku: str
    Amount: int = Field(description="line total in cents: unit price x Quantity")
    Quantity: int
    Status: StatusCode


class OrderOut(_Out):
    """The BlackBox Order, plus the Nuvemshop lifecycle's fields."""

    Id: int
    CheckoutId: int
    CreatedOn: Timestamp
    UpdatedOn: Timestamp
    Status: StatusOut
    MerchantId: str
    MerchantName: str
    Customer: CustomerOut
    Shipping: ShippingOut | None
    PaymentMethod: PaymentMethodOut | None
    Currency: str
    Amount: int = Field(description="order total in cents")
    Device: DeviceOut | None
    OrderItems: list[OrderItemOut]
    Test: bool
    State: Literal["open", "closed", "cancelled"]
    AppId: str | None = Field(description="the app (sales channel) that checked out")
    Note: str | None = Field(description="the buyer's note")
    OwnerNote: str | None = Field(description="the merchant's note (PUT)")
    PaidOn: Timestamp | None
    ClosedOn: Timestamp | None
    CancelledOn: Timestamp | None
    CancelReason: Literal["customer", "fraud", "inventory", "other"] | None
    CancelRestock: bool | None
    CancelNotifyCustomer: bool | None


class _Page(_Out):
    Total: int
    PageSize: int
    PageIndex: int


class OrderPage(_Page):
    Data: list[OrderOut]


class CheckoutOut(_Out):
    CheckoutId: int
    Orders: list[OrderOut] = Field(description="one order per merchant, in the items' order")


class FieldErrorOut(_Out):
    Field: str = Field(description="e.g. Items[0].Sku")
    Reason: str


class ErrorOut(_Out):
    """Every error answer. ``Status`` and ``Closed`` come with 409 illegal_transition."""

    Error: str = Field(description="a stable code: validation_error, unprocessable, ...")
    Message: str
    Fields: list[FieldErrorOut] | None = None
    Status: StatusOut | None = None
    Closed: bool | None = None


class BatchCreated(_Out):
    """A checkout that was created now or replayed (its key seen before)."""

    Status: Literal[201]
    Replayed: bool
    Body: CheckoutOut


class BatchFailed(_Out):
    """A checkout that failed alone: 400 its body or key, 403 its buyer, 422 the catalog or an
    idempotency conflict, 500 an unexpected error (then retry it)."""

    Status: Literal[400, 403, 422, 500]
    Replayed: Literal[False]
    Body: ErrorOut


class BatchOut(_Out):
    Results: list[Annotated[BatchCreated | BatchFailed, Field(discriminator="Status")]] = Field(
        description="one per item, in request order"
    )


class HistoryOut(_Out):
    Id: int
    At: Timestamp
    Action: str
    Status: StatusOut
    Field: str
    From: Any
    To: Any


class ValueOut(_Out):
    Status: Literal["PENDING", "CANCELLED", "PAID"]
    TotalDelta: int
    TotalPaidDiff: int
    GatewayMethod: GatewayMethodName | None
    GatewayName: str | None
    ClosedOn: Timestamp | None
    HappenedOn: Timestamp


class ProductChangeOut(_Out):
    Type: Literal["ADD", "REMOVE"]
    ModifiedStock: bool
    PreviousQuantity: int
    NewQuantity: int
    ProductName: str


class EditOut(_Out):
    ProductChanges: list[ProductChangeOut]
    TransactionInformation: ValueOut | None
    Reason: str | None
    HappenedOn: Timestamp


class SkuOut(_Out):
    ProductId: int
    SkuId: int
    Sku: str
    SkuDescription: str
    Price: int
    Currency: str
    MerchantId: str
    MerchantName: str


class SkuPage(_Page):
    Data: list[SkuOut]


class WebhookOut(_Out):
    Id: int
    Url: str
    Events: list[str]
    CreatedOn: Timestamp
    Secret: str | None = Field(None, description="only when the server generated it")


class WebhookPage(_Page):
    Data: list[WebhookOut]


class CheckOut(_Out):
    name: Literal["database", "webhooks"]
    ok: bool
    detail: str


class HealthOut(_Out):
    """``GET /healthz``: every check with what it saw."""

    status: Literal["ok", "degraded"]
    checks: list[CheckOut]


class LiveOut(_Out):
    """``GET /livez``."""

    status: Literal["alive"]


EventName = Literal[EVENT_NAMES]  # type: ignore[valid-type]


class EventOut(_Out):
    """What a webhook subscriber receives (POST, signed: ``X-Edgeorder-Signature``)."""

    Id: int = Field(description="delivery id, also in X-Edgeorder-Delivery")
    Event: EventName
    CreatedOn: Timestamp
    Order: OrderOut
