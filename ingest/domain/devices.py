"""A registered device as the event path sees it: pure data, no I/O (cached in memory by
ingest's ``store.device_cache``, read from the registry by ``store.registry``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from edgeorder import protocol as p

__all__ = ["Device", "Env"]

Env = Literal["dev", "prod"]


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
