"""HTTP plumbing the platform connectors share: one session, one error mapping, option checks.

Kept apart from the connectors so each of them reads as "the platform's dialect" only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import aiohttp
import structlog
from multidict import CIMultiDict
from pydantic import BaseModel, ValidationError

from edgeorder.ingest.connectors.base import PermanentError, TransientError

__all__ = [
    "ConnectorOptionsError",
    "HttpReply",
    "http_request",
    "open_session",
    "parse_options",
    "to_minor_units",
]

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)

ReasonOf = Callable[[int, Any], str]
"""Turns a refused reply (status, parsed body) into the platform's own reason."""


class ConnectorOptionsError(ValueError):
    """Connector options do not fit the connector; ``problems`` lists every bad field."""

    def __init__(self, platform: str, problems: list[str]) -> None:
        super().__init__(f"{platform} connector options invalid: " + "; ".join(problems))
        self.platform = platform
        self.problems = problems


def parse_options(model: type[M], options: Mapping[str, Any], platform: str) -> M:
    """Validate ``options`` with ``model``; fail with every bad field listed at once."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '(options)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConnectorOptionsError(platform, problems) from exc


def open_session(timeout_s: float, headers: Mapping[str, str]) -> aiohttp.ClientSession:
    """One session per connector: every call bounded by ``timeout_s``, fixed auth headers."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout_s), headers=dict(headers)
    )


class HttpReply:
    """A 2xx reply: status, the body parsed as JSON (or the raw text when it is not JSON),
    and the headers (pagination links, totals)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers: Mapping[str, str] = headers or {}


def _parse_body(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except (json.JSONDecodeError, RecursionError):  # kept as text: the error says what came
        return text


async def http_request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    platform: str,
    reason_of: ReasonOf,
    json_body: Any = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpReply:
    """One HTTP call mapped onto the connector contract.

    Connection refused, timeout, 429 and 5xx raise ``TransientError`` (the outbox retries);
    any other non-2xx raises ``PermanentError`` carrying the platform's own reason.
    """
    try:
        async with session.request(
            method, url, json=json_body, params=params, headers=headers
        ) as resp:
            body = _parse_body(await resp.text())
            status = resp.status
            reply_headers = CIMultiDict(resp.headers)
    except TimeoutError as exc:
        raise TransientError(f"{platform}: no answer within the timeout") from exc
    except asyncio.CancelledError:
        raise
    except aiohttp.ClientError as exc:
        raise TransientError(f"{platform} unreachable: {exc.__class__.__name__}: {exc}") from exc
    if 200 <= status < 300:
        return HttpReply(status, body, reply_headers)
    reason = reason_of(status, body)
    log.warning("platform_refused", platform=platform, method=method, status=status, reason=reason)
    if status == 429 or status >= 500:
        raise TransientError(f"{platform} HTTP {status}: {reason}", status=status)
    raise PermanentError(f"{platform} HTTP {status}: {reason}", status=status)


def to_minor_units(value: Any) -> int | None:
    """A decimal amount ("80.00", 300, 12.5) in minor units (cents); None if absent or junk."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int((Decimal(str(value)) * 100).to_integral_value())
    except (InvalidOperation, ValueError):
        return None
