"""Read every order back from the order core's API (the ground truth for lost/duplicates)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

__all__ = ["fetch_orders", "wait_healthy"]

PAGE_SIZE = 200


def _get(url: str, token: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def fetch_orders(base_url: str, token: str, *, timeout: float = 30.0) -> dict[str, str | None]:
    """Every received order: order id (as ingest stores it, a string) -> Device.Id."""
    orders: dict[str, str | None] = {}
    page = 1
    while True:
        body = _get(
            f"{base_url}/api/order/received?pageSize={PAGE_SIZE}&pageIndex={page}", token, timeout
        )
        for order in body["Data"]:
            device = order.get("Device") or {}
            orders[str(order["Id"])] = device.get("Id")
        if page * PAGE_SIZE >= int(body["Total"]) or not body["Data"]:
            return orders
        page += 1


def wait_healthy(base_url: str, *, timeout: float = 5.0) -> bool:
    """One GET /healthz; True on 200."""
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False
