"""A registered device as the event path sees it, and the limits of its settings: pure data,
no I/O (cached in memory by ingest's ``store.device_cache``, read from the registry by
``store.registry``).

The limits are defined here once. The registry enforces them on every write, the CLI, the REST
API and the dashboard check them at their edge with the same functions and types, so a
setting the event path cannot use never reaches the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from edgeorder import protocol as p

__all__ = [
    "CANCEL_WINDOW_MAX_S",
    "DEFAULT_CANCEL_WINDOW_S",
    "NAME_MAX_CHARS",
    "QUANTITY_MAX",
    "CancelWindowS",
    "Device",
    "DeviceName",
    "Env",
    "Quantity",
    "check_cancel_window",
    "check_name",
    "check_quantity",
]

Env = Literal["dev", "prod"]

DEFAULT_CANCEL_WINDOW_S = 300
CANCEL_WINDOW_MAX_S = 7 * 24 * 3600
"""A long press may cancel an order at most a week after it was made."""
NAME_MAX_CHARS = 200
QUANTITY_MAX = p.QUANTITY_MAX
"""Per reorder; the wire contract's ``ReorderAction`` holds the same bound."""

CancelWindowS = Annotated[int, Field(ge=0, le=CANCEL_WINDOW_MAX_S)]
"""Seconds after an order during which a long press cancels it (for request models)."""
DeviceName = Annotated[str, Field(max_length=NAME_MAX_CHARS)]
Quantity = Annotated[int, Field(ge=1, le=QUANTITY_MAX)]


def check_cancel_window(value: int) -> int:
    """``value`` if it is a usable cancel window; ValueError saying the range otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"cancel window must be a whole number of seconds, not {value!r}")
    if not 0 <= value <= CANCEL_WINDOW_MAX_S:
        raise ValueError(
            f"cancel window must be 0..{CANCEL_WINDOW_MAX_S} seconds (7 days), not {value}"
        )
    return value


def check_quantity(value: int) -> int:
    """``value`` if it is a usable quantity per order; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= QUANTITY_MAX:
        raise ValueError(f"quantity must be 1..{QUANTITY_MAX}, not {value!r}")
    return value


def check_name(value: str) -> str:
    """``value`` if it is a usable device name; ValueError otherwise."""
    if len(value) > NAME_MAX_CHARS:
        raise ValueError(f"name must be at most {NAME_MAX_CHARS} characters, not {len(value)}")
    return value


@dataclass(frozen=True)
class Device:
    """What the event path needs to know about a device (cached in memory by ingest)."""

    device_id: str
    enabled: bool
    env: Env
    mapping: p.ButtonMapping
    allow_parallel: bool
    cancel_window_s: int
    profile: dict[str, Any]
    config_version: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Device:
        return cls(
            device_id=row["device_id"],
            enabled=bool(row["enabled"]),
            env="dev" if row["env"] == "dev" else "prod",
            mapping=p.ButtonMapping.model_validate_json(row["mapping"]),
            allow_parallel=bool(row["allow_parallel"]),
            cancel_window_s=int(row["cancel_window_s"]),
            profile=json.loads(row["profile"] or "{}"),
            config_version=int(row["config_version"]),
        )
