"""Heartbeat rows as named series of (epoch seconds, value) for the telemetry chart. Pure.

Extra numeric fields (a sensor's readings: ``sensor.NAME``) come first, in name order, then
the figures every heartbeat has (queue depth, dropped presses). Malformed ``extra`` text or
non-numeric values are skipped, not fatal: they are the device's words.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from edgeorder.ingest.domain.device_view import parse_stored_ts

__all__ = ["SERIES_MAX", "series"]

SERIES_MAX = 8
"""Most series drawn for one device (extras allow 32; a page of 32 charts helps no one)."""

_FIXED = ("queue_depth", "dropped")


def _extras(text: Any) -> dict[str, float]:
    try:
        data = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in data.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def series(rows: Sequence[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """``{name: [(t, value), ...]}``, at most ``SERIES_MAX`` names, extras first."""
    extra: dict[str, list[tuple[float, float]]] = {}
    fixed: dict[str, list[tuple[float, float]]] = {name: [] for name in _FIXED}
    for row in rows:
        t = parse_stored_ts(row["received_at"]).timestamp()
        for name, value in _extras(row.get("extra")).items():
            extra.setdefault(name, []).append((t, value))
        for name in _FIXED:
            if row.get(name) is not None:
                fixed[name].append((t, float(row[name])))
    out = {name: extra[name] for name in sorted(extra)}
    out.update({k: v for k, v in fixed.items() if v})
    return dict(list(out.items())[:SERIES_MAX])
