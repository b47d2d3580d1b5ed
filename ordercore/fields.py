"""Field types shared by the request and response models. Pure.

Every constraint the server enforces on input is one of these (or a model built from them),
so the OpenAPI document, generated from the same models, states exactly what is accepted.
Patterns use explicit ASCII classes only: ``\\d``, ``\\w`` and ``\\s`` mean different things
in the server's regex engine (Rust, Unicode), in ECMA-262 (the JSON Schema dialect) and in
Python's ``re``, and a document that the server reads differently is not exact.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictInt, TypeAdapter

__all__ = [
    "CURRENCY_PATTERN",
    "DEVICE_PATTERN",
    "EMAIL_PATTERN",
    "IDEMPOTENCY_KEY",
    "KEY_PATTERN",
    "MAX_ID",
    "MAX_KEY_LENGTH",
    "OMITTABLE",
    "QUERY_INT",
    "WHOLE",
    "Code",
    "DeviceId",
    "IdempotencyKey",
    "NonBlank",
    "Quantity",
    "RecordId",
    "Short",
]

MAX_ID = 2**63 - 1
"""Largest id (SQLite INTEGER PRIMARY KEY)."""

MAX_KEY_LENGTH = 255
KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"
"""An Idempotency-Key: visible ASCII, inner spaces allowed. HTTP strips a header value's outer
whitespace, so a key that began or ended with a space could not be sent back unchanged."""

CURRENCY_PATTERN = r"^[A-Z]{3}$"
DEVICE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
EMAIL_PATTERN = r"^[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+\.[^@\x00-\x20\x7f]+$"
NOT_BLANK_PATTERN = r"[^\x00-\x20\x7f]"
"""Contains one character that is not ASCII white space or a control character."""


def _whole(value: object) -> object:
    """JSON has one number type, and JSON Schema (draft 6 on) counts ``2.0`` as the integer 2:
    a whole float is that integer. ``2.5``, ``true`` and ``"2"`` stay refused."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


WHOLE = BeforeValidator(_whole)
"""Put last in an ``Annotated[StrictInt, Field(...), WHOLE]`` (after the bounds)."""

RecordId = Annotated[StrictInt, Field(ge=1, le=MAX_ID), WHOLE]
Quantity = Annotated[StrictInt, Field(gt=0, le=10_000), WHOLE]
Code = Annotated[StrictInt, Field(ge=0, le=99), WHOLE]
Short = Annotated[str, Field(max_length=200)]
NonBlank = Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK_PATTERN)]
DeviceId = Annotated[str, Field(pattern=DEVICE_PATTERN)]
IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=KEY_PATTERN,
        description="a retry with the same key and the same body replays the first answer "
        "(header Idempotent-Replayed: true); the same key with another body is 422 "
        "idempotency_conflict. Keys belong to the token's principal and are kept 7 days.",
    ),
]
IDEMPOTENCY_KEY: TypeAdapter[str] = TypeAdapter(IdempotencyKey)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


OMITTABLE = Field(json_schema_extra=_no_default)
"""For a field that may be left out but not sent as null: ``Annotated[T, OMITTABLE] = None``
documents a non-nullable, optional property (None only ever means "not sent")."""

_DIGITS = re.compile(r"^-?[0-9]{1,20}$")


def _query_int(value: object) -> object:
    """A query string integer is plain decimal digits: no ``+``, ``_``, spaces or ``1.0``."""
    if isinstance(value, str):
        if not _DIGITS.match(value):
            raise ValueError("must be an integer written in decimal digits")
        return int(value)
    return value


QUERY_INT = BeforeValidator(_query_int)
"""Put last in an ``Annotated[int, Field(...), QUERY_INT]`` (after the bounds, or their JSON
Schema names are lost): an integer query parameter, strict about its spelling."""
