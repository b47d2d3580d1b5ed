"""The REST API's models: what each route takes (path, query, body) and what it answers.

The handlers validate with the request models and the OpenAPI document is made from all of
them (``ingest.web.openapi``), so the document states what the server enforces. The answers
are the rows the handlers read (``ingest.store.queries``); schemathesis checks real answers
against these models, so a new column fails it until the model (the contract) says so.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from edgeorder import protocol as p
from edgeorder.ingest.domain.devices import DEFAULT_CANCEL_WINDOW_S, CancelWindowS, DeviceName
from edgeorder.ingest.domain.groups import SITE_MAX_CHARS, TAG_PATTERN, TAGS_MAX
from edgeorder.ingest.store.bulk import BULK_MAX

__all__ = [
    "AlertOut",
    "AlertPath",
    "AlertsQuery",
    "BufferRowOut",
    "BulkErrorOut",
    "BulkIn",
    "BulkOut",
    "CatalogOut",
    "DeviceCreatedOut",
    "DeviceEventsOut",
    "DeviceEventsQuery",
    "DeviceIn",
    "DeviceOut",
    "DevicePatch",
    "DevicePath",
    "DevicesQuery",
    "ErrorOut",
    "EventDetailOut",
    "EventOut",
    "EventPath",
    "ExportQuery",
    "ListQuery",
    "OkOut",
    "OrderRowOut",
    "OutboxPath",
    "RotatedOut",
]

_DIGITS = re.compile(r"^-?[0-9]+$")


def _query_int(value: object) -> object:
    if isinstance(value, str):
        if not _DIGITS.match(value):
            raise ValueError("must be an integer written in decimal digits")
        return int(value)
    return value


# --- requests --------------------------------------------------------------------------------


class BuyerProfile(BaseModel):
    """The device's buyer data for its checkouts, in the order APIs' dialect, merged over
    ingest's ``--default-profile``. The parts every connector reads are checked for their
    kind here, so a wrong one is a 422 now and not a ``failed`` order at every press; what
    each part holds is the platform's to judge (other keys pass as they are)."""

    model_config = ConfigDict(extra="allow")

    MerchantId: str | None = None
    Currency: str | None = Field(default=None, pattern="^[A-Z]{3}$")
    Customer: dict[str, Any] | None = None
    Shipping: dict[str, Any] | None = None
    PaymentMethod: dict[str, Any] | None = None


