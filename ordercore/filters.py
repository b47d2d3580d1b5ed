"""Query-string filters of the order list endpoints. Pure: parse or name every bad value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from edgeorder.ordercore.errors import ApiError, FieldError
from edgeorder.ordercore.lifecycle import OrderStatus

__all__ = ["MAX_PAGE_SIZE", "OrderFilter", "Paging", "parse_order_filter", "parse_paging"]

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 25
_DEVICE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Paging:
    page_index: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page_index - 1) * self.page_size


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Filters of ``GET /api/order/{sent,received}``; dates as ISO bounds [start, end)."""

    paging: Paging = Paging()
    status: int | None = None
    id: int | None = None
    checkout: int | None = None
    merchant_id: str | None = None
    device: str | None = None
    descending: bool = False
    start: str | None = None
    end: str | None = None


def _int(
    query: Mapping[str, str], name: str, lo: int, hi: int, bad: list[FieldError]
) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        bad.append(FieldError(name, f"not an integer: {raw!r}"))
        return None
    if not lo <= value <= hi:
        bad.append(FieldError(name, f"must be between {lo} and {hi}"))
        return None
    return value


def _date(query: Mapping[str, str], name: str, bad: list[FieldError]) -> datetime | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return datetime.strptime(raw, "%d-%m-%Y")
    except ValueError:
        bad.append(FieldError(name, f"not a date in dd-MM-yyyy: {raw!r}"))
        return None


def _paging(query: Mapping[str, str], bad: list[FieldError]) -> Paging:
    index = _int(query, "pageIndex", 1, 10**9, bad)
    size = _int(query, "pageSize", 1, MAX_PAGE_SIZE, bad)
    return Paging(index or 1, size or DEFAULT_PAGE_SIZE)


def parse_paging(query: Mapping[str, str]) -> Paging:
    """pageIndex (default 1) and pageSize (default 25, at most 200), or ApiError 400."""
    bad: list[FieldError] = []
    paging = _paging(query, bad)
    if bad:
        raise ApiError(400, "bad_filter", "invalid query parameters", bad)
    return paging


def _status(query: Mapping[str, str], bad: list[FieldError]) -> int | None:
    status = _int(query, "status", 0, 99, bad)
    if status is not None and status not in OrderStatus._value2member_map_:
        codes = ", ".join(str(s.value) for s in OrderStatus)
        bad.append(FieldError("status", f"unknown status {status}; one of {codes}"))
        return None
    return status


def _text(
    query: Mapping[str, str], name: str, pattern: re.Pattern[str], bad: list[FieldError]
) -> str | None:
    raw = query.get(name)
    if raw is not None and not pattern.match(raw):
        bad.append(FieldError(name, f"invalid value {raw!r}"))
        return None
    return raw


def parse_order_filter(query: Mapping[str, str]) -> OrderFilter:
    """Every filter of the seed plus ``device``; ApiError 400 naming each bad parameter."""
    bad: list[FieldError] = []
    order = query.get("order", "asc").lower()
    if order not in ("asc", "desc"):
        bad.append(FieldError("order", "must be asc or desc"))
    start, end = _date(query, "startDate", bad), _date(query, "endDate", bad)
    if start and end and start > end:
        bad.append(FieldError("endDate", "is before startDate"))
    result = OrderFilter(
        paging=_paging(query, bad),
        status=_status(query, bad),
        id=_int(query, "id", 1, 2**63 - 1, bad),
        checkout=_int(query, "checkout", 1, 2**63 - 1, bad),
        merchant_id=_text(query, "merchantId", re.compile(r"^.{1,36}$"), bad),
        device=_text(query, "device", _DEVICE, bad),
        descending=order == "desc",
        start=start.strftime("%Y-%m-%dT00:00:00") if start else None,
        end=(end + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00") if end else None,
    )
    if bad:
        raise ApiError(400, "bad_filter", "invalid query parameters", bad)
    return result
