"""Webhook signatures and retry delays. Pure."""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Callable

__all__ = ["backoff_delay", "sign", "verify"]


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body keyed by secret>``, the X-Edgeorder-Signature value."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time compare)."""
    return hmac.compare_digest(sign(secret, body), header)


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