class DeviceIn(BaseModel):
    """Body of ``POST /api/devices``."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(pattern=p.DEVICE_ID_PATTERN)
    name: DeviceName = ""
    mapping: p.ButtonMapping
    env: str = Field(default="prod", pattern="^(dev|prod)$")
    allow_parallel: bool = False
    cancel_window_s: CancelWindowS = DEFAULT_CANCEL_WINDOW_S
    profile: BuyerProfile | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=TAGS_MAX)
    site: Site = ""
    allow_unknown_sku: bool = Field(
        default=False,
        description="save a SKU the platform's catalog lacks, or one it cannot check now "
        "(the platform unreachable); otherwise such a mapping is refused",
    )


class DevicePatch(BaseModel):
    """Body of ``PATCH /api/devices/{device_id}`` (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    env: str | None = Field(default=None, pattern="^(dev|prod)$")
    mapping: p.ButtonMapping | None = None
    tags: list[Tag] | None = Field(
        default=None, max_length=TAGS_MAX, description="replaces the device's tags"
    )
    site: Site | None = None
    allow_unknown_sku: bool = Field(
        default=False,
        description="save a SKU the platform's catalog lacks, or one it cannot check now "
        "(the platform unreachable); otherwise such a mapping is refused",
    )


class DevicePath(BaseModel):
    """A device id: anything else names no device (404)."""

    device_id: str = Field(pattern=p.DEVICE_ID_PATTERN)


class EventPath(BaseModel):
    """A device id and a ULID (any case): anything else names no event (404)."""

    device_id: str = Field(pattern=p.DEVICE_ID_PATTERN)
    event_id: str = Field(pattern=r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")


class OutboxPath(BaseModel):
    """An order-outbox row id (1 .. 2^63-1): anything else names no row (404)."""

    outbox_id: Annotated[int, Field(ge=1, le=p.INT64_MAX), BeforeValidator(_query_int)]


Tag = Annotated[str, Field(pattern=TAG_PATTERN)]
Site = Annotated[str, Field(max_length=SITE_MAX_CHARS, pattern=r"^[^\x00-\x1f\x7f]*$")]


class DevicesQuery(BaseModel):
    """``?tag=&site=`` of ``GET /api/devices``."""

    model_config = ConfigDict(extra="ignore")

    tag: str | None = Field(None, description="only devices with this tag")
    site: str | None = Field(None, description="only devices at this site")


class BulkIn(BaseModel):
    """Body of ``POST /api/bulk/devices``: one action on every listed device, or on none."""

    model_config = ConfigDict(extra="forbid")

    device_ids: list[Annotated[str, Field(pattern=p.DEVICE_ID_PATTERN)]] = Field(
        min_length=1, max_length=BULK_MAX
    )
    action: Literal["enable", "disable", "set_env", "add_tag", "remove_tag"]
    env: Literal["dev", "prod"] | None = Field(None, description="for set_env")
    tag: Tag | None = Field(None, description="for add_tag and remove_tag")


class AlertPath(BaseModel):
    """An alert id (1 .. 2^63-1): anything else names no alert (404)."""

    alert_id: Annotated[int, Field(ge=1, le=p.INT64_MAX), BeforeValidator(_query_int)]


class AlertsQuery(BaseModel):
    """``?state=&device=&limit=`` of ``GET /api/alerts``."""

    model_config = ConfigDict(extra="ignore")

    state: Literal["active", "acknowledged", "cleared"] | None = Field(
        None, description="only alerts in this state"
    )
    device: str | None = Field(None, description="only this device's alerts")
    limit: Annotated[
        int | None,
        Field(description="alerts at most, open ones first; clamped to 1-1000 (default 100)"),
        BeforeValidator(_query_int),
    ] = None

    @property
    def rows(self) -> int:
        return 100 if self.limit is None else max(1, min(1000, self.limit))


class ListQuery(BaseModel):
    """``?device=&limit=`` of the lists; ``limit`` is clamped to 1-1000 (default 100)."""

    model_config = ConfigDict(extra="ignore")

    device: str | None = Field(None, description="only this device's rows")
    limit: Annotated[
        int | None,
        Field(description="rows, newest first; clamped to 1-1000 (default 100)"),
        BeforeValidator(_query_int),
    ] = None

    @property
    def rows(self) -> int:
        return 100 if self.limit is None else max(1, min(1000, self.limit))


class DeviceEventsQuery(BaseModel):
    """``?before=&after=&limit=`` of a device's events: keyset cursors (inbox row ids, as
    ``older``/``newer`` of the previous page give them); ``limit`` clamped to 1-200."""

    model_config = ConfigDict(extra="ignore")

    before: Annotated[
        int | None,
        Field(ge=1, le=p.INT64_MAX, description="events older than this one (its `id`)"),
        BeforeValidator(_query_int),
    ] = None
    after: Annotated[
        int | None,
        Field(
            ge=1,
            le=p.INT64_MAX,
            description="events newer than this one (ignored with `before`; fewer than "
            "`limit` newer: the newest page)",
        ),
        BeforeValidator(_query_int),
    ] = None
    limit: Annotated[
        int | None,
        Field(description="events per page, newest first; clamped to 1-200 (default 50)"),
        BeforeValidator(_query_int),
    ] = None

    @property
    def rows(self) -> int:
        return 50 if self.limit is None else max(1, min(200, self.limit))


def _utc_ts(value: object) -> object:
    """An ISO-8601 date or time as the stored form (``protocol.format_ts``): naive is UTC."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("must be an ISO-8601 date or time")
    try:
        at = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("must be an ISO-8601 date or time") from exc
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    try:
        return p.format_ts(at)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC: the very start
        return "0001-01-01T00:00:00.000Z" if at.year == 1 else "9999-12-31T23:59:59.999Z"


class ExportQuery(BaseModel):
    """``?device=&from=&to=`` of the CSV exports."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    device: str | None = Field(
        None, pattern=p.DEVICE_ID_PATTERN, description="only this device's rows"
    )
    start: Annotated[
        str | None,
        Field(
            alias="from",
            description="from this ISO-8601 date or time (included)",
            json_schema_extra={"format": "date-time"},
        ),
        BeforeValidator(_utc_ts),
    ] = None
    end: Annotated[
        str | None,
        Field(
            alias="to",
            description="up to this ISO-8601 date or time (excluded)",
            json_schema_extra={"format": "date-time"},
        ),
        BeforeValidator(_utc_ts),
    ] = None


# --- answers ---------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(_Out):
    """Every error answer of the API, 401 and 403 of the authentication included
    (``ingest.errors``): a stable code, a message for a person, and the broken fields of a
    body or query."""

    Error: str
    Message: str
    Fields: list[dict[str, str]] | None = Field(None, description="[{Field, Message}]")


class DeviceOut(_Out):
    device_id: str
    name: str
    env: Literal["dev", "prod"]
    enabled: bool
    mapping: p.ButtonMapping
    allow_parallel: bool
    cancel_window_s: int
    profile: dict[str, Any]
    config_version: int
    simulated: bool
    site: str = Field(description="where the device is ('' none)")
    tags: list[str]
    created_at: str
    updated_at: str


class DevicesOut(_Out):
    Data: list[DeviceOut]


class DeviceCreatedOut(_Out):
    device: DeviceOut
    password: str = Field(description="the device's MQTT password, shown once")
    firmware_config: str = Field(description="the agent's TOML configuration, password included")


class RotatedOut(_Out):
    device_id: str
    password: str


class EventOut(_Out):
    id: int
    device_id: str
    event_id: str
    kind: str
    trigger: str
    seq: int
    ts: str
    received_at: str
    action: str = Field(description="the rule's decision, as JSON text")
    state: str
    order_id: str | None
    reason: str | None
    updated_at: str


class EventsOut(_Out):
    Data: list[EventOut]


class DeviceEventsOut(_Out):
    """One page of a device's events, newest first, and the cursors of the pages beside it."""

    Data: list[EventOut]
    older: int | None = Field(description="`before` for the next older page (null: none)")
    newer: int | None = Field(description="`after` for the next newer page (null: none)")


class StatusStepOut(_Out):
    state: str
    order_id: str | None
    reason: str | None
    source: str
    at: str


class EventDetailOut(EventOut):
    payload_hash: str
    payload: str = Field(description="the event as received (JSON text)")
    history: list[StatusStepOut]


class OrderRowOut(_Out):
    order_id: str
    inbox_id: int
    device_id: str
    event_id: str
    sku: str
    quantity: int
    amount: int | None
    currency: str | None
    test: int
    state: str
    platform_status: int | None
    created_at: str
    updated_at: str
    settled: int


class OrdersOut(_Out):
    Data: list[OrderRowOut]


class BufferRowOut(_Out):
    id: int
    inbox_id: int
    device_id: str
    event_id: str
    op: Literal["create", "cancel"]
    sku: str | None
    quantity: int | None
    test: int
    target_order_id: str | None
    state: Literal["pending"]
    attempts: int
    next_attempt_at: str
    last_error: str | None
    created_at: str
    updated_at: str


class BufferOut(_Out):
    Data: list[BufferRowOut]


class CatalogItemOut(_Out):
    sku: str
    label: str


class CatalogOut(_Out):
    """The order platform's SKUs, as the mapping check sees them."""

    platform: str
    has_catalog: bool = Field(description="false: the platform lists no SKUs; any is taken")
    available: bool = Field(description="false: the catalog could not be read (see error)")
    source: str
    error: str | None
    Data: list[CatalogItemOut]


class BulkOut(_Out):
    action: str
    changed: list[str] = Field(description="every device the action changed, in order")


class BulkErrorOut(_Out):
    """``bulk_failed``: nothing was changed; ``Devices`` says why each failing device failed."""

    Error: str
    Message: str
    Devices: list[dict[str, str]] = Field(description="[{device_id, error}]")


class OkOut(_Out):
    ok: Literal[True]


class AlertOut(_Out):
    """An alert (README "Alerts"): active -> acknowledged -> cleared."""

    id: int
    kind: Literal[
        "device_offline",
        "platform_unreachable",
        "buffer_age",
        "orders_failing",
        "queue_depth",
        "presses_dropped",
        "config_not_reported",
    ]
    device_id: str | None = Field(description="the device, or null for a fleet-wide alert")
    state: Literal["active", "acknowledged", "cleared"]
    since: str = Field(description="when the condition began (e.g. offline since)")
    detail: str
    opened_at: str
    acknowledged_by: str | None
    acknowledged_at: str | None
    cleared_at: str | None
    updated_at: str
