"""Webhook signatures and retry delays. Pure.

A delivery carries ``X-Edgeorder-Timestamp: <unix seconds of this attempt>`` and
``X-Edgeorder-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>``: the
timestamp is signed with the body, so a receiver can refuse a delivery captured and replayed
later (ingest refuses one more than 5 minutes off by default).
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Callable

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "backoff_delay", "sign", "verify"]

SIGNATURE_HEADER = "X-Edgeorder-Signature"
TIMESTAMP_HEADER = "X-Edgeorder-Timestamp"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The X-Edgeorder-Signature value: ``sha256=<hex HMAC-SHA256("<timestamp>." + body)>``."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str, timestamp: int) -> bool:
    """Whether ``header`` signs ``body`` at ``timestamp`` (constant-time compare). How old a
    timestamp may be is the receiver's choice; compare it with the clock as well."""
    return hmac.compare_digest(sign(secret, body, timestamp).encode(), header.encode())


def backoff_delay(
    attempt: int,
    base: float,
    cap: float,
    rand: Callable[[float, float], float] = random.uniform,
) -> float:
    """Delay before retry number ``attempt`` (1-based): capped exponential, equal jitter.

    The ceiling doubles per attempt up to ``cap``; the delay is half the ceiling plus a random
    part of the other half, so retries of many subscribers do not line up.
    """
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return ceiling / 2 + rand(0, ceiling / 2)
