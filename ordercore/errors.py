"""Errors of the order core. Each one knows its HTTP status and JSON body."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

__all__ = [
    "ApiError",
    "FieldError",
    "StoreError",
    "field_errors",
    "loc_to_field",
]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field: ``Items[0].Sku`` and why."""

    field: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"Field": self.field, "Reason": self.reason}


@dataclass(eq=False)
class ApiError(Exception):
    """An error answered to the client as ``{"Error": code, "Message": ..., ...}``."""

    status: int
    code: str
    message: str
    fields: list[FieldError] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, f"{self.code}: {self.message}")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"Error": self.code, "Message": self.message}
        if self.fields:
            body["Fields"] = [f.to_json() for f in self.fields]
        body.update(self.extra)
        return body

    @classmethod
    def validation(cls, fields: list[FieldError]) -> ApiError:
        """400: the body breaks the documented schema (types, lengths, patterns, required)."""
        names = ", ".join(f.field for f in fields)
        return cls(400, "validation_error", f"invalid fields: {names}", fields)

    @classmethod
    def unprocessable(cls, fields: list[FieldError]) -> ApiError:
        """422: a well-formed body that the catalog or the order refuses (an unknown SKU, a
        SKU priced in another currency); the schema cannot know those."""
        names = ", ".join(f.field for f in fields)
        return cls(422, "unprocessable", f"refused fields: {names}", fields)

    @classmethod
    def forbidden(cls, message: str) -> ApiError:
        """403: the token's principal may not do this (its role or its scope)."""
        return cls(403, "forbidden", message)

    @classmethod
    def bad_request(cls, message: str, fields: list[FieldError] | None = None) -> ApiError:
        return cls(400, "bad_request", message, fields or [])

    @classmethod
    def not_found(cls, message: str) -> ApiError:
        return cls(404, "not_found", message)


class StoreError(Exception):
    """The database could not be opened or migrated."""


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
