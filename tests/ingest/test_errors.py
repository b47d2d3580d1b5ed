"""ingest.errors: each kind of API refusal carries its status and code; the body is the one
shape the API answers with."""

from __future__ import annotations

import pytest

from edgeorder.ingest.errors import (
    ApiError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    ValidationFailedError,
)


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        (BadRequestError, 400, "invalid"),
        (UnauthorizedError, 401, "unauthorized"),
        (ForbiddenError, 403, "forbidden"),
        (NotFoundError, 404, "not_found"),
        (ConflictError, 409, "conflict"),
        (ValidationFailedError, 422, "validation"),
    ],
)
def test_each_kind_has_its_status_and_code(kind: type[ApiError], status: int, code: str) -> None:
    error = kind("why")
    assert (error.status, error.code, str(error)) == (status, code, "why")
    assert error.body() == {"Error": code, "Message": "why"}


def test_a_code_fields_and_headers_of_its_own() -> None:
    error = ConflictError("taken", code="exists", headers={"X-A": "1"})
    assert error.body() == {"Error": "exists", "Message": "taken"}
    assert error.headers == {"X-A": "1"}
    fields = [{"Field": "limit", "Message": "not an integer"}]
    assert BadRequestError("bad", fields=fields).body()["Fields"] == fields
    assert ApiError("gone", status=500, code="internal").status == 500
