"""Errors of the order core. Each one knows its HTTP status and JSON body."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ApiError",
    "FieldError",
    "StoreError",
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
    def validation(cls, fields: list[FieldError], status: int = 422) -> ApiError:
        names = ", ".join(f.field for f in fields)
        return cls(status, "validation_error", f"invalid fields: {names}", fields)

    @classmethod
    def bad_request(cls, message: str, fields: list[FieldError] | None = None) -> ApiError:
        return cls(400, "bad_request", message, fields or [])

    @classmethod
    def not_found(cls, message: str) -> ApiError:
        return cls(404, "not_found", message)


class StoreError(Exception):
    """The database could not be opened or migrated."""
