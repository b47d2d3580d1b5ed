"""Pure figures: percentiles, latency summaries and rates. No I/O, no clocks."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LatencySummary", "percentile", "rate", "ratio", "summarize_ms"]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, linearly interpolated.

    Raises ValueError on an empty sequence or a ``q`` outside 0..100.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    pos = (len(sorted_values) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    frac = pos - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * frac


@dataclass(frozen=True)
class LatencySummary:
    """Milliseconds: how many samples, and their p50/p95/p99/max/mean."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def summarize_ms(seconds: Iterable[float]) -> LatencySummary | None:
    """Summarize latencies given in seconds as milliseconds; None when there are none."""
    values = sorted(s * 1000.0 for s in seconds)
    if not values:
        return None
    return LatencySummary(
        count=len(values),
        p50_ms=percentile(values, 50),
        p95_ms=percentile(values, 95),
        p99_ms=percentile(values, 99),
        max_ms=values[-1],
        mean_ms=sum(values) / len(values),
    )


def rate(count: int, seconds: float) -> float:
    """Events per second; 0.0 when no time passed (nothing to divide by)."""
    return count / seconds if seconds > 0 else 0.0


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else None
