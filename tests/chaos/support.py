"""Shared by the convergence tests: device configs, and the truth as ingest and the order
core hold it, to compare every device's view of its presses with."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeorder.agent.config import AgentConfig, parse_config


def device_config(
    tmp_path: Path,
    device_id: str,
    port: int,
    *,
    outbox: dict[str, Any] | None = None,
    username: str | None = None,
    password: str | None = None,
) -> AgentConfig:
    """A config with fast reconnects, re-publishes and asks, its outbox under ``tmp_path``."""
    mqtt: dict[str, Any] = {
        "url": f"mqtt://127.0.0.1:{port}",
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "keepalive_s": 5,
    }
    if username is not None:
        mqtt.update(username=username, password=password)
    data: dict[str, Any] = {
        "device_id": device_id,
        "mqtt": mqtt,
        "outbox": {
            "path": str(tmp_path / f"{device_id}.outbox.db"),
            "retry_min_s": 0.5,
            "retry_max_s": 2.0,
            "ask_min_s": 0.5,
            "ask_max_s": 2.0,
            **(outbox or {}),
        },
    }
    return parse_config(data, source=device_id, base_dir=tmp_path)


@dataclass
class Truth:
    """What ingest recorded: each event's state by device, and its orders."""

    states: dict[str, dict[str, str]] = field(default_factory=dict)  # device -> event -> state
    order_ids: dict[str, list[str]] = field(default_factory=dict)  # device -> order ids
    orders_per_event: Counter[str] = field(default_factory=Counter)
    pending_outbox: int = 0


def ingest_truth(db_path: Path) -> Truth:
    """Read ``ingest.db`` (read-only; ingest may still be running)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        truth = Truth()
        for device_id, event_id, state in conn.execute(
            "SELECT device_id, event_id, state FROM inbox"
        ):
            truth.states.setdefault(device_id, {})[event_id] = state
        for device_id, event_id, order_id in conn.execute(
            "SELECT device_id, event_id, order_id FROM orders"
        ):
            truth.order_ids.setdefault(device_id, []).append(order_id)
            truth.orders_per_event[event_id] += 1
        row = conn.execute("SELECT count(*) FROM order_outbox WHERE state = 'pending'").fetchone()
        truth.pending_outbox = int(row[0])
        return truth
    finally:
        conn.close()
