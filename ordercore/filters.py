"""Query strings of the list endpoints as pydantic models. Pure.

The models are the contract: the handlers validate ``request.query`` with them and the OpenAPI
document lists their fields as parameters. Dates are the seed's ``dd-MM-yyyy``; the pattern
admits exactly the real calendar dates, so a date the document calls valid is never refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from edgeorder.ordercore.errors import ApiError, field_errors
from edgeorder.ordercore.fields import DEVICE_PATTERN, MAX_ID, QUERY_INT

__all__ = [
    "DATE_PATTERN",
    "MAX_PAGE_INDEX",
    "MAX_PAGE_SIZE",
    "OrderFilter",
    "OrderQuery",
    "PageQuery",
    "Paging",
    "order_filter",
    "parse_query",
]

MAX_PAGE_SIZE = 200
MAX_PAGE_INDEX = 10**9
DEFAULT_PAGE_SIZE = 25

_DAY_MONTH = (
    r"(?:(?:0[1-9]|1[0-9]|2[0-8])-(?:0[1-9]|1[0-2])"
    r"|(?:29|30)-(?:0[13-9]|1[0-2])"
    r"|31-(?:0[13578]|1[02]))"
)
_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
DATE_PATTERN = rf"^(?:{_DAY_MONTH}-{_YEAR}|29-02-{_LEAP_YEAR})$"
"""``dd-MM-yyyy``, a real date of years 1-9999 (29-02 only in leap years)."""

Date = Annotated[str, Field(pattern=DATE_PATTERN, description="dd-MM-yyyy, UTC")]
PageIndex = Annotated[int, Field(ge=1, le=MAX_PAGE_INDEX), QUERY_INT]
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE), QUERY_INT]
IdParam = Annotated[int, Field(ge=1, le=MAX_ID), QUERY_INT]
SinceId = Annotated[int, Field(ge=0, le=MAX_ID), QUERY_INT]
Cents = Annotated[int, Field(ge=0, le=10**15), QUERY_INT]


def _int_enum(value: object) -> object:
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else value


StatusCode = Annotated[
    Literal[0, 1, 2, 5, 10, 20, 21, 22],
    BeforeValidator(_int_enum),
]
"""One of ``OrderStatus`` (a test keeps the two in step)."""


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class PageQuery(_Query):
    """``pageIndex`` (1-based) and ``pageSize``."""

    page_index: Annotated[PageIndex, Field(alias="pageIndex", description="1-based page")] = 1
    page_size: Annotated[PageSize, Field(alias="pageSize", description="per page")] = (
        DEFAULT_PAGE_SIZE
    )

    @property
    def offset(self) -> int:
        return (self.page_index - 1) * self.page_size


class OrderQuery(PageQuery):
    """Filters of ``GET /api/order/{sent,received}``: the seed's, then Nuvemshop's list
    filters in the BlackBox spelling (``state``, ``sinceId``, ``q``, amounts, updated dates)."""

    status: Annotated[StatusCode | None, Field(description="Status.Code")] = None
    state: Annotated[
        Literal["open", "closed", "cancelled", "any"] | None,
        Field(
            description="Nuvemshop's order status: open (neither closed nor cancelled), "
            "closed (archived), cancelled (21 or 22); any (default)"
        ),
    ] = None
    id: Annotated[IdParam | None, Field(description="order Id")] = None
    since_id: Annotated[
        SinceId | None, Field(alias="sinceId", description="only orders with a larger Id")
    ] = None
    checkout: Annotated[IdParam | None, Field(description="CheckoutId")] = None
    merchant_id: Annotated[str | None, Field(alias="merchantId", min_length=1, max_length=36)] = (
        None
    )
    user_id: Annotated[
        str | None,
        Field(alias="userId", min_length=1, max_length=200, description="Customer.UserId"),
    ] = None
    app_id: Annotated[
        str | None,
        Field(alias="appId", min_length=1, max_length=64, description="the app that ordered"),
    ] = None
    device: Annotated[str | None, Field(pattern=DEVICE_PATTERN, description="Device.Id")] = None
    q: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=100,
            description="an order Id, or text in the buyer's Name or Email (case-insensitive)",
        ),
    ] = None
    min_amount: Annotated[
        Cents | None, Field(alias="minAmount", description="Amount at least, cents")
    ] = None
    max_amount: Annotated[
        Cents | None, Field(alias="maxAmount", description="Amount at most, cents")
    ] = None
    order: Annotated[Literal["asc", "desc"], Field(description="by Id")] = "asc"
    start_date: Annotated[
        Date | None, Field(alias="startDate", description="created on or after")
    ] = None
    end_date: Annotated[Date | None, Field(alias="endDate", description="created on or before")] = (
        None
    )
    updated_start_date: Annotated[
        Date | None, Field(alias="updatedStartDate", description="last updated on or after")
    ] = None
    updated_end_date: Annotated[
        Date | None, Field(alias="updatedEndDate", description="last updated on or before")
    ] = None


_Q = TypeVar("_Q", bound=BaseModel)


def parse_query(model: type[_Q], query: Mapping[str, str]) -> _Q:
    """``query`` (first value of each name) validated by ``model``, or ApiError 400."""
    try:
        return model.model_validate({k: query[k] for k in query})
    except ValidationError as exc:
        raise ApiError(400, "bad_filter", "invalid query parameters", field_errors(exc)) from exc


@dataclass(frozen=True, slots=True)
class Paging:
    page_index: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page_index - 1) * self.page_size


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """What the store selects: equality filters, ISO bounds ``[start, end)``, a scope."""

    paging: Paging = Paging()
    equal: tuple[tuple[str, Any], ...] = ()
    ranges: tuple[tuple[str, str, Any], ...] = ()  # (column, operator, value)
    state: str | None = None
    search: str | None = None
    descending: bool = False
    empty: bool = False  # the bounds exclude everything (start after end)


def _day(text: str) -> datetime:
    return datetime.strptime(text, "%d-%m-%Y")


def _bounds(column: str, start: str | None, end: str | None) -> list[tuple[str, str, Any]]:
    out: list[tuple[str, str, Any]] = []
    if start is not None:
        out.append((column, ">=", _day(start).strftime("%Y-%m-%dT00:00:00")))
    if end is not None:
        last = _day(end)
        if last < datetime(9999, 12, 31):  # the last day has no next day to stop before
            out.append((column, "<", (last + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00")))
    return out


def _empty(start: str | None, end: str | None) -> bool:
    return start is not None and end is not None and _day(start) > _day(end)


def order_filter(q: OrderQuery, scope: tuple[str, str] | None) -> OrderFilter:
    """The store's filter for a validated query and the principal's scope (column, value).

    A start date after the end date is a valid query with no results, not an error.
    """
    equal: list[tuple[str, Any]] = [] if scope is None else [scope]
    for column, value in (
        ("status", q.status),
        ("id", q.id),
        ("checkout_id", q.checkout),
        ("merchant_id", q.merchant_id),
        ("user_id", q.user_id),
        ("app_id", q.app_id),
        ("device_id", q.device),
    ):
        if value is not None:
            equal.append((column, value))
    ranges = _bounds("created_on", q.start_date, q.end_date)
    ranges += _bounds("updated_on", q.updated_start_date, q.updated_end_date)
    if q.since_id is not None:
        ranges.append(("id", ">", q.since_id))
    if q.min_amount is not None:
        ranges.append(("amount", ">=", q.min_amount))
    if q.max_amount is not None:
        ranges.append(("amount", "<=", q.max_amount))
    return OrderFilter(
        paging=Paging(q.page_index, q.page_size),
        equal=tuple(equal),
        ranges=tuple(ranges),
        state=None if q.state in (None, "any") else q.state,
        search=q.q,
        descending=q.order == "desc",
        empty=_empty(q.start_date, q.end_date) or _empty(q.updated_start_date, q.updated_end_date),
    )
