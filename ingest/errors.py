"""ingest's own exceptions: what went wrong, with the context to say it once.

``ApiError`` and its kinds are the REST API's refusals. A handler (or the operation wrapper that
validates a request against its models) raises one; ``web.openapi.error_response`` renders it,
from the ``/api`` error middleware and from the auth middleware, as the API's one JSON error
shape, the order-API seed's dialect::

    {"Error": "<code>", "Message": "<for a person>", "Fields": [{"Field", "Message"}]?}

``Fields`` only where a body or query parameter broke its schema. The OpenAPI document names it
``ErrorOut`` and gives it to every error answer, 401 and 403 included.

``StartError`` is what ``IngestService.start`` raises when a step of starting fails: which step,
with the cause chained, after what the earlier steps opened has been released.

Pure: no aiohttp here, so the store and the domain may raise these without a web import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "ApiError",
    "BadRequestError",
    "ConflictError",
    "FailedDependencyError",
    "ForbiddenError",
    "IngestError",
    "NotFoundError",
    "StartError",
    "UnauthorizedError",
    "ValidationFailedError",
]


class IngestError(Exception):
    """Base of ingest's own exceptions."""


class ApiError(IngestError):
    """A refusal of the REST API: ``status``, a stable ``code``, a ``message`` for a person.
    A kind of refusal is a subclass naming its defaults: ``class X(ApiError, status=404,
    code="not_found")``."""

    default_status: ClassVar[int] = 400
    default_code: ClassVar[str] = "invalid"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None) -> None:
        super().__init_subclass__()
        cls.default_status = status or cls.default_status
        cls.default_code = code or cls.default_code

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status or self.default_status
        self.code = code or self.default_code
        self.message = message
        self.fields = fields
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})  # more top-level fields of one kind of answer

    def body(self) -> dict[str, Any]:
        """The JSON answer: ``{"Error", "Message", "Fields"?}``."""
        out: dict[str, Any] = {"Error": self.code, "Message": self.message, **self.extra}
        if self.fields is not None:
            out["Fields"] = self.fields
        return out


class BadRequestError(ApiError, status=400, code="invalid"):
    """400: a bad query parameter, or a value the store refuses."""


class UnauthorizedError(ApiError, status=401, code="unauthorized"):
    """401: no session and no valid API token."""


class ForbiddenError(ApiError, status=403, code="forbidden"):
    """403: authenticated, but not allowed (a session request without its CSRF token)."""


class NotFoundError(ApiError, status=404, code="not_found"):
    """404: no such resource."""


class ConflictError(ApiError, status=409, code="conflict"):
    """409: the resource exists, or is not in the state the request needs."""


class FailedDependencyError(ApiError, status=424, code="catalog_unavailable"):
    """424: what the request depends on (the platform's catalog) could not be read now."""


class ValidationFailedError(ApiError, status=422, code="validation"):
    """422: the body breaks its schema (``fields`` says how)."""


class StartError(IngestError):
    """Ingest could not start: ``step`` failed (the cause is chained); nothing is left open."""

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"ingest could not start: {step}: {cause}")
        self.step = step
