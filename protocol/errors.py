"""Errors raised while reading the wire contract."""


class ProtocolError(ValueError):
    """Base class: something on the wire does not follow the contract.

    ``code`` is a short stable reason (used in ``rejected`` statuses and metrics labels);
    ``detail`` is the human-readable explanation.
    """

    code = "protocol_error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


class TopicError(ProtocolError):
    """A topic that is not ``edgeorder/v1/devices/{device_id}/{channel}``."""

    code = "bad_topic"


class PayloadError(ProtocolError):
    """A payload that cannot be decoded or validated.

    Codes: ``oversize``, ``not_utf8``, ``malformed_json``, ``invalid``, ``device_mismatch``.
    """

    code = "invalid"
